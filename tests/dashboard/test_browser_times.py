"""Times and durations in a real headless Chromium: running durations tick in the page
without asking the server, and times show in the reader's zone (the browser's, or the one
chosen on the account page) with UTC on hover, in full pages and swapped-in fragments; a
task's inputs and outputs on its page.

Set TASKCENTER_SCREENSHOTS=<dir> to save the task page with its inputs and outputs there
(light and dark: docs/screenshots/detail-io*.png)."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from taskcenter.demo.history import attempts_not_sent
from taskcenter.tasks import services, verbs
from tests.conftest import sign_in
from tests.dashboard.test_browser import node
from tests.factories import drive, make_cluster_and_tenant, start, subtask_named

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SHOWN = "%Y-%m-%d %H:%M:%S"


def test_running_durations_tick_in_the_page_without_requests(live_server, page, operator):
    task = drive(start("Back up cluster", creator=operator), stop_at={"Back up data files"})
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    task_duration = page.locator("#task-duration .duration").first
    subtask_duration = page.locator("#subtask-duration .duration")
    expect(page.locator("#subtask-title")).to_have_text("Back up data files")

    # Mark the elements: a poll that swapped them in anew would lose the mark.
    task_duration.evaluate("el => el.dataset.probe = 'kept'")
    subtask_duration.evaluate("el => el.dataset.probe = 'kept'")
    answers: list[tuple[str, int]] = []
    page.on("response", lambda r: answers.append((r.url, r.status)))
    before = (task_duration.inner_text(), subtask_duration.inner_text())

    def ticked_and_polled() -> bool:
        now = (task_duration.inner_text(), subtask_duration.inner_text())
        polled = any("/live/" in url for url, _ in answers)
        return polled and now[0] != before[0] and now[1] != before[1]

    deadline = time.monotonic() + 10
    while not ticked_and_polled() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    after = (task_duration.inner_text(), subtask_duration.inner_text())

    assert before[0] != after[0] and before[1] != after[1], (before, after)
    # Under a second the page shows tenths ("0.7s"), as the server does.
    shown = [text for text in before + after if not re.fullmatch(r"\d+(\.\d)?s|\d+m \d\ds", text)]
    assert not shown, (before, after)
    assert task_duration.get_attribute("data-probe") == "kept"
    assert subtask_duration.get_attribute("data-probe") == "kept"
    # The page's live polls went on meanwhile, and each answered "nothing changed". (Other
    # requests may land in the window on a slow machine: the watch button the page loads
    # once, the log panel's poll.)
    live = [status for url, status in answers if "/live/" in url]
    assert live and all(status == 204 for status in live), answers


def test_times_in_the_browser_zone_then_the_chosen_one_with_utc_on_hover(
    live_server, browser, operator
):
    task = drive(start(creator=operator), fail={"Copy tenant data"})
    snapshot = subtask_named(task, "Take a snapshot")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=SHANGHAI.key)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, live_server, "operator")

        # The list: the start time in Shanghai's time, UTC in the title.
        started = page.locator(f"#task-row-{task.pk} time")
        expect(started).to_have_text(task.start_time.astimezone(SHANGHAI).strftime(SHOWN))
        utc_title = task.start_time.strftime(SHOWN) + " UTC"
        expect(started).to_have_attribute("title", re.compile(re.escape(utc_title)))

        # The task page, and a subtask panel swapped in by htmx, agree.
        page.goto(f"{live_server.url}/tasks/{task.pk}/")
        header_start = page.locator("#task-header time").first
        expect(header_start).to_have_text(task.start_time.astimezone(SHANGHAI).strftime(SHOWN))
        expect(header_start).to_have_attribute("title", re.compile(re.escape(utc_title)))
        node(page, "Take a snapshot").click()
        expect(page.locator("#subtask-title")).to_have_text("Take a snapshot")
        panel_start = page.locator("#subtask-summary time").first
        expect(panel_start).to_have_text(snapshot.start_time.astimezone(SHANGHAI).strftime(SHOWN))
        expect(panel_start).to_have_attribute(
            "title", re.compile(re.escape(snapshot.start_time.strftime(SHOWN) + " UTC"))
        )

        # The account page: choose New York; every page then shows New York's time.
        page.goto(f"{live_server.url}/account/")
        expect(page.locator("[data-browser-zone]")).to_have_text("(Asia/Shanghai)")
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SCREENSHOTS) / "account-zone.png"), full_page=True)
        page.get_by_role("combobox", name="Time zone").select_option("America/New_York")
        page.get_by_role("button", name="Save time zone").click()
        expect(page.locator("#flash")).to_contain_text("America/New_York")
        page.goto(f"{live_server.url}/tasks/{task.pk}/")
        expect(page.locator("#task-header time").first).to_have_text(
            task.start_time.astimezone(NEW_YORK).strftime(SHOWN)
        )
        expect(page.locator("#task-header time").first).to_have_attribute(
            "title", re.compile(re.escape(utc_title) + ".*America/New_York")
        )
    finally:
        context.close()


SCREENSHOTS = os.environ.get("TASKCENTER_SCREENSHOTS")
TABLES = ["orders", "order_items", "customers", "invoices", "payments", "shipments"]


def _checked_task(operator):
    """A finished check whose step returned a table (OCP's tabular {schema, data})."""
    spec = {
        "description": "Counts the rows of a tenant's tables and compares them with the source",
        "parameters": [{"name": "tenant"}, {"name": "tables"}, {"name": "tolerance"}],
        "subtasks": [
            {
                "key": "count",
                "name": "Count rows per table",
                "kind": "SHELL_TASK",
                "action": {"command": "true"},
                "description": "SELECT COUNT(*) on each table, on the source and the target",
                "timeout": 900,
                "retryCount": 2,
            }
        ],
    }
    services.definition_create_from_data(name="Verify tenant row counts", spec=spec)
    services.definition_create_from_data(name="Verify tenant row counts", spec=spec)
    cluster, tenant = make_cluster_and_tenant()
    with attempts_not_sent():
        task = verbs.task_start(
            definition_name="Verify tenant row counts",
            parameters={
                "tenant": "sales",
                "tables": [f"sales.{t}" for t in TABLES] * 8,
                "tolerance": 0,
            },
            cluster=cluster,
            tenant=tenant,
            creator=operator,
        )
    sub = subtask_named(task, "Count rows per table")
    services.attempt_claim(subtask_id=sub.pk, attempt=sub.attempt, executor="10.0.0.7")
    rows = [
        [f"sales.{name}{'' if n == 0 else f'_{n}'}", 1000 * (i + 1) + n, 1000 * (i + 1) + n, "ok"]
        for n in range(4)
        for i, name in enumerate(TABLES)
    ]
    result = {
        "schema": [
            {"name": "table", "type": "string"},
            {"name": "source rows", "type": "number"},
            {"name": "target rows", "type": "number"},
            {"name": "verdict", "type": "string"},
        ],
        "data": rows,
    }
    services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True, result=result)
    return task, sub, rows


