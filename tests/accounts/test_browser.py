"""The account pages in a real headless Chromium: an admin creates a user with a narrow
role; that user signs in, sees only the buttons the role allows, and a forged rollback is
refused with the task unchanged.

Set TASKCENTER_SCREENSHOTS=<dir> to save screenshots of the account pages there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskcenter.accounts import roles, services
from taskcenter.tasks.models import TaskInstance
from tests.accounts.conftest import narrow_role
from tests.conftest import sign_in
from tests.factories import failed_task_on, make_user

SCREENSHOTS = os.environ.get("TASKCENTER_SCREENSHOTS")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def shoot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/"))


def test_admin_creates_a_narrow_user_who_sees_only_allowed_buttons(page, live_server, clusters):
    make_user("root", roles.ADMIN)
    role = narrow_role()
    task = failed_task_on(clusters[0], "Alpha resize")
    failed = task.subtasks.get(status="FAILED")

    # The admin creates "nora" with the narrow role, from the dashboard's top bar.
    sign_in(page, live_server, "root")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Username").fill("nora")
    page.get_by_label("New password").fill("Nora-passw0rd")
    page.get_by_label("Repeat the password").fill("Nora-passw0rd")
    page.get_by_label(role.name).check()
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_text("User nora was created.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^nora"))).to_be_visible()
    sign_out(page)

    # nora signs in and opens the failed task: Retry, but no Roll back and no Skip.
    sign_in(page, live_server, "nora", "Nora-passw0rd")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?subtask={failed.pk}")
    expect(page.locator('[data-action="retry"]')).to_be_visible()
    expect(page.locator('[data-action="subtask_retry"]')).to_be_visible()
    expect(page.locator('[data-action="rollback"]')).to_have_count(0)
    expect(page.locator('[data-action="skip"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Roll back")).to_have_count(0)

    # A forged rollback, with the page's own CSRF token, is refused; nothing changes.
    before = TaskInstance.objects.get(pk=task.pk)
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRFToken"]
    status = page.evaluate(
        """async ([url, token]) => {
            const r = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token,
              "Content-Type": "application/x-www-form-urlencoded"}, body: "reason=forged+rollback"});
            return r.status;
        }""",
        [f"/tasks/{task.pk}/rollback/", token],
    )
    assert status == 403
    after = TaskInstance.objects.get(pk=task.pk)
    assert (
        (after.status, after.operation)
        == (before.status, before.operation)
        == ("FAILED", "EXECUTE")
    )
    assert not task.audit_entries.filter(action="ROLLBACK").exists()
    assert list(task.subtasks.order_by("pk").values_list("status", flat=True)) == [
        "SUCCESSFUL",
        "FAILED",
        "PENDING",
    ]

    # The admin pages are closed to nora.
    response = page.goto(f"{live_server.url}/manage/users/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You do not have permission")).to_be_visible()


def test_admin_pages_dialogs_and_secret(page, live_server, clusters):
    admin = make_user("root", roles.ADMIN)
    narrow_role()
    scoped = make_user("scoped-op", roles.MANAGER)
    services.user_set_roles(
        user_id=scoped.pk,
        grants={scoped.groups.get().pk: [clusters[0].pk]},
        actor=admin,
    )
    make_user("viewer", roles.VIEWER)
    services.access_key_create(owner=scoped, description="deploy pipeline")

    sign_in(page, live_server, "root")
    page.goto(f"{live_server.url}/manage/users/")
    expect(page.get_by_text("TASK_MANAGER · scoped")).to_be_visible()
    shoot(page, "users.png")

    page.goto(f"{live_server.url}/manage/roles/")
    page.get_by_role("button", name="New role").click()
    dialog = page.locator("#role-create")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name").fill("Readers")
    dialog.get_by_label("Can view task instance").check()
    dialog.get_by_role("button", name="Create role").click()
    expect(page.get_by_text("Role Readers was created.")).to_be_visible()
    page.goto(f"{live_server.url}/manage/roles/")
    shoot(page, "roles.png")

    # A new key: the secret is shown once, with a copy button and a warning.
    page.goto(f"{live_server.url}/manage/keys/")
    page.get_by_role("button", name="New access key").click()
    page.locator("#key-create").get_by_label("Owner").select_option(label="viewer")
    page.locator("#key-create").get_by_label("Description").fill("nightly report")
    page.locator("#key-create").get_by_role("button", name="Create key").click()
    expect(page.get_by_text("it is shown only this once", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Copy secret")).to_be_visible()
    shoot(page, "keys.png")

    # Revoking asks first; Back leaves the key alone.
    key_row = page.locator("tr", has_text="deploy pipeline")
    key_row.get_by_role("button", name="Revoke").click()
    confirm = page.locator("dialog[open]")
    expect(confirm).to_contain_text("Revoke access key")
    confirm.get_by_role("button", name="Back").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert scoped.access_keys.get().revoked_at is None
    key_row.get_by_role("button", name="Revoke").click()
    page.locator("dialog[open]").get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("was revoked")).to_be_visible()
    assert scoped.access_keys.get().revoked_at is not None

    page.goto(f"{live_server.url}/manage/users/{scoped.pk}/")
    shoot(page, "user-detail.png")
    page.get_by_role("button", name="Deactivate").click()
    page.locator("dialog[open]").get_by_role("button", name="Deactivate user").click()
    expect(page.get_by_text("was deactivated")).to_be_visible()
    page.goto(f"{live_server.url}/account/")
    shoot(page, "account.png")
