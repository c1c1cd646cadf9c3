"""The operator's operations on a task and its subtasks.

Each operation runs in one transaction that first locks the task row, asks its refusal
predicate whether the task or subtask is in a state that allows it, then changes rows with
compare-and-set updates and writes its audit row.

The refusal predicates (`task_retry_refusal` ...) are public: the pages ask the same
functions whether to enable a button and show their reason when not, so a button and its
service cannot disagree (taskcenter.tasks.operations describes each operation once).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from taskcenter.core.errors import InvalidState, RollbackProhibited, TaskCenterError, TaskNotFound
from taskcenter.tasks.audit import Action, actor_name, audit_entry, audit_record, audit_record_many
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskOperation,
    SubtaskStatus,
    TaskInstance,
    TaskOperation,
    TaskStatus,
)
from taskcenter.tasks.services.logs import log_line
from taskcenter.tasks.services.progress import (
    audit_subtask_change,
    make_ready,
    ready_rollback,
    recount_upstreams,
    set_task,
    start_unblocked,
    task_refresh_status,
)


@dataclass(frozen=True)
class Refusal:
    """Why an operation is not possible now, in two voices: the error its service raises
    (the API's code and message) and the same reason in the pages' words."""

    error: TaskCenterError
    why: str


# --- Task operations ----------------------------------------------------------------------------


def task_retry(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Run every FAILED subtask again; the task continues from where it failed."""
    with transaction.atomic():
        task = _lock_task(task_id)
        _raise_if_refused(task_retry_refusal(task))
        recount_upstreams(task)
        failed = list(
            task.subtasks.filter(status=SubtaskStatus.FAILED).values_list("pk", flat=True)
        )
        make_ready(failed, [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
        set_task(task, status=TaskStatus.RUNNING, operation=TaskOperation.RETRY, finish_time=None)
        _audit_task_change(actor, Action.RETRY, task, reason)
    return task


def task_retry_refusal(task: TaskInstance) -> Refusal | None:
    if task.status == TaskStatus.RUNNING:
        return _refusal(task, "retry", "The task is running; Retry becomes available if it fails.")
    if task.status != TaskStatus.FAILED:
        return _refusal(task, "retry", "The task succeeded; there is nothing to retry.")
    if task.operation == TaskOperation.ROLLBACK:
        return _refusal(
            task,
            "retry",
            "The task failed while rolling back; a rollback cannot be retried as a task. "
            "Roll back again, or skip the failed rollback step.",
        )
    return None


def task_rollback(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Undo every started subtask, walking the DAG backwards ("give up" in OCP)."""
    with transaction.atomic():
        task = _lock_task(task_id)
        _raise_if_refused(task_rollback_refusal(task))
        task.subtasks.exclude(status=SubtaskStatus.PENDING).update(
            operation=SubtaskOperation.ROLLBACK, rollback_pending=True
        )
        set_task(
            task, status=TaskStatus.RUNNING, operation=TaskOperation.ROLLBACK, finish_time=None
        )
        _audit_task_change(actor, Action.ROLLBACK, task, reason)
        ready_rollback(task)
        task_refresh_status(task)
    return task


def task_rollback_refusal(task: TaskInstance) -> Refusal | None:
    if task.status == TaskStatus.RUNNING:
        return _refusal(
            task, "rollback", "The task is running; Roll back becomes available if it fails."
        )
    if task.status != TaskStatus.FAILED:
        return _refusal(task, "rollback", "The task succeeded; there is nothing to roll back.")
    if (
        task.prohibit_rollback
        or task.subtasks.filter(prohibit_rollback=True, start_time__isnull=False).exists()
    ):
        return Refusal(
            RollbackProhibited(
                f"The {task.pk} task cannot be rolled back: a subtask that has run prohibits it."
            ),
            "Rollback is prohibited: a subtask that has run cannot be undone.",
        )
    return None


def _audit_task_change(actor, action: str, task: TaskInstance, reason: str) -> None:
    """A failed task set RUNNING again (retry, rollback)."""
    audit_record(
        actor=actor,
        action=action,
        task=task,
        from_status=TaskStatus.FAILED,
        to_status=TaskStatus.RUNNING,
        reason=reason,
    )


# --- Subtask operations -------------------------------------------------------------------------


def subtask_retry(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    with transaction.atomic():
        task, subtask = _lock_subtask(task_id, subtask_id)
        _raise_if_refused(subtask_retry_refusal(subtask))
        recount_upstreams(task)
        make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
        audit_subtask_change(
            actor,
            Action.SUBTASK_RETRY,
            task,
            subtask,
            SubtaskStatus.FAILED,
            SubtaskStatus.READY,
            reason,
        )
        task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def subtask_retry_refusal(subtask: SubtaskInstance) -> Refusal | None:
    if subtask.status != SubtaskStatus.FAILED:
        return _refusal(subtask, "retry", "Only a failed subtask can be retried.")
    if subtask.is_rollback:
        return _refusal(
            subtask,
            "retry",
            "This step failed while rolling back; skip it, or roll the task back again.",
        )
    return None


def subtask_skip(*, task_id: int, subtask_id: int, actor=None, reason: str = "") -> SubtaskInstance:
    """Treat a FAILED subtask as done ("set to success"); in a rollback, as rolled back."""
    with transaction.atomic():
        task, subtask = _lock_subtask(task_id, subtask_id)
        _raise_if_refused(subtask_skip_refusal(subtask))
        if subtask.is_rollback:
            new_status, operation = SubtaskStatus.PENDING, SubtaskOperation.ROLLBACK_SKIP
        else:
            new_status, operation = SubtaskStatus.SUCCESSFUL, SubtaskOperation.SKIP
        updated = SubtaskInstance.objects.filter(pk=subtask.pk, status=SubtaskStatus.FAILED).update(
            status=new_status,
            operation=operation,
            finish_time=timezone.now(),
            rollback_pending=False,
        )
        if updated != 1:
            raise _invalid_state(subtask, "skip")
        log_line(subtask, f"skipped by {actor_name(actor)}" + (f": {reason}" if reason else ""))
        audit_subtask_change(
            actor, Action.SKIP, task, subtask, SubtaskStatus.FAILED, new_status, reason
        )
        if subtask.is_rollback:
            ready_rollback(task)
        else:
            recount_upstreams(task)  # counts the skipped subtask as succeeded
            start_unblocked(subtask.downstream_ids)
        task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def subtask_skip_refusal(subtask: SubtaskInstance) -> Refusal | None:
    if subtask.status != SubtaskStatus.FAILED:
        return _refusal(subtask, "skip", "Only a failed subtask can be skipped.")
    return None


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
        task, subtask = _lock_subtask(task_id, subtask_id)
        _raise_if_refused(subtask_cancel_refusal(subtask, queued=queued))
        if not _cancel_subtasks(task, [subtask], actor, reason):
            raise _invalid_state(subtask, "cancel")
        task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def subtask_cancel_refusal(subtask: SubtaskInstance, queued: bool = True) -> Refusal | None:
    if subtask.status == SubtaskStatus.CANCELING:
        return _refusal(
            subtask, "cancel", "Cancel was requested; waiting for the worker to stop the step."
        )
    if subtask.status == SubtaskStatus.READY and queued:
        return None
    if subtask.status != SubtaskStatus.RUNNING:
        return _refusal(
            subtask,
            "cancel",
            "Only a running or queued subtask can be canceled."
            if queued
            else "Only a running subtask can be canceled.",
        )
    return None


def task_cancel(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Stop every queued and running subtask of a RUNNING task (one audit row each): the
    queued ones end FAILED (CANCEL) at once, the running ones are stopped by their workers.
    Subtasks still waiting for an upstream stay PENDING: nothing releases them any more."""
    with transaction.atomic():
        task = _lock_task(task_id)
        _raise_if_refused(task_cancel_refusal(task))
        subtasks = list(
            task.subtasks.filter(status__in=[SubtaskStatus.READY, SubtaskStatus.RUNNING]).order_by(
                "series_id", "pk"
            )
        )
        if not _cancel_subtasks(task, subtasks, actor, reason):
            raise _invalid_state(task, "cancel")
        task_refresh_status(task)
        task.refresh_from_db()
    return task


def task_cancel_refusal(task: TaskInstance) -> Refusal | None:
    if task.status != TaskStatus.RUNNING:
        return _refusal(task, "cancel", "Only a running task can be canceled.")
    stoppable = task.subtasks.filter(status__in=[SubtaskStatus.READY, SubtaskStatus.RUNNING])
    if not stoppable.exists():
        if task.subtasks.filter(status=SubtaskStatus.CANCELING).exists():
            return _refusal(
                task, "cancel", "Cancel was requested; waiting for the workers to stop."
            )
        return _refusal(task, "cancel", "No subtask is running or queued.")
    return None


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
        # finds nothing to claim (attempts.attempt_claim) and does nothing.
        if subtask.status == SubtaskStatus.READY and attempt_row.filter(
            status=SubtaskStatus.READY
        ).update(status=SubtaskStatus.FAILED, operation=SubtaskOperation.CANCEL, finish_time=now):
            from_status, to_status = SubtaskStatus.READY, SubtaskStatus.FAILED
            line = f"canceled by {who} before a worker started it"
        elif attempt_row.filter(status=SubtaskStatus.RUNNING).update(
            status=SubtaskStatus.CANCELING, operation=SubtaskOperation.CANCEL
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


# --- Shared -------------------------------------------------------------------------------------


def _lock_task(task_id: int) -> TaskInstance:
    """Lock the task row for an operation, marking it changed (updated_at, the live pages'
    cursor): every operation changes the task or one of its subtasks, and a refused one
    rolls the mark back with the rest of its transaction."""
    try:
        # Parameters are only needed by actions; not decoding them keeps the lock cheap.
        task = TaskInstance.objects.select_for_update().defer("parameters").get(pk=task_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {task_id} task does not exist.") from None
    task.updated_at = timezone.now()
    TaskInstance.objects.filter(pk=task.pk).update(updated_at=task.updated_at)
    return task


def _lock_subtask(task_id: int, subtask_id: int) -> tuple[TaskInstance, SubtaskInstance]:
    """Lock the task and read the subtask under that lock."""
    task = _lock_task(task_id)
    try:
        return task, task.subtasks.get(pk=subtask_id)
    except SubtaskInstance.DoesNotExist:
        raise TaskNotFound(
            f"The {subtask_id} subtask does not exist in the {task.pk} task."
        ) from None


def _invalid_state(obj: TaskInstance | SubtaskInstance, action: str) -> InvalidState:
    kind = "subtask" if isinstance(obj, SubtaskInstance) else "task"
    detail = f"{obj.status}" + (f"/{obj.operation}" if obj.operation else "")
    return InvalidState(
        f"This operation ({action}) is not supported for the {obj.pk} {kind} in the {detail} state."
    )


def _refusal(obj: TaskInstance | SubtaskInstance, action: str, why: str) -> Refusal:
    return Refusal(_invalid_state(obj, action), why)


def _raise_if_refused(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise refusal.error