def test_inputs_and_outputs_on_the_task_page(live_server, browser, operator):
    task, sub, rows = _checked_task(operator)
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            sign_in(page, live_server, "operator")
            page.goto(f"{live_server.url}/tasks/{task.pk}/?subtask={sub.pk}")
            expect(page.locator("#task-definition")).to_contain_text(
                "Verify tenant row counts version 2"
            )
            expect(page.locator("#task-parameters")).to_contain_text("sales")
            expect(page.locator("#subtask-description")).to_have_text(
                "SELECT COUNT(*) on each table, on the source and the target"
            )
            expect(page.locator("#subtask-inputs")).to_contain_text("Timeout15m 00s")
            expect(page.locator("#subtask-inputs")).to_contain_text("Automatic retries2")
            table = page.locator("#subtask-result table")
            expect(table.locator("thead th")).to_have_text(
                ["table", "source rows", "target rows", "verdict"]
            )
            expect(table.locator("tbody tr:visible")).to_have_count(20)
            # The long parameter shows its start; "show all" opens the whole value.
            tables = page.locator("#task-parameters details")
            expect(tables.locator("pre")).to_be_hidden()
            if scheme == "light":
                tables.locator("summary").click()
                expect(tables.locator("pre")).to_contain_text("sales.shipments")
                tables.locator("summary").click()
                page.get_by_role("button", name=f"Show all {len(rows)} rows").click()
                expect(table.locator("tbody tr:visible")).to_have_count(len(rows))
                expect(table.locator("tbody tr").last).to_contain_text("sales.shipments_3")
                page.reload()
            if SCREENSHOTS:
                Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                suffix = "" if scheme == "light" else "-dark"
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(
                    path=str(Path(SCREENSHOTS) / f"detail-io{suffix}.png"), full_page=True
                )
        finally:
            context.close()


def test_a_browser_in_shanghai_filters_the_list_by_a_local_time(live_server, browser, operator):
    # Chromium keeps the page's zone cookie URL-encoded ("Asia%2FShanghai"); the server
    # reads it as the zone, labels the field with it and reads the typed time in it.
    older = start("Reinstall OCP agent", creator=operator)
    task = start("Reinstall OCP agent", creator=operator)
    type(task).objects.filter(pk=older.pk).update(create_time=task.create_time - timedelta(hours=1))
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=SHANGHAI.key)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, live_server, "operator")
        page.reload()  # the zone cookie was set by the first page's script
        cookie = next(c for c in context.cookies() if c["name"] == "tz")
        assert cookie["value"] == "Asia%2FShanghai"
        expect(page.locator("label[for=id_createdFrom]")).to_contain_text("(Asia/Shanghai)")

        # A minute before the task was created, as a wall time in Shanghai.
        local = (task.create_time - timedelta(minutes=1)).astimezone(SHANGHAI)
        page.locator("#id_createdFrom").fill(local.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Apply").click()
        expect(page.locator(f"#task-row-{task.pk}")).to_be_visible()
        expect(page.locator(f"#task-row-{older.pk}")).to_have_count(0)
    finally:
        context.close()
