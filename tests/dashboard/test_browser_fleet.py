"""With no worker running, in a real Chromium: every page says so, a queued subtask and a
whole task are canceled from their page, and a worker started afterwards runs nothing
of them. Then the Fleet page shows that worker.

Set TASKCENTER_SCREENSHOTS to a folder (docs/screenshots) to save the pages' pictures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from taskcenter.engine import selectors as engine_selectors
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.models import AuditEntry, SubtaskInstance
from tests.conftest import sign_in, wait_for
from tests.factories import two_root_task

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def shoot(page, name: str, tmp_path: Path) -> None:
    """A light and a dark picture of the page (in TASKCENTER_SCREENSHOTS, else tmp_path)."""
    folder = Path(os.environ.get("TASKCENTER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=False)
    page.emulate_media(color_scheme="light")


def banner(page):
    return page.locator("#no-worker-banner")


def test_without_workers_the_banner_shows_queued_work_is_canceled_and_never_runs(
    celery_worker, live_server, page, operator, tmp_path
):
    celery_worker.stop()  # no worker at all (it marks itself stopped)
    cache.clear()
    partly = two_root_task(creator=operator)  # "first" and "second" queued
    whole = verbs.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 0.1}, creator=operator
    )
    first = partly.subtasks.get(name="first")
    queued_of_whole = whole.subtasks.get(status="READY")

    sign_in(page, live_server, "operator")
    expect(banner(page)).to_contain_text("No worker has been seen")
    expect(banner(page)).to_contain_text("queued subtasks will wait until one starts")
    expect(banner(page).get_by_role("link", name="Open the fleet page")).to_have_attribute(
        "href", "/fleet/"
    )
    shoot(page, "banner", tmp_path)

    # One queued subtask, from its panel.
    page.goto(f"{live_server.url}/tasks/{partly.pk}/?subtask={first.pk}")
    expect(banner(page)).to_be_visible()
    page.locator("#subtask-summary [data-action=cancel]").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("a queued one ends at once")
    dialog.get_by_role("button", name="Cancel subtask").click()
    expect(page.locator("#flash")).to_contain_text("at once if it was queued")
    expect(page.locator("#subtask-summary .badge")).to_have_text("Canceled", timeout=10_000)
    assert SubtaskInstance.objects.get(pk=first.pk).status == "FAILED"

    # A whole task, with one confirmation and one reason.
    page.goto(f"{live_server.url}/tasks/{whole.pk}/")
    page.locator("#task-header [data-action=cancel_task]").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Cancel task")
    dialog.get_by_label(re.compile("Reason")).fill("wrong tenant")
    dialog.get_by_role("button", name="Cancel task").click()
    expect(page.locator("#flash")).to_contain_text("Cancel requested")
    expect(page.locator("#task-status")).to_have_text("Failed", timeout=10_000)
    row = AuditEntry.objects.get(task=whole, action="CANCEL")
    assert (row.subtask_id, row.from_status, row.to_status, row.reason) == (
        queued_of_whole.pk,
        "READY",
        "FAILED",
        "wrong tenant",
    )

    # A worker starts: the open page's banner goes without a reload (it is asked for
    # again every 10 s), and the messages of the canceled attempts run nothing.
    celery_worker.start()
    wait_for(lambda: engine_selectors.presence().online, timeout=30)
    expect(banner(page)).to_have_count(0, timeout=20_000)
    # "second" of the first task was not canceled: it runs. A task started after the
    # worker came up finishing means the older messages were taken too.
    later = verbs.task_start(definition_name="Reinstall OCP agent", creator=operator)
    wait_for(lambda: selectors.task_get(task_id=later.pk).status == "SUCCESSFUL", timeout=60)
    wait_for(lambda: partly.subtasks.get(name="second").status == "SUCCESSFUL", timeout=30)
    page.wait_for_timeout(1000)  # margin for a message still in a pool process

    first = SubtaskInstance.objects.get(pk=first.pk)
    assert (first.status, first.operation, first.start_time, first.executor) == (
        "FAILED",
        "CANCEL",
        None,
        "",
    )
    assert first.run_time == 1  # the run it was queued for; never started
    assert not whole.subtasks.filter(start_time__isnull=False).exists()
    assert selectors.task_get(task_id=whole.pk).status == "FAILED"
    assert set(AuditEntry.objects.filter(task=whole).values_list("action", flat=True)) == {
        "START",
        "CANCEL",
        "FINISH",
    }
    assert not AuditEntry.objects.filter(subtask=first).exclude(action="CANCEL").exists()
    assert selectors.task_get(task_id=partly.pk).status == "FAILED"

    # The fleet page shows the worker online, its queue and what it ended.
    page.goto(f"{live_server.url}/fleet/")
    expect(page.locator('tr[data-online="true"]')).to_have_count(1)
    expect(page.locator('tr[data-online="true"]')).to_contain_text("Online")
    wait_for(lambda: engine_selectors.finished_since(later.create_time) > 0, timeout=10)
    # The page refreshes itself: what the worker ends next shows without a reload.
    before = page.locator("#stat-finished-60").inner_text()
    again = verbs.task_start(definition_name="Reinstall OCP agent", creator=operator)
    wait_for(lambda: selectors.task_get(task_id=again.pk).status == "SUCCESSFUL", timeout=60)
    expect(page.locator("#stat-finished-60")).not_to_have_text(before, timeout=15_000)
    expect(page.get_by_role("link", name="Fleet")).to_have_attribute("aria-current", "page")
    shoot(page, "fleet", tmp_path)
