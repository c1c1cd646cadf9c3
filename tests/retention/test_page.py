"""The Data retention page: for admins only, every kind with its rows, size and oldest row;
and in a real Chromium, an admin reaching it from the Administration tabs, light and dark.

Set TASKCENTER_SCREENSHOTS to a folder (docs/screenshots) to save the page's pictures.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from taskcenter.retention import prune as retention
from taskcenter.retention.policy import KINDS
from taskcenter.tasks.models import TaskInstance
from tests import factories
from tests.conftest import client_for, sign_in
from tests.factories import make_user

OLD = timezone.now() - timedelta(days=120)


def an_old_finished_task() -> TaskInstance:
    task = factories.failed_task()
    # Set-up by hand: the services stamp the present; the page shows the row's age.
    TaskInstance.objects.filter(pk=task.pk).update(create_time=OLD, finish_time=OLD)
    return task


@pytest.mark.django_db
def test_admins_see_every_kind_with_rows_size_and_oldest(admin, operator):
    an_old_finished_task()
    response = client_for(admin).get("/manage/retention/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    for kind in KINDS:
        assert f'data-kind="{kind.key}"' in html and kind.label in html
    tasks_row = html.split('data-kind="tasks"')[1].split("</tr>")[0]
    assert '<td data-label="Rows" class="num">1</td>' in tasks_row
    assert OLD.strftime("%Y-%m-%d") in tasks_row and "90 days" in tasks_row
    assert 'aria-current="page">Data retention</a>' in html
    # The other admin pages link here for admins only.
    assert "/manage/retention/" in client_for(admin).get("/manage/users/").content.decode()
    assert client_for(operator).get("/manage/retention/").status_code == 403


@pytest.mark.django_db
def test_a_kind_kept_for_ever_says_so(admin, settings):
    settings.TASKCENTER_RETENTION_DAYS = {**settings.TASKCENTER_RETENTION_DAYS, "audit": 0}
    html = client_for(admin).get("/manage/retention/").content.decode()
    assert "Kept for ever (retention 0)." in html.split('data-kind="audit"')[1].split("</tr>")[0]


def _pictures(page, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("TASKCENTER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=True)
    page.emulate_media(color_scheme="light")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_finds_what_is_kept_and_sees_the_prune_take_it(live_server, page, tmp_path):
    make_user("admin", "ADMIN")
    an_old_finished_task()
    sign_in(page, live_server, "admin", next_url="/manage/users/")
    page.get_by_role("link", name="Data retention").click()
    page.wait_for_url(f"{live_server.url}/manage/retention/")
    tasks = page.locator('tr[data-kind="tasks"]')
    expect(tasks.locator('[data-label="Rows"]')).to_have_text("1")
    expect(tasks.locator('[data-label="Oldest"]')).to_contain_text(OLD.strftime("%Y-%m-%d"))
    _pictures(page, tmp_path, "retention")
    dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert dark != "rgb(13, 16, 22)"  # back to light after the dark picture

    retention.prune(pause=0)  # what the scheduler does once a day
    page.reload()
    expect(tasks.locator('[data-label="Rows"]')).to_have_text("0")
    expect(tasks.locator('[data-label="Oldest"]')).to_have_text("none")
