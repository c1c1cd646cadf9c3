"""The history grid and the timeline in a real headless Chromium, by keyboard only: Tab
into the grid, arrows to a failed cell, Enter opens that run's log of the step; on the
task page, the Timeline tab, Tab to a bar, arrows between rows and attempts, Enter opens
the subtask's panel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from taskcenter.demo.history import attempts_not_sent
from taskcenter.tasks import services, verbs
from tests.conftest import sign_in
from tests.factories import drive, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOB = "Keyboard-grid-job"


def _runs(operator):
    """Three runs of a three-step chain; the middle run fails at "check", is retried and
    fails again, then is rolled back."""
    step = {"kind": "SHELL_TASK", "action": {"command": "true"}}
    services.definition_create_from_data(
        name=JOB,
        spec={
            "subtasks": [
                {"key": "prep", "name": "prepare", **step},
                {"key": "check", "name": "check", "upstreams": ["prep"], **step},
                {"key": "done", "name": "finish", "upstreams": ["check"], **step},
            ]
        },
    )
    first = drive(start(JOB), quiet=True)
    failed = drive(start(JOB), fail={"check"}, quiet=True)
    check = failed.subtasks.get(key="check")
    with attempts_not_sent():
        verbs.subtask_retry(task_id=failed.pk, subtask_id=check.pk, actor=operator, reason="x")
    drive(failed, fail={"check"}, quiet=True)
    with attempts_not_sent():
        verbs.task_rollback(task_id=failed.pk, actor=operator, reason="give up")
    drive(failed, quiet=True)
    last = drive(start(JOB), quiet=True)
    return first, failed, last, check


def test_the_grid_and_the_timeline_by_keyboard(live_server, page, operator):
    _, failed, last, check = _runs(operator)
    sign_in(page, live_server, "operator", next_url=f"/jobs/{JOB}/")

    grid = page.locator("#history-grid")
    expect(grid).to_be_visible()
    # One Tab stop for the whole grid: the newest run's heading, then down to its first
    # step ("prepare").
    page.locator(".history-filters button[type=submit]").focus()
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("href", f"/tasks/{last.pk}/")
    page.keyboard.press("ArrowDown")
    expect(focused).to_have_attribute("href", re.compile(rf"/tasks/{last.pk}/\?view=log"))
    # Down to "check", right to the run before, the failed one: its cell says so.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    expect(focused).to_have_attribute("href", f"/tasks/{failed.pk}/?view=log&subtask={check.pk}")
    expect(focused).to_have_attribute("title", "Rolled back")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/tasks/{failed.pk}/\?view=log&subtask={check.pk}"))
    expect(page.locator("#subtask-panel")).to_contain_text("check")

    # The Timeline tab of the same task.
    page.get_by_role("link", name="Timeline").click()
    page.wait_for_url(re.compile(r"view=timeline"))
    svg = page.locator("#timeline-svg")
    expect(svg).to_be_visible()
    # "check" ran twice and was rolled back: three bars, the rollback its own.
    bars = page.locator(f'#timeline-svg a.tl-bar[data-sid="{check.pk}"]')
    expect(bars).to_have_count(3)
    expect(page.locator(f"#tlb-{check.pk}-3")).to_have_class(re.compile("is-rollback"))
    expect(page.locator("#timeline-critical")).to_contain_text("Critical path")
    # Keyboard: right to the next attempt, up to the row above ("prepare": "finish",
    # below, never ran in this run, so its row has no bar).
    page.locator(f"#tlb-{check.pk}-1").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator(":focus")).to_have_attribute("id", f"tlb-{check.pk}-2")
    page.keyboard.press("ArrowDown")
    expect(page.locator(":focus")).to_have_attribute("id", f"tlb-{check.pk}-2")
    page.keyboard.press("ArrowUp")
    expect(page.locator(":focus")).not_to_have_attribute("data-sid", str(check.pk))
    moved = page.evaluate("document.activeElement.dataset.sid")
    assert moved != str(check.pk)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"subtask={moved}"))
    expect(page.locator(f'#timeline-svg a.tl-bar[data-sid="{moved}"]').first).to_have_class(
        re.compile("is-selected")
    )
