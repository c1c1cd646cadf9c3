"""The log panel in a real headless Chromium, against a live server and a real Celery worker:
the text as written (no blank lines between appended pieces), one attempt at a time,
search, and terminal colours.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import sign_in, wait_for
from tests.dashboard.test_browser import wait_status

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
    # Signed in first, and a step long enough that most of its lines come after the page
    # opened, also on a loaded machine where opening the page takes seconds.
    sign_in(page, live_server, "operator")
    task = verbs.task_start(
        definition_name="Back up cluster", parameters={"seconds": 10}, creator=operator
    )
    backup = task.subtasks.get(name="Back up data files")
    wait_for(lambda: subtask(backup.pk).status == "RUNNING", timeout=30)
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={backup.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("copied block 10 of 10", timeout=30_000)
    expect(page.locator("#log-state")).to_contain_text("not running", timeout=15_000)
    # Several pieces were appended by the live poll, not all rendered with the page.
    assert page.locator("#log-text .log-chunk").count() >= 3

    written = selectors.log_read(subtask=subtask(backup.pk)).text
    assert written.count("\n") >= 7
    assert page.evaluate(PANEL_TEXT) == written
    # A selection leaves out the newline that ends the last line; the lines are the same.
    assert page.evaluate(COPIED).splitlines() == written.splitlines()
    assert "\n\n" not in page.evaluate(PANEL_TEXT)


def test_attempt_picker_shows_each_attempt_on_its_own_and_is_in_the_address(
    worker, live_server, page, operator
):
    task = verbs.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 0.4}, creator=operator
    )
    wait_status(task, "FAILED")
    copy = task.subtasks.get(name="Copy tenant data")
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={copy.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("copy failed on purpose")
    expect(page.locator("[data-log=attempt]")).to_have_count(0)  # one attempt: no picker

    # Retry the failed subtask; the panel follows the new attempt, and only it.
    page.locator("#subtask-summary [data-action=subtask_retry]").click()
    page.locator("dialog[open]").get_by_role("button", name="Retry subtask").click()
    expect(log).to_contain_text("copy: done", timeout=30_000)
    expect(page.locator("#log-state")).to_contain_text("not running", timeout=15_000)
    picker = page.get_by_label("Attempt", exact=True)
    expect(picker.locator("option")).to_have_count(2)
    expect(picker.locator("option:checked")).to_contain_text("Attempt 2")
    expect(picker.locator("option:checked")).to_contain_text("latest")
    # The picker and the log agree: attempt 2 wrote, so it began at a time ("no output"
    # was true only until its first lines came).
    expect(picker.locator("option:checked")).to_have_text(
        re.compile(r"Attempt 2 · \d\d:\d\d:\d\d · latest")
    )
    assert "failed on purpose" not in log.inner_text()

    # Attempt 1 on its own, picked with the keyboard: its lines only, in the address,
    # kept by a reload.
    picker.focus()
    page.keyboard.press("ArrowUp")
    expect(log).to_contain_text("copy failed on purpose")
    expect(page).to_have_url(re.compile(r"attempt=1"))
    first = log.inner_text()
    assert "copy: done" not in first
    assert first.count("copy: working") == 4
    expect(page.get_by_label("Attempt", exact=True)).to_be_focused()  # the focus stays
    page.reload()
    expect(page.get_by_label("Attempt", exact=True).locator("option:checked")).to_contain_text(
        "Attempt 1"
    )
    assert log.inner_text() == first
    href = page.get_by_role("link", name="Download attempt 1").get_attribute("href")
    downloaded = page.request.get(f"{live_server.url}{href}").text()
    assert downloaded.splitlines() == first.splitlines()

    # Attempt 2 again: its own lines; the two together are the whole log.
    page.get_by_label("Attempt", exact=True).select_option("2")
    expect(log).to_contain_text("copy: done")
    second = log.inner_text()
    assert "failed on purpose" not in second and second.count("copy: working") == 4
    whole = selectors.log_read(subtask=subtask(copy.pk)).text
    assert first + second == whole
    expect(page).to_have_url(re.compile(r"attempt=2"))

    # Another subtask has attempts of its own: the address forgets the picked one.
    page.locator(".subtask-row", has_text="Verify row counts").first.click()
    expect(page.locator("#subtask-title")).to_have_text("Verify row counts")
    expect(page).not_to_have_url(re.compile(r"attempt="))

    # The picker, the downloads and the search fit a 420 px window.
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={copy.pk}")
    page.set_viewport_size({"width": 420, "height": 860})
    expect(page.get_by_label("Attempt", exact=True)).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 420


def test_search_highlights_matches_and_steps_through_them_while_lines_arrive(
    worker, live_server, page, operator
):
    task = verbs.task_start(
        definition_name="Back up cluster", parameters={"seconds": 20}, creator=operator
    )
    backup = task.subtasks.get(name="Back up data files")
    wait_for(lambda: subtask(backup.pk).status == "RUNNING", timeout=30)
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={backup.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("copied block 2 of 20", timeout=15_000)

    # Keyboard only: "/" in the log goes to the search box.
    log.focus()
    page.keyboard.press("/")
    search = page.get_by_role("searchbox", name="Search this log")
    expect(search).to_be_focused()
    page.keyboard.type("COPIED block")
    count = page.locator("[data-log=count]")
    expect(count).to_have_text(re.compile(r"^1 of \d+$"))

    def shown() -> tuple[int, int, list[str], str]:
        # One read of the highlights and the counter together: lines keep arriving.
        return page.evaluate(
            """() => {
                const all = CSS.highlights.get('log-match');
                const current = CSS.highlights.get('log-current');
                return [all ? all.size : 0, current ? current.size : 0,
                        [...(all || [])].map(r => r.toString()),
                        document.querySelector('[data-log=count]').textContent];
            }"""
        )

    # The counter already reads "1 of N" for the first letters typed; the search runs
    # again (debounced) once the whole term is in.
    page.wait_for_function(
        """() => {
            const all = CSS.highlights.get('log-match');
            return all && all.size > 0
                && [...all].every(r => r.toString().toLowerCase() === 'copied block');
        }"""
    )
    matches, current, texts, counter = shown()
    total = int(counter.split(" of ")[1])
    assert (matches, current) == (total, 1)
    assert set(texts) == {"copied block"}  # case-insensitive, the text as written

    page.keyboard.press("Enter")
    expect(count).to_have_text(re.compile(r"^2 of \d+$"))
    page.keyboard.press("Shift+Enter")
    expect(count).to_have_text(re.compile(r"^1 of \d+$"))
    page.keyboard.press("Shift+Enter")  # wraps to the last
    expect(count).to_have_text(re.compile(r"^(\d+) of \1$"))

    # Lines appended meanwhile are searched too, without typing again.
    expect(count).to_have_text(re.compile(rf"of (?!{total}$)\d+$"), timeout=10_000)
    later = int(count.inner_text().split(" of ")[1])
    assert later > total and shown()[0] >= later
    # Highlighting leaves the text as written.
    assert page.evaluate(PANEL_TEXT) == log.inner_text()
    assert "copied block" in page.evaluate(PANEL_TEXT)

    search.fill("no such words")
    expect(count).to_have_text("No matches")
    page.keyboard.press("Escape")
    expect(search).to_have_value("")
    assert shown()[0] == 0


ANSI_SCRIPT = (
    "sleep 3; "
    r"printf '\033[31mred alert\033[0m plain \033[1;32mbold green\033[0m\n'; "
    r"printf '\033[33mfirst yellow\n'; sleep 1.5; "
    r"printf 'still yellow\n'; sleep 1.5; "
    r"printf '\033[0m\033]0;window title\007\033[2Kbell\007 rings\n'"
)


def test_terminal_colours_are_drawn_and_never_shown_raw(worker, live_server, page, operator):
    services.definition_create_from_data(
        name="Coloured output",
        spec={"subtasks": [{"key": "paint", "name": "Paint", "kind": "SHELL_TASK",
                            "action": {"command": ANSI_SCRIPT}}]},
    )  # fmt: skip
    task = verbs.task_start(definition_name="Coloured output", creator=operator)
    paint = task.subtasks.get()
    wait_for(lambda: subtask(paint.pk).status == "RUNNING", timeout=30)
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log&subtask={paint.pk}")
    log = page.locator("#log-text")
    expect(log).to_contain_text("bell", timeout=30_000)
    expect(page.locator("#log-state")).to_contain_text("not running", timeout=15_000)

    def colour(text: str) -> tuple[str, str]:
        span = log.locator("span", has_text=text).last
        return span.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).fontWeight]")

    assert colour("red alert")[0] == "rgb(248, 113, 113)"
    assert colour("bold green") == ["rgb(74, 222, 128)", "700"]
    assert colour("first yellow")[0] == "rgb(250, 204, 21)"
    # Printed a poll later, still in the colour set before it.
    assert colour("still yellow")[0] == "rgb(250, 204, 21)"
    text = log.inner_text()
    assert "\x1b" not in text
    printed = text[text.index("red alert plain") :]  # (the first line quotes the command)
    assert not re.search(r"\[[0-9;]*[mK]", printed)
    assert "window title" not in printed  # a terminal instruction, not text
    assert "red alert plain bold green\n" in printed
    assert "bell\\x07 rings" in printed  # other control characters: visible, harmless
    assert page.locator("#log-text .log-chunk").count() >= 2
