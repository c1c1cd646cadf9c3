"""The log view's subtask list, rendered as plain strings.

A task can have thousands of subtasks; a template loop spends about a millisecond per row,
string building a few microseconds. The list is sent in chunks ("Show more" loads the
next one with htmx), always far enough to include the selected subtask.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from taskcenter.dashboard import presenters
from taskcenter.tasks.selectors import SubtaskNode

CHUNK = 400

FILTERS = {
    "all": None,
    "failed": {"failed"},
    "running": {"running", "canceling", "ready"},
    "pending": {"pending"},
}


def filtered(nodes: list[SubtaskNode], status_filter: str) -> list[SubtaskNode]:
    wanted = FILTERS.get(status_filter)
    if wanted is None:
        return nodes
    return [n for n in nodes if presenters.subtask_tone(n.status, n.operation) in wanted]


def filter_choices(nodes: list[SubtaskNode]) -> list[tuple[str, str]]:
    """The filters worth offering: All, and each one that some subtask matches."""
    tones = Counter(presenters.subtask_tone(s.status, s.operation) for s in nodes)
    labels = {"all": "All", "failed": "Failed", "running": "Running", "pending": "Pending"}
    return [
        (key, labels[key])
        for key, wanted in FILTERS.items()
        if wanted is None or any(tones[t] for t in wanted)
    ]


def chunk_end(nodes: list[SubtaskNode], start: int, selected_id: int | None) -> int:
    """Where the first chunk ends: CHUNK rows, or past the selected subtask."""
    end = start + CHUNK
    if start == 0 and selected_id is not None:
        for index, node in enumerate(nodes):
            if node.pk == selected_id:
                if index >= end:
                    end = index + 21  # the selected row and a few after it
                break
    return min(end, len(nodes))


def duration_html(shown: presenters.ShownDuration) -> str:
    """A duration's text; a growing one carries the instant the page's script ticks from."""
    since = f' data-since="{escape(shown.since)}"' if shown.since else ""
    return f'<span class="duration"{since}>{escape(shown.text)}</span>'


def render_rows(
    nodes: list[SubtaskNode],
    *,
    start: int,
    end: int,
    selected_id: int | None,
    status_filter: str,
    more_url: str,
) -> str:
    show = f"&amp;show={status_filter}" if status_filter != "all" else ""
    out: list[str] = []
    for node in nodes[start:end]:
        label = presenters.subtask_label(node.status, node.operation)
        tone = presenters.subtask_tone(node.status, node.operation)
        shown = presenters.subtask_duration(
            node.status, node.operation, node.start_time, node.finish_time
        )
        duration = "" if shown is presenters.NO_DURATION else duration_html(shown)
        runs = f"×{node.run_time}" if node.run_time > 1 else ""
        selected = " is-selected" if node.pk == selected_id else ""
        current = ' aria-current="true"' if node.pk == selected_id else ""
        out.append(
            f'<li><a href="?view=log{show}&amp;subtask={node.pk}" class="subtask-row{selected}"'
            f'{current} data-sid="{node.pk}" data-status="{node.status}" '
            f'data-op="{node.operation}" data-tone="{tone}">'
            f'<span class="badge badge-sm badge-{tone}"><span class="badge-dot" '
            f'aria-hidden="true"></span><span class="badge-text">{escape(label)}</span></span>'
            f'<span class="subtask-name">{escape(node.name)}</span>'
            f'<span class="subtask-meta num"><span class="runs" title="Runs">{runs}</span> '
            f"{duration}</span></a></li>"
        )
    remaining = len(nodes) - end
    if remaining > 0:
        count = min(CHUNK, remaining)
        url = f"{more_url}?view=log{show}&amp;from={end}"
        out.append(
            f'<li id="subtask-more" class="list-more"><button type="button" class="btn btn-sm" '
            f'hx-get="{url}" hx-target="#subtask-more" hx-swap="outerHTML">'
            f"Show {count} more of {remaining}</button></li>"
        )
    return "".join(out)
