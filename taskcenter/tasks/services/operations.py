"""The operator's operations on a task and its subtasks.

Each operation runs in one transaction that first locks the task row, asks its refusal
function whether the task or subtask is in a state that allows it (None when it is; else
the error the operation raises, whose message says why), then changes rows with
compare-and-set updates and writes its audit row.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from taskcenter.tasks.audit import actor_name, audit_record
from taskcenter.tasks.errors import InvalidState, RollbackProhibited, TaskCenterError, TaskNotFound
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

# --- Task operations ----------------------------------------------------------------------------


def task_retry(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Run every FAILED subtask again; the task continues from where it failed."""
    with transaction.atomic():
        task = _lock_task(task_id)
        _raise_if_refused(_task_retry_refusal(task))
        recount_upstreams(task)
        failed = list(
            task.subtasks.filter(status=SubtaskStatus.FAILED).values_list("pk", flat=True)
        )
        make_ready(failed, [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
        set_task(task, status=TaskStatus.RUNNING, operation=TaskOperation.RETRY, finish_time=None)
        _audit_task_change(actor, "RETRY", task, reason)
    return task


def _task_retry_refusal(task: TaskInstance) -> TaskCenterError | None:
    allowed = task.status == TaskStatus.FAILED and task.operation != TaskOperation.ROLLBACK
    return _refused_unless(allowed, task, "retry")


def task_rollback(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Undo every started subtask, walking the DAG backwards ("give up" in OCP)."""
    with transaction.atomic():
        task = _lock_task(task_id)
        _raise_if_refused(_task_rollback_refusal(task))
        task.subtasks.exclude(status=SubtaskStatus.PENDING).update(
            operation=SubtaskOperation.ROLLBACK, rollback_pending=True
        )
        set_task(
            task, status=TaskStatus.RUNNING, operation=TaskOperation.ROLLBACK, finish_time=None
        )
        _audit_task_change(actor, "ROLLBACK", task, reason)
        ready_rollback(task)
        task_refresh_status(task)
    return task


def _task_rollback_refusal(task: TaskInstance) -> TaskCenterError | None:
    if task.status != TaskStatus.FAILED:
        return _invalid_state(task, "rollback")
    if (
        task.prohibit_rollback
        or task.subtasks.filter(prohibit_rollback=True, start_time__isnull=False).exists()
    ):
        return RollbackProhibited(
            f"The {task.pk} task cannot be rolled back: a subtask that has run prohibits it."
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
        _raise_if_refused(_subtask_retry_refusal(subtask))
        recount_upstreams(task)
        make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
        audit_subtask_change(
            actor, "SUBTASK_RETRY", task, subtask, SubtaskStatus.FAILED, SubtaskStatus.READY, reason
        )
        task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def _subtask_retry_refusal(subtask: SubtaskInstance) -> TaskCenterError | None:
    allowed = subtask.status == SubtaskStatus.FAILED and not subtask.is_rollback
    return _refused_unless(allowed, subtask, "retry")


def subtask_skip(*, task_id: int, subtask_id: int, actor=None, reason: str = "") -> SubtaskInstance:
    """Treat a FAILED subtask as done ("set to success"); in a rollback, as rolled back."""
    with transaction.atomic():
        task, subtask = _lock_subtask(task_id, subtask_id)
        _raise_if_refused(_subtask_skip_refusal(subtask))
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
        audit_subtask_change(actor, "SKIP", task, subtask, SubtaskStatus.FAILED, new_status, reason)
        if subtask.is_rollback:
            ready_rollback(task)
        else:
            recount_upstreams(task)  # counts the skipped subtask as succeeded
            start_unblocked(subtask.downstream_ids)
        task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def _subtask_skip_refusal(subtask: SubtaskInstance) -> TaskCenterError | None:
    return _refused_unless(subtask.status == SubtaskStatus.FAILED, subtask, "skip")


def subtask_cancel(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    """Ask the worker to stop a RUNNING subtask; it ends FAILED with operation CANCEL."""
    with transaction.atomic():
        task, subtask = _lock_subtask(task_id, subtask_id)
        _raise_if_refused(_subtask_cancel_refusal(subtask))
        updated = SubtaskInstance.objects.filter(
            pk=subtask.pk, status=SubtaskStatus.RUNNING
        ).update(status=SubtaskStatus.CANCELING, operation=SubtaskOperation.CANCEL)
        if updated != 1:
            raise _invalid_state(subtask, "cancel")
        log_line(subtask, f"cancel requested by {actor_name(actor)}")
        audit_subtask_change(
            actor, "CANCEL", task, subtask, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING, reason
        )
        subtask.refresh_from_db()
    return subtask


def _subtask_cancel_refusal(subtask: SubtaskInstance) -> TaskCenterError | None:
    return _refused_unless(subtask.status == SubtaskStatus.RUNNING, subtask, "cancel")


# --- Shared -------------------------------------------------------------------------------------


def _lock_task(task_id: int) -> TaskInstance:
    try:
        # Parameters are only needed by actions; not decoding them keeps the lock cheap.
        return TaskInstance.objects.select_for_update().defer("parameters").get(pk=task_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


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


def _refused_unless(
    allowed: bool, obj: TaskInstance | SubtaskInstance, action: str
) -> TaskCenterError | None:
    return None if allowed else _invalid_state(obj, action)


def _raise_if_refused(refusal: TaskCenterError | None) -> None:
    if refusal is not None:
        raise refusal
