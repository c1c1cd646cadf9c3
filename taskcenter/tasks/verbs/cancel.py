"""Cancel: stop one running or queued subtask (subtask cancel), or every running and
queued subtask of a running task (cancel task)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from taskcenter.tasks.audit import Action, actor_name, audit_entry, audit_record_many
from taskcenter.tasks.models import (
    ACTIVE_SUBTASK_STATUSES,
    NodeType,
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskStatus,
)
from taskcenter.tasks.services.logs import log_line
from taskcenter.tasks.services.progress import set_task, task_refresh_status
from taskcenter.tasks.verbs.common import (
    Refusal,
    invalid_state,
    lock_subtask,
    lock_task,
    raise_if_refused,
    refusal,
)

# --- Subtask cancel -----------------------------------------------------------------------------


def subtask_cancel(
    *, task_id: int, subtask_id: int, actor=None, reason: str = "", queued: bool = True
) -> SubtaskInstance:
    """Stop a subtask: a RUNNING one is asked to stop (CANCELING; its worker ends it FAILED
    with operation CANCEL); a READY one, still waiting for a worker, ends FAILED with
    operation CANCEL at once, and its message, when a worker takes it, claims nothing.

    `queued=False` keeps OCP's rule (only RUNNING can be canceled) for the API clients
    that expect it.
    """
    with transaction.atomic():
        task, subtask = lock_subtask(task_id, subtask_id)
        raise_if_refused(subtask_cancel_refusal(subtask, queued=queued))
        if not _cancel_subtasks(task, [subtask], actor, reason):
            raise invalid_state(subtask, "cancel")
        task_refresh_status(task)
        set_task(task)
        subtask.refresh_from_db()
    return subtask


def subtask_cancel_refusal(subtask: SubtaskInstance, queued: bool = True) -> Refusal | None:
    if subtask.status == SubtaskStatus.CANCELING:
        return refusal(
            subtask, "cancel", "Cancel was requested; waiting for the worker to stop the step."
        )
    if subtask.status == SubtaskStatus.READY and queued:
        return None
    if subtask.status != SubtaskStatus.RUNNING:
        return refusal(
            subtask,
            "cancel",
            "Only a running or queued subtask can be canceled."
            if queued
            else "Only a running subtask can be canceled.",
        )
    return None


def subtask_cancel_offered(subtask: SubtaskInstance) -> bool:
    """Shown while the subtask is queued, running or being stopped (then disabled)."""
    return subtask.status in ACTIVE_SUBTASK_STATUSES


# --- Cancel task --------------------------------------------------------------------------------


def task_cancel(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Stop every queued and running subtask of a RUNNING task (one audit entry each): the
    queued ones end FAILED (CANCEL) at once, the running ones are stopped by their workers.
    Subtasks still waiting for an upstream stay PENDING: nothing releases them any more."""
    with transaction.atomic():
        task = lock_task(task_id)
        raise_if_refused(task_cancel_refusal(task))
        subtasks = list(
            task.subtasks.filter(status__in=[SubtaskStatus.READY, SubtaskStatus.RUNNING]).order_by(
                "series_id", "pk"
            )
        )
        if not _cancel_subtasks(task, subtasks, actor, reason):
            raise invalid_state(task, "cancel")
        task_refresh_status(task)
        set_task(task)
        task.refresh_from_db()
    return task


def task_cancel_refusal(task: TaskInstance) -> Refusal | None:
    if task.status != TaskStatus.RUNNING:
        return refusal(task, "cancel", "Only a running task can be canceled.")
    stoppable = task.subtasks.filter(status__in=[SubtaskStatus.READY, SubtaskStatus.RUNNING])
    if not stoppable.exists():
        if task.subtasks.filter(status=SubtaskStatus.CANCELING).exists():
            return refusal(task, "cancel", "Cancel was requested; waiting for the workers to stop.")
        return refusal(task, "cancel", "No subtask is running or queued.")
    return None


def task_cancel_offered(task: TaskInstance) -> bool:
    return task.status == TaskStatus.RUNNING


def _cancel_subtasks(task: TaskInstance, subtasks: list[SubtaskInstance], actor, reason) -> int:
    """Compare-and-set each subtask out of READY (to FAILED) or RUNNING (to CANCELING), at
    the attempt read under the task's lock; log and audit each one changed. Returns how
    many changed.

    A worker's claim takes no task lock: a READY subtask read here can be claimed before
    its update. Its READY update then changes nothing, and the RUNNING one asks the worker
    that claimed it to stop instead, so what was queued when the operator looked is
    stopped either way.
    """
    now = timezone.now()
    who = actor_name(actor)
    entries = []
    for subtask in subtasks:
        attempt_row = SubtaskInstance.objects.filter(pk=subtask.pk, attempt=subtask.attempt)
        from_status, to_status, line = "", "", ""
        # Keyed by the attempt: the READY attempt's message, when a worker takes it later,
        # cannot claim it (it claims a READY sibling instead, if any: attempt_claim_turn).
        if subtask.status == SubtaskStatus.READY and attempt_row.filter(
            status=SubtaskStatus.READY
        ).update(status=SubtaskStatus.FAILED, operation=SubtaskRunMode.CANCEL, finish_time=now):
            from_status, to_status = SubtaskStatus.READY, SubtaskStatus.FAILED
            line = f"canceled by {who} before a worker started it"
        elif subtask.node_type == NodeType.APPROVAL_TASK and attempt_row.filter(
            status=SubtaskStatus.RUNNING
        ).update(status=SubtaskStatus.FAILED, operation=SubtaskRunMode.CANCEL, finish_time=now):
            # A waiting approval gate has no worker to stop it: it ends at once.
            from_status, to_status = SubtaskStatus.RUNNING, SubtaskStatus.FAILED
            line = f"approval canceled by {who} while it waited"
        elif attempt_row.filter(status=SubtaskStatus.RUNNING).update(
            status=SubtaskStatus.CANCELING, operation=SubtaskRunMode.CANCEL
        ):
            from_status, to_status = SubtaskStatus.RUNNING, SubtaskStatus.CANCELING
            line = f"cancel requested by {who}"
        else:
            continue
        log_line(subtask, line + (f": {reason}" if reason else ""))
        entries.append(
            audit_entry(
                actor=actor,
                action=Action.CANCEL,
                task=task,
                subtask=subtask,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
            )
        )
    audit_record_many(entries)
    return len(entries)
