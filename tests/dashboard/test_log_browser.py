"""The log panel in a real headless Chromium, against a live server and a real Celery worker:
the text as written (no blank lines between appended pieces), one attempt at a time,
search, and terminal colours.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from taskcenter.tasks import selectors, services
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import wait_for
from tests.dashboard.test_browser import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

PANEL_TEXT = "() => document.getElementById('log-text').innerText"
# What a reader gets by selecting the whole log and copying it.
COPIED = """() => {
    const el = document.getElementById('log-text');
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = document.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return selection.toString();
}"""


def subtask(pk: int) -> SubtaskInstance:
    return SubtaskInstance.objects.get(pk=pk)


def test_lines_appended_while_following_read_and_copy_as_written(
    worker, live_server, page, operator
):
    task = services.task_start(
        definition_name="Back up cluster", parameters={"seconds": 6}, creator=operator
    )
    backup = task.subtasks.get(name="Back up data files")
    wait_for(lambda: subtask(backup.pk).status == "RUNNING", timeout=30)
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={backup.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("copied block 6 of 6", timeout=30_000)
    expect(page.locator("#log-state")).to_contain_text("not running", timeout=15_000)
    # Several pieces were appended by the live poll, not all rendered with the page.
    assert page.locator("#log-text .log-chunk").count() >= 3

    written = selectors.log_read(subtask=subtask(backup.pk)).text
    assert written.count("\n") >= 7
    assert page.evaluate(PANEL_TEXT) == written
    # A selection leaves out the newline that ends the last line; the lines are the same.
    assert page.evaluate(COPIED).splitlines() == written.splitlines()
    assert "\n\n" not in page.evaluate(PANEL_TEXT)
