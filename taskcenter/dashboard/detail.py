"""What the parts of a task's detail page show: the header (status, progress, buttons)
and the selected subtask's panel (with the last part of its log).

The full page, its live poll and the answer after an operation all render these parts,
so they are built here once.
"""

from __future__ import annotations

from taskcenter.dashboard import presenters
from taskcenter.tasks import selectors
from taskcenter.tasks.models import SubtaskStatus, TaskInstance

LOG_VIEW_BYTES = 2 * 1024 * 1024  # the page shows at most the last 2 MiB of a log
ACTIVE = presenters.ACTIVE


def page_context(request, task, nodes, *, view: str, selected) -> dict:
    """The detail page's header, panel and live cursor."""
    states = [(s.pk, s.status, s.operation, s.run_time) for s in nodes]
    return {
        "task": task,
        "view": view,
        "subtask_count": len(nodes),
        "tone_counts": presenters.tone_counts(states),
        **header_context(request, task, states),
        **panel_context(request, task, selected),
        "digest": presenters.digest(task, states),
    }


def states_context(request, task: TaskInstance, states) -> dict:
    """The parts a live update or an operation's answer refreshes out of band."""
    return {
        "states_json": presenters.states_json(states),
        "tone_counts": presenters.tone_counts(states),
        **header_context(request, task, states),
    }


def header_context(request, task: TaskInstance, states) -> dict:
    done = sum(1 for _, status, _, _ in states if status == SubtaskStatus.SUCCESSFUL)
    total = len(states)
    return {
        "task_label": presenters.task_label(task.status, task.operation),
        "task_kind": presenters.task_type_label(task.type),
        "task_tone": presenters.task_tone(task.status, task.operation),
        "task_buttons": presenters.task_buttons(request.user, task),
        "progress_done": done,
        "progress_total": total,
        "progress_percent": round(100 * done / total) if total else 0,
        "task_duration": presenters.task_duration(task),
        "task_duration_parts": presenters.task_duration_parts(
            task, selectors.task_operator_wait(task_id=task.pk)
        ),
        "seen": selectors.task_last_operation_id(task_id=task.pk),
    }


def panel_context(request, task, subtask, *, with_log: bool = True) -> dict:
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
    }
    if with_log:
        tail = selectors.log_tail(subtask=subtask, max_bytes=LOG_VIEW_BYTES)
        context["log"] = {
            "text": from_next_line(tail.text) if tail.offset > 0 else tail.text,
            "hidden_bytes": tail.offset,
            "next_offset": tail.next_offset,
            "size": tail.size,
            "finished": tail.finished,
            "truncated": tail.truncated,
            "max_chars": LOG_VIEW_BYTES,
        }
    return context


def from_next_line(text: str) -> str:
    """A log window that starts mid-line (maybe mid-character) shown from its next line."""
    cut = text.find("\n")
    return text[cut + 1 :] if 0 <= cut < len(text) - 1 else text
