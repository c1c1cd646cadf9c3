"""Keyboard and focus on the task page, in a real headless Chromium (Playwright).

A wide fan-out is one tab stop with arrow keys inside, the log view's subtask list too;
after an operation's confirmation (or its cancel) the focus is back on the button that
opened it, or on its replacement once the page updated; dialogs keep the focus inside;
"jump to subtask" finds a node by name or id; the first view of a 5-wide fan-out shows
every node. Tasks are built with tests/factories.py (no worker needed).

Set TASKCENTER_SCREENSHOTS=<dir> to save pictures of the suggestions and of the keyboard's
place in a fan-out there, light and dark.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskcenter.tasks import services
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import sign_in
from tests.factories import drive, start

PASSWORD = "Pa55word!long"

SCREENSHOTS = os.environ.get("TASKCENTER_SCREENSHOTS")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    """The page in light and dark, when TASKCENTER_SCREENSHOTS names a directory."""
    if not SCREENSHOTS:
        return
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{scheme}.png"))
    page.emulate_media(color_scheme="light")


def fan_out(operator, width: int, fail: str | None = None):
    """A 1 -> width -> 1 fan-out, run to its end (or failed at the node named `fail`)."""
    task = start("Benchmark fan-out", creator=operator, width=width)
    return drive(task, fail={fail} if fail else set(), quiet=True)


def open_flow(page, live_server, task, **query) -> None:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=flow{extra}")
    expect(page.locator("html[data-dag-ready]")).to_have_count(1)


def active(page) -> dict:
    """What has the focus: its tag, id, data-sid, data-action, aria-label."""
    return page.evaluate(
        """() => { const el = document.activeElement;
            return { tag: el.tagName.toLowerCase(), id: el.id, sid: el.dataset && el.dataset.sid,
                     action: el.dataset && el.dataset.action,
                     label: el.getAttribute('aria-label'),
                     region: ((el.parentElement && el.parentElement.closest('[id]')) || {}).id }; }"""
    )


def tabs_until(page, predicate: str, limit: int) -> int:
    """Press Tab until the focused element matches the JS `predicate`; the presses needed."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({predicate}); }}"):
            return presses
    return limit + 1


# --- One tab stop per group, arrows inside ------------------------------------------------------


def test_a_200_wide_fan_out_is_one_tab_stop_and_arrows_move_inside(live_server, page, operator):
    task = fan_out(operator, 200, fail="node 57")
    sign_in(page, live_server)
    open_flow(page, live_server, task)
    expect(page.locator("#subtask-title")).to_have_text("node 57")

    # From the graph to the log: the graph is one stop, not 202.
    page.locator("#dag-canvas").focus()
    presses = tabs_until(page, "el.id === 'log-text'", limit=40)
    assert presses <= 10, f"{presses} Tab presses from the graph to the log"
    tabbable = page.evaluate(
        "() => [...document.querySelectorAll('#dag-svg [data-sid]')]"
        ".filter(el => el.tabIndex >= 0).length"
    )
    assert tabbable == 1

    # Tab into the graph lands on the selected subtask; Shift+Tab from the panel comes back.
    page.locator("#dag-canvas").focus()
    page.keyboard.press("Tab")
    assert active(page)["label"].startswith("node 57 — ")
    sids = page.evaluate(
        "() => [...document.querySelectorAll('#dag-svg [data-sid]')].map(e => e.dataset.sid)"
    )
    names = page.evaluate(
        "() => [...document.querySelectorAll('#dag-svg [data-sid]')]"
        ".map(e => e.getAttribute('aria-label').split(' — ')[0])"
    )
    index = names.index("node 57")

    # Left and right follow the row of tiles, up and down its columns (40 tiles a row).
    page.keyboard.press("ArrowRight")
    assert active(page)["sid"] == sids[index + 1]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert active(page)["sid"] == sids[index - 1]
    page.keyboard.press("ArrowDown")
    assert active(page)["sid"] == sids[index - 1 + 40]
    shoot(page, "keys-fan-out-focus")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert active(page)["sid"] == sids[index - 1 - 40]
    # Up from the first row leaves the block for the node above it; End and Home go to the
    # last and first subtask in the graph's order.
    page.keyboard.press("ArrowUp")
    assert active(page)["label"].startswith("start — ")
    page.keyboard.press("End")
    assert active(page)["label"].startswith("end — ")
    page.keyboard.press("Home")
    assert active(page)["label"].startswith("start — ")
    page.keyboard.press("ArrowDown")
    assert active(page)["sid"] in sids[1:41]
    moved_to = active(page)
    # Only one stop still: the one the arrows reached.
    stops = page.evaluate(
        "() => [...document.querySelectorAll('#dag-svg [data-sid]')]"
        ".filter(el => el.tabIndex >= 0).map(el => el.dataset.sid)"
    )
    assert stops == [moved_to["sid"]]

    # Enter opens the subtask as a click does; Space too.
    page.keyboard.press("Enter")
    expect(page.locator("#subtask-title")).to_have_text(moved_to["label"].split(" — ")[0])
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    target = active(page)["label"].split(" — ")[0]
    page.keyboard.press(" ")
    expect(page.locator("#subtask-title")).to_have_text(target)
    expect(page).to_have_url(re.compile(r"subtask=\d+"))
    assert active(page)["label"].startswith(f"{target} — ")


