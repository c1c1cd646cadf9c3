"""An approval gate in a real Chromium: the person who started the task is refused
approving it (four eyes), a second person finds it from the top bar's count, judges it
by the task's parameters and approves it with a reason; the audit trail names them.

Set TASKCENTER_SCREENSHOTS to a folder (docs/screenshots) to save the pending approval's
pictures (approval-pending*.png, light and dark).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskcenter.accounts import roles
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import AuditEntry, SubtaskStatus
from tests.conftest import sign_in
from tests.factories import APPROVAL_GATE, make_user, subtask_named, waiting_approval

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("TASKCENTER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=False)
    page.emulate_media(color_scheme="light")


def test_the_starter_is_refused_and_a_second_person_approves(
    live_server, page, no_broker, tmp_path
):
    starter = make_user("starter", roles.MANAGER)
    make_user("second", roles.MANAGER)
    task = waiting_approval(starter, release="v2.7.1", approval_hours=4)
    gate = subtask_named(task, APPROVAL_GATE)
    assert gate.status == SubtaskStatus.RUNNING

    # The starter: the gate is on the task page, but Approve is refused, with why.
    sign_in(page, live_server, "starter", next_url=f"/tasks/{task.pk}/?subtask={gate.pk}")
    summary = page.locator("#subtask-summary")
    expect(summary.locator(".badge")).to_have_text("Running")
    expect(page.locator("#approval-box")).to_contain_text("Awaiting approval")
    approve = summary.locator("[data-action=approve]")
    expect(approve).to_have_attribute("aria-disabled", "true")
    expect(approve).to_have_attribute(
        "title", "You started this task: another person must approve or reject it (four eyes)."
    )
    expect(page.locator("#approval-box")).to_contain_text("four eyes")
    expect(page.locator("#nav-approvals")).to_have_count(0)
    expect(page.locator("#waiting-for")).to_contain_text("A person's decision")
    shoot(page, "approval-gate", tmp_path)

    # The second person: the top bar counts it; the list shows it with the parameters.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/**")
    sign_in(page, live_server, "second")
    count = page.locator("#nav-approvals")
    expect(count).to_have_text(re.compile(r"\s*1\s+awaiting your approval\s*"))
    count.click()
    page.wait_for_url(f"{live_server.url}/approvals/")
    card = page.locator(f"[data-gate='{gate.pk}']")
    expect(card).to_contain_text("Approve the deployment")
    expect(card).to_contain_text("v2.7.1")
    expect(card).to_contain_text("started by starter")
    shoot(page, "approval-pending", tmp_path)

    card.get_by_role("button", name="Approve").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Parameters of task")
    expect(dialog).to_contain_text("v2.7.1")
    dialog.get_by_label("Reason").fill("Release notes checked, window agreed")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.locator("#flash")).to_contain_text("approved")
    expect(page.locator("#approvals-empty")).to_be_visible(timeout=10_000)
    expect(page.locator("#nav-approvals")).to_have_count(0)

    gate.refresh_from_db()
    assert gate.status == SubtaskStatus.SUCCESSFUL
    entry = AuditEntry.objects.get(action=Action.APPROVE, subtask=gate)
    assert entry.actor_name == "second" and entry.reason == "Release notes checked, window agreed"
    page.goto(f"{live_server.url}/audit/?action=APPROVE")
    expect(page.locator("main")).to_contain_text("Release notes checked, window agreed")
