"""What the parts of a task's detail page show: the header (status, progress, buttons)
and the selected subtask's panel (with the last part of its log).

The full page and its live poll render these parts, so they are built here once (after a
verb, the page's live poll renders them: taskcenter.dashboard.verb_views).
"""

from __future__ import annotations

from django.urls import reverse

from taskcenter.accounts import access
from taskcenter.core import terminal
from taskcenter.core.errors import InvalidParameter
from taskcenter.dashboard import approvals, presenters, waiting
from taskcenter.tasks import selectors
from taskcenter.tasks.models import SubtaskStatus, TaskInstance

LOG_VIEW_BYTES = 2 * 1024 * 1024  # the page shows at most the last 2 MiB of a log
ACTIVE = presenters.ACTIVE


def page_context(request, task, nodes, *, view: str, selected, attempt: int | None = None) -> dict:
    """The detail page's header, panel and live cursor."""
    states = [(s.pk, s.status, s.operation, s.run_time) for s in nodes]
    return {
        "task": task,
        "view": view,
        "subtask_count": len(nodes),
        "tone_counts": presenters.tone_counts(states),
        **header_context(request, task, states),
        **panel_context(request, task, selected, attempt=attempt),
        "digest": presenters.digest(task, states),
    }


def states_context(request, task: TaskInstance, states) -> dict:
    """The parts a live update refreshes out of band."""
    return {
        "states_json": presenters.states_json(states),
        "tone_counts": presenters.tone_counts(states),
        **header_context(request, task, states),
    }


def _run_again_url(user, task: TaskInstance) -> str:
    """The Run form filled from this task, for a user who may run jobs; "" otherwise (or
    for a task started with its own subtasks, of no job)."""
    if task.definition_id is None or not access.can_run_jobs(user):
        return ""
    url = reverse("dashboard:job_detail", args=[task.definition_id])
    return f"{url}?repeat={task.pk}#run"


def header_context(request, task: TaskInstance, states) -> dict:
    done = sum(1 for _, status, _, _ in states if status == SubtaskStatus.SUCCESSFUL)
    total = len(states)
    return {
        "task_label": presenters.task_label(task.status, task.operation),
        "task_kind": presenters.task_type_label(task.type),
        "task_tone": presenters.task_tone(task.status, task.operation),
        "task_buttons": presenters.task_buttons(request.user, task),
        "run_again_url": _run_again_url(request.user, task),
        "progress_done": done,
        "progress_total": total,
        "progress_percent": round(100 * done / total) if total else 0,
        "task_duration": presenters.task_duration(task),
        "task_duration_parts": presenters.task_duration_parts(
            task, selectors.task_operator_wait(task_id=task.pk)
        ),
        "seen": selectors.task_last_audit_entry_id(task_id=task.pk),
    }


def panel_context(
    request, task, subtask, *, with_log: bool = True, attempt: int | None = None
) -> dict:
    """The selected subtask's panel; its log shows one attempt: `attempt`, else the latest."""
    if subtask is None:
        return {"subtask": None}
    context = {
        "subtask": subtask,
        "subtask_label": presenters.subtask_label(subtask.status, subtask.operation),
        "subtask_tone": presenters.subtask_tone(subtask.status, subtask.operation),
        "subtask_buttons": presenters.subtask_buttons(request.user, subtask, task),
        "subtask_duration": presenters.subtask_duration(
            subtask.status, subtask.operation, subtask.start_time, subtask.finish_time
        ),
        "io": presenters.subtask_io(subtask),
        "subtask_active": subtask.status in ACTIVE,
        "approval": approvals.approval_box(request.user, task, subtask),
        "waiting": waiting.waiting_for(request.user, task, subtask),
    }
    if with_log:
        context["log"] = log_context(subtask, attempt)
    return context


def log_context(subtask, attempt: int | None) -> dict:
    """The last part of one attempt's log (the whole log when the subtask never ran), with
    the attempts to pick from."""
    ranges = selectors.log_attempt_ranges(subtask=subtask)
    chosen = None
    if attempt is not None:
        chosen = next((r for r in ranges if r.attempt == attempt), None)
        if chosen is None:
            have = ", ".join(str(r.attempt) for r in ranges) or "none yet"
            raise InvalidParameter.because(
                "attempt", f"subtask {subtask.pk} has no attempt {attempt} (it has: {have})."
            )
    elif ranges:
        chosen = ranges[-1]
    if chosen is None:
        tail = selectors.log_tail(subtask=subtask, max_bytes=LOG_VIEW_BYTES)
        first = 0
    else:
        first = max(chosen.start, chosen.end - LOG_VIEW_BYTES)
        tail = selectors.log_read(subtask=subtask, offset=first, attempt=chosen.attempt)
        first = chosen.start
    text = from_next_line(tail.text) if tail.offset > first else tail.text
    piece = log_piece(text, tail.next_offset, finished=tail.finished)
    return {
        **piece,
        "attempt": chosen.attempt if chosen else None,
        # An attempt that has written nothing yet: the poll that brings its first output
        # also brings its picker label with the time it began (log_poll.answer).
        "quiet": chosen.attempt if chosen and chosen.size == 0 and len(ranges) > 1 else None,
        "pinned": attempt is not None,
        "attempts": [
            {
                "number": r.attempt,
                "label": presenters.attempt_label(r, latest=r is ranges[-1]),
                "chosen": r is chosen,
            }
            for r in ranges
        ],
        "hidden_bytes": tail.offset - first,
        "size": (chosen.size if chosen else tail.size),
        "truncated": tail.truncated,
        "max_chars": LOG_VIEW_BYTES,
    }


def log_piece(text: str, next_offset: int, *, finished: bool, style=terminal.PLAIN) -> dict:
    """A piece of log as the page shows it: colours drawn, control characters made
    visible, and the poll's cursor (offset and the colour in force there). While the
    subtask runs, a sequence cut by the end of what was written so far is left for the
    next poll, which reads it whole."""
    if not finished:
        cut = terminal.incomplete_tail(text)
        if cut:
            next_offset -= len(text[-cut:].encode())
            text = text[:-cut]
    html, style = terminal.render_html(text, style)
    return {
        "html": html,
        "has_text": bool(text),
        "next_offset": next_offset,
        "style": style.encode(),
        "finished": finished,
    }


def from_next_line(text: str) -> str:
    """A log window that starts mid-line (maybe mid-character) shown from its next line."""
    cut = text.find("\n")
    return text[cut + 1 :] if 0 <= cut < len(text) - 1 else text