def test_the_log_views_subtask_list_is_one_tab_stop(live_server, page, operator):
    task = fan_out(operator, 200, fail="node 3")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/tasks/{task.pk}/?view=log")
    expect(page.locator("#subtask-title")).to_have_text("node 3")
    page.locator("#list-filter a").last.focus()
    presses = tabs_until(page, "el.id === 'log-text'", limit=40)
    assert presses <= 10, f"{presses} Tab presses from the list to the log"

    page.locator("#list-filter a").last.focus()
    page.keyboard.press("Tab")
    assert active(page)["sid"] == str(SubtaskInstance.objects.get(task=task, name="node 3").pk)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    node5 = SubtaskInstance.objects.get(task=task, name="node 5")
    assert active(page)["sid"] == str(node5.pk)
    page.keyboard.press("Enter")
    expect(page.locator("#subtask-title")).to_have_text("node 5")
    page.keyboard.press("Home")
    assert active(page)["sid"] == str(SubtaskInstance.objects.get(task=task, name="start").pk)


# --- Focus after a confirmation, and dialogs that keep it ---------------------------------------


def failed_chain(operator):
    return drive(start(creator=operator), fail={"Copy tenant data"})


def test_focus_returns_to_the_operated_button_after_confirm_and_cancel(live_server, page, operator):
    task = failed_chain(operator)
    sign_in(page, live_server)
    open_flow(page, live_server, task)

    # Cancel with Escape, then with Back: the focus is on the button that opened the dialog.
    retry = page.locator("#task-header [data-action=retry]")
    retry.focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog[open]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert active(page)["action"] == "retry" and active(page)["region"] == "task-header"

    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Back").focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert active(page)["action"] == "retry"

    # Confirm: the header is replaced by the answer; the focus is on the new Retry button.
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    page.keyboard.type("network blip")
    dialog.get_by_role("button", name="Retry task").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#flash")).to_contain_text("Retry started")
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator("#task-status")).to_have_text(re.compile("Running"))
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.dataset.action === 'retry'"
    )
    assert active(page)["region"] == "task-header"

    # The page then updates itself (another process claims the attempt, unless a worker
    # left running by an earlier test took and even finished it first): still there.
    copy = SubtaskInstance.objects.get(task=task, name="Copy tenant data")
    services.attempt_claim(subtask_id=copy.pk, attempt=copy.attempt, executor="elsewhere")
    expect(page.locator("#subtask-summary .badge")).to_have_text(
        re.compile("^(Running|Successful)$"), timeout=10_000
    )
    assert active(page)["action"] == "retry" and active(page)["region"] == "task-header"


def test_focus_stays_in_the_subtask_panel_when_its_button_goes_away(live_server, page, operator):
    task = failed_chain(operator)
    sign_in(page, live_server)
    open_flow(page, live_server, task)
    expect(page.locator("#subtask-title")).to_have_text("Copy tenant data")

    page.locator("#subtask-summary [data-action=subtask_retry]").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=re.compile("Retry subtask")).focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog")).to_have_count(0)
    # The subtask is queued again: Retry is gone (only Cancel of the queued run is left),
    # so the focus is on its panel rather than lost to the page.
    expect(page.locator("#subtask-summary [data-action=subtask_retry]")).to_have_count(0)
    page.wait_for_function(
        "() => document.activeElement !== document.body"
        " && !!document.activeElement.closest('#subtask-panel')"
    )


def test_the_confirmation_dialog_keeps_the_focus_inside(live_server, page, operator):
    task = failed_chain(operator)
    sign_in(page, live_server)
    open_flow(page, live_server, task)
    page.locator("#task-header [data-action=rollback]").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("textarea")).to_be_focused()

    inside = "() => !!document.activeElement.closest('dialog[open]')"
    seen = []
    for _ in range(7):
        page.keyboard.press("Tab")
        assert page.evaluate(inside), f"Tab left the dialog for {active(page)}"
        seen.append(page.evaluate("() => document.activeElement.outerHTML.slice(0, 40)"))
    assert len(set(seen)) == 3  # reason, Back, Roll back task, and round again
    for _ in range(7):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside), f"Shift+Tab left the dialog for {active(page)}"
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert active(page)["action"] == "rollback"


