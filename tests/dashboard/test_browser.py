"""The dashboard in a real headless Chromium (Playwright), against a live server and a real
Celery worker: sign in, filter, open a failed task, follow a log while it runs, operate.

Debian's chromium is used (`playwright install` is not needed): CHROMIUM overrides the path.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.models import AuditEntry, SubtaskInstance
from tests.conftest import sign_in, wait_for

PASSWORD = "Pa55word!long"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def task_status(task) -> str:
    return selectors.task_get(task_id=task.pk).status


def wait_status(task, status: str, timeout: float = 60):
    wait_for(lambda: task_status(task) == status, timeout=timeout)


def node(page, name: str):
    return page.locator("#dag-svg [data-sid]").filter(has_text=name).first


# --- The operator's day ------------------------------------------------------------------------


def test_operator_filters_opens_failed_task_follows_the_log_and_retries(
    worker, live_server, page, operator
):
    # Steps of 6 s write a line every 1.5 s: longer than the 1 s log poll with margin, so a
    # loaded machine still shows the lines one by one (at 2 s they could arrive together).
    failing = verbs.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 6}, creator=operator
    )
    fine = verbs.task_start(definition_name="Reinstall OCP agent", creator=operator)
    wait_status(failing, "FAILED")
    wait_status(fine, "SUCCESSFUL")

    sign_in(page, live_server, "operator")
    expect(page.locator(".topbar")).to_contain_text("1 failed")

    # Filter the list to failed tasks; the filter is in the URL and survives a reload.
    page.locator("label.chip-failed").click()
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    expect(page.locator(f"#task-row-{fine.pk}")).to_have_count(0)
    page.reload()
    expect(page.locator('input[name="status"][value="FAILED"]')).to_be_checked()
    expect(page.locator(f"#task-row-{fine.pk}")).to_have_count(0)
    page.locator(f"#task-row-{failing.pk} .row-link").click()

    # The DAG: five nodes, one failed, selected by default; clicking a node selects it.
    expect(page.locator("#dag-svg [data-sid]")).to_have_count(5)
    expect(page.locator('#dag-svg [data-tone="failed"]')).to_have_count(1)
    node(page, "Take a snapshot").click()
    expect(page.locator("#subtask-title")).to_have_text("Take a snapshot")
    expect(page).to_have_url(re.compile(r"subtask=\d+"))
    page.get_by_role("button", name=re.compile("Locate current progress")).click()
    expect(page.locator("#subtask-title")).to_have_text("Copy tenant data")
    expect(page.locator("#log-text")).to_contain_text("copy failed on purpose")

    # Retry, with a reason, from the confirmation dialog.
    log_polls: list[int] = []
    page.on(
        "request",
        lambda r: (
            log_polls.append(int(r.url.split("offset=")[1].split("&")[0]))
            if "/log/?offset=" in r.url
            else None
        ),
    )
    page.locator("#task-header [data-action=retry]").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Retry task")
    dialog.get_by_label(re.compile("Reason")).fill("network blip")
    dialog.get_by_role("button", name="Retry task").click()
    expect(page.locator("#flash")).to_contain_text("Retry started")
    expect(dialog).to_have_count(0)

    # The copy step runs again for 6 s, writing a line every 1.5 s: the lines arrive one
    # by one while it runs, appended from the last offset.
    log = page.locator("#log-text")
    expect(log).to_contain_text("start run 2", timeout=20_000)
    seen_counts = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.inner_text()
        run2 = text.split("start run 2", 1)[-1]
        seen_counts.add(run2.count("copy: working"))
        if "copy: done" in run2:
            break
        time.sleep(0.15)
    assert len(seen_counts - {0}) >= 2, f"lines did not arrive progressively: {seen_counts}"
    assert log_polls == sorted(log_polls) and log_polls[-1] > 0
    assert page.locator("#log-text .log-chunk").count() >= 3  # appended, not replaced

    # The task goes on to SUCCESSFUL; the page says so without a reload, and keeps asking
    # (by the task's change stamp, one row) whether someone else acts on it.
    expect(page.locator("#task-status")).to_have_text("Successful", timeout=60_000)
    expect(node(page, "Switch traffic to the target")).to_have_attribute("data-tone", "successful")
    expect(page.locator("#live-poller")).to_have_attribute("hx-get", re.compile(r"&u=\d+"))
    assert task_status(failing) == "SUCCESSFUL"
    assert AuditEntry.objects.get(task=failing, action="RETRY").reason == "network blip"


def test_log_follows_a_long_step_within_a_second_and_cancel_stops_it(
    worker, live_server, page, operator
):
    task = verbs.task_start(
        definition_name="Back up cluster", parameters={"seconds": 60}, creator=operator
    )
    backup = task.subtasks.get(name="Back up data files")
    wait_for(lambda: SubtaskInstance.objects.get(pk=backup.pk).status == "RUNNING", timeout=30)
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={backup.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("copied block 2 of 60", timeout=10_000)

    # A line written by the worker is on the page with the next log poll (once a second).
    # Counted in polls rather than seconds, so a loaded machine cannot make it flaky.
    expect(page.locator("#log-poller")).to_have_attribute("hx-trigger", re.compile(r"^every 1s\b"))
    finished_polls: list[str] = []
    page.on("requestfinished", lambda r: "/log/?offset=" in r.url and finished_polls.append(r.url))
    target = "copied block 6 of 60"
    deadline = time.monotonic() + 20
    while target not in selectors.log_read(subtask=SubtaskInstance.objects.get(pk=backup.pk)).text:
        assert time.monotonic() < deadline, f"{target!r} was not stored within 20 s"
        page.wait_for_timeout(20)  # lets Playwright deliver the request events meanwhile
    polls_when_stored = len(finished_polls)
    expect(log).to_contain_text(target, timeout=10_000)
    # One poll may have been in flight when the line was stored; the next one brings it.
    assert len(finished_polls) - polls_when_stored <= 2, "the line took more than one poll"

    # Scrolled to the bottom while following.
    at_bottom = page.evaluate(
        "() => { const el = document.getElementById('log-text');"
        " return el.scrollHeight - el.scrollTop - el.clientHeight < 30; }"
    )
    assert at_bottom

    summary = page.locator("#subtask-summary")
    summary.locator("[data-action=cancel]").click()
    page.locator("dialog[open]").get_by_role("button", name="Cancel subtask").click()
    expect(page.locator("#flash")).to_contain_text("Cancel requested")
    expect(page.locator("#task-status")).to_have_text("Failed", timeout=15_000)
    expect(page.locator("#subtask-summary .badge")).to_have_text("Canceled", timeout=10_000)
    expect(log).to_contain_text("stopped: canceled", timeout=10_000)
    expect(page.locator("#log-poller")).not_to_have_attribute("hx-get", re.compile(".+"))
    row = page.locator(f'.subtask-row[data-sid="{backup.pk}"]')
    expect(row).to_have_attribute("data-tone", "failed")


# --- The viewer --------------------------------------------------------------------------------


def test_viewer_sees_no_operation_buttons_and_direct_posts_are_refused(
    worker, live_server, page, viewer, operator
):
    task = verbs.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 0.1}, creator=operator
    )
    wait_status(task, "FAILED")
    copy = task.subtasks.get(name="Copy tenant data")
    sign_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?subtask={copy.pk}")
    expect(page.locator("#subtask-title")).to_have_text("Copy tenant data")
    expect(page.locator("[data-action]")).to_have_count(0)
    expect(page.get_by_role("button", name="Download diagnosis")).to_be_visible()

    statuses = page.evaluate(
        """async (urls) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const out = [];
            for (const url of urls) {
                const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token,
                    'Content-Type': 'application/x-www-form-urlencoded'}, body: 'reason=please'});
                out.push(r.status);
            }
            return out;
        }""",
        [
            f"/tasks/{task.pk}/retry/",
            f"/tasks/{task.pk}/rollback/",
            f"/tasks/{task.pk}/subtasks/{copy.pk}/retry/",
            f"/tasks/{task.pk}/subtasks/{copy.pk}/skip/",
        ],
    )
    assert statuses == [403, 403, 403, 403]
    assert task_status(task) == "FAILED"
    assert not AuditEntry.objects.filter(task=task, actor__username="viewer").exists()


# --- Skip and rollback end in the audit trail -----------------------------------------------------


def test_skip_and_rollback_with_reasons_end_in_the_audit_page(worker, live_server, page, operator):
    to_skip = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"step_seconds": 0.1, "fail_times": 9},
        creator=operator,
    )
    to_undo = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"step_seconds": 0.1, "fail_times": 9, "fail_step": "verify"},
        creator=operator,
    )
    wait_status(to_skip, "FAILED")
    wait_status(to_undo, "FAILED")
    sign_in(page, live_server, "operator")

    # Skip "Copy tenant data": the reason is required before the dialog submits.
    copy = to_skip.subtasks.get(name="Copy tenant data")
    page.goto(f"{live_server.url}/tasks/{to_skip.pk}/?view=log&subtask={copy.pk}")
    page.locator("#subtask-summary [data-action=skip]").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Skip subtask").click()
    expect(dialog).to_be_visible()  # the browser asks for the reason first
    assert SubtaskInstance.objects.get(pk=copy.pk).status == "FAILED"
    dialog.get_by_label(re.compile("Reason")).fill("rows copied by hand, counts verified")
    dialog.get_by_role("button", name="Skip subtask").click()
    expect(page.locator("#flash")).to_contain_text("was skipped")
    expect(page.locator("#task-status")).to_have_text("Successful", timeout=30_000)

    # Roll back the other one ("give up").
    page.goto(f"{live_server.url}/tasks/{to_undo.pk}/")
    page.locator("#task-header [data-action=rollback]").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label(re.compile("Reason")).fill("maintenance window is over")
    dialog.get_by_role("button", name="Roll back task").click()
    expect(page.locator("#flash")).to_contain_text("Rollback started")
    expect(page.locator("#task-status")).to_have_text("Rolled back", timeout=30_000)
    assert selectors.task_get(task_id=to_undo.pk).is_rolled_back

    # Both, with who, what, target, change and reason, in the audit trail.
    page.get_by_role("link", name="Audit").click()
    skip_row = page.locator("tr", has_text="SKIP").first
    expect(skip_row).to_contain_text("operator")
    expect(skip_row).to_contain_text("rows copied by hand, counts verified")
    expect(skip_row).to_contain_text("Copy tenant data")
    expect(skip_row).to_contain_text("FAILED")
    rollback_row = page.locator("tr", has_text="ROLLBACK").first
    expect(rollback_row).to_contain_text("maintenance window is over")
    expect(rollback_row).to_contain_text(f"#{to_undo.pk}")

    # Filtering the audit trail by action keeps the filter in the URL.
    page.get_by_label("Action").select_option("SKIP")
    expect(page).to_have_url(re.compile(r"action=SKIP"))
    expect(page.locator("#audit-results tbody tr")).to_have_count(1)


# --- Narrow window, dark theme, keyboard ---------------------------------------------------------


def test_narrow_window_dark_theme_and_keyboard(worker, live_server, browser, operator):
    task = verbs.task_start(
        definition_name="Scale out tenant units",
        parameters={"units": 3, "fail_step": "unit1"},
        creator=operator,
    )
    wait_status(task, "FAILED")
    context = browser.new_context(viewport={"width": 420, "height": 860}, color_scheme="dark")
    page = context.new_page()
    try:
        sign_in(page, live_server, "operator")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 420, f"the list page scrolls sideways at 420 px ({width})"
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 16, 22)", background  # the dark palette
        page.goto(f"{live_server.url}/tasks/{task.pk}/")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 420, f"the detail page scrolls sideways at 420 px ({width})"

        # Keyboard only: focus the graph, Tab to a subtask, Enter selects it.
        page.locator("#dag-canvas").focus()
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        assert focused and " — " in focused
        page.keyboard.press("Enter")
        expect(page.locator("#subtask-title")).to_have_text(focused.split(" — ")[0])
        # Buttons are buttons, and the dialog closes with Escape.
        page.locator("#task-header [data-action=retry]").focus()
        page.keyboard.press("Enter")
        expect(page.locator("dialog[open]")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("dialog[open]")).to_have_count(0)
    finally:
        context.close()