# --- Jump to subtask ------------------------------------------------------------------------------


def canvas_shows(page, sid: str) -> bool:
    return page.evaluate(
        """(sid) => { const c = document.getElementById('dag-canvas').getBoundingClientRect();
            const r = document.querySelector(`#dag-svg [data-sid="${sid}"]`).getBoundingClientRect();
            return r.left >= c.left && r.right <= c.right && r.top >= c.top && r.bottom <= c.bottom; }""",
        sid,
    )


def test_jump_to_subtask_finds_a_node_by_name_or_id_with_the_keyboard(live_server, page, operator):
    task = fan_out(operator, 200, fail="node 3")
    sign_in(page, live_server)
    open_flow(page, live_server, task)
    wanted = SubtaskInstance.objects.get(task=task, name="node 187")

    # "/" goes to the search; it suggests matches, the best first.
    page.locator("#dag-canvas").focus()
    page.keyboard.press("/")
    search = page.get_by_role("combobox", name=re.compile("Jump to subtask"))
    expect(search).to_be_focused()
    page.keyboard.type("node 187")
    options = page.get_by_role("option")
    expect(options.first).to_contain_text("node 187")
    expect(search).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(search).to_have_attribute("aria-activedescendant", re.compile(".+"))
    shoot(page, "keys-jump")
    page.keyboard.press("Enter")

    # The node is selected, in view, focused, and its panel is open.
    expect(page.locator("#subtask-title")).to_have_text("node 187")
    node = page.locator(f'#dag-svg [data-sid="{wanted.pk}"]')
    expect(node).to_have_class(re.compile("is-selected"))
    page.wait_for_function(
        "(sid) => document.activeElement.dataset.sid === sid", arg=str(wanted.pk)
    )
    page.wait_for_function(
        """(sid) => { const c = document.getElementById('dag-canvas').getBoundingClientRect();
            const r = document.querySelector(`#dag-svg [data-sid="${sid}"]`).getBoundingClientRect();
            return r.left >= c.left && r.right <= c.right && r.top >= c.top && r.bottom <= c.bottom; }""",
        arg=str(wanted.pk),
    )
    expect(search).to_have_attribute("aria-expanded", "false")

    # By id: "#<id>" finds the subtask with that id.
    other = SubtaskInstance.objects.get(task=task, name="node 12")
    search.fill("")
    search.focus()
    page.keyboard.type(f"#{other.pk}")
    expect(options.first).to_contain_text("node 12")
    page.keyboard.press("Enter")  # the first match is chosen without moving to it
    expect(page.locator("#subtask-title")).to_have_text("node 12")

    # Nothing found says so; Escape closes the suggestions.
    search.fill("")
    search.focus()
    page.keyboard.type("no such thing")
    expect(page.locator("#dag-jump-list")).to_contain_text("No subtask matches")
    page.keyboard.press("Escape")
    expect(search).to_have_attribute("aria-expanded", "false")


# --- The first view of a fan-out fits -------------------------------------------------------------


@pytest.mark.parametrize("width", [5, 7])
def test_the_first_view_of_a_wide_fan_out_shows_every_node(live_server, page, operator, width):
    task = drive(start("Scale out tenant units", creator=operator, units=width), quiet=True)
    sign_in(page, live_server)
    open_flow(page, live_server, task)
    outside = page.evaluate(
        """() => { const canvas = document.getElementById('dag-canvas');
            const c = canvas.getBoundingClientRect();
            const right = c.left + canvas.clientWidth, bottom = c.top + canvas.clientHeight;
            return [...document.querySelectorAll('#dag-svg [data-sid]')].filter(el => {
                const r = el.getBoundingClientRect();
                return r.left < c.left - 0.5 || r.right > right + 0.5
                    || r.top < c.top - 0.5 || r.bottom > bottom + 0.5;
            }).map(el => el.getAttribute('aria-label')); }"""
    )
    assert page.locator("#dag-svg [data-sid]").count() == width + 2
    assert outside == [], f"cut off at first view: {outside}"


def test_the_account_pages_dialogs_keep_the_focus_and_give_it_back(live_server, page, operator):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/account/")
    opener = page.get_by_role("button", name="New access key")
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    inside = "() => !!document.activeElement.closest('dialog[open]')"
    for key in ["Tab"] * 5 + ["Shift+Tab"] * 5:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"{key} left the dialog for {active(page)}"
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(opener).to_be_focused()
