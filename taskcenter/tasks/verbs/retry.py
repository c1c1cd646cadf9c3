"""Retry: run a failed task's failed subtasks again (task retry), or one failed subtask
(subtask retry)."""

from __future__ import annotations

from django.db import transaction

from taskcenter.tasks.audit import Action, audit_record
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
)
from taskcenter.tasks.services.progress import (
    audit_subtask_change,
    make_ready,
    recount_upstreams,
    set_task,
)
from taskcenter.tasks.verbs.common import (
    Refusal,
    invalid_state,
    lock_subtask,
    lock_task,
    raise_if_refused,
    refusal,
)

# --- Task retry ---------------------------------------------------------------------------------


def task_retry(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Run every FAILED subtask again; the task continues from where it failed."""
    with transaction.atomic():
        task = lock_task(task_id)
        raise_if_refused(task_retry_refusal(task))
        recount_upstreams(task)
        failed = list(
            task.subtasks.filter(status=SubtaskStatus.FAILED).values_list("pk", flat=True)
        )
        make_ready(failed, [SubtaskStatus.FAILED], operation=SubtaskRunMode.RETRY)
        set_task(task, status=TaskStatus.RUNNING, operation=TaskRunMode.RETRY, finish_time=None)
        audit_task_restart(actor, Action.RETRY, task, reason)
    return task


def task_retry_refusal(task: TaskInstance) -> Refusal | None:
    if task.status == TaskStatus.RUNNING:
        return refusal(task, "retry", "The task is running; Retry becomes available if it fails.")
    if task.status != TaskStatus.FAILED:
        return refusal(task, "retry", "The task succeeded; there is nothing to retry.")
    if task.operation == TaskRunMode.ROLLBACK:
        return refusal(
            task,
            "retry",
            "The task failed while rolling back; a rollback cannot be retried as a task. "
            "Roll back again, or skip the failed rollback step.",
        )
    return None


def task_retry_offered(task: TaskInstance) -> bool:
    """Shown (maybe disabled, with its reason) until the task has succeeded."""
    return task.status != TaskStatus.SUCCESSFUL


def audit_task_restart(actor, action: str, task: TaskInstance, reason: str) -> None:
    """The audit entry of a failed task set RUNNING again (retry, rollback)."""
    audit_record(
        actor=actor,
        action=action,
        task=task,
        from_status=TaskStatus.FAILED,
        to_status=TaskStatus.RUNNING,
        reason=reason,
    )


# --- Subtask retry ------------------------------------------------------------------------------


def subtask_retry(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    """Run one FAILED subtask again; the task continues when it succeeds."""
    with transaction.atomic():
        task, subtask = lock_subtask(task_id, subtask_id)
        raise_if_refused(subtask_retry_refusal(subtask))
        recount_upstreams(task)
        if not make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskRunMode.RETRY):
            raise invalid_state(subtask, "retry")
        audit_subtask_change(
            actor,
            Action.SUBTASK_RETRY,
            task,
            subtask,
            SubtaskStatus.FAILED,
            SubtaskStatus.READY,
            reason,
        )
        # A READY subtask makes its task RUNNING (taskcenter.tasks.services.progress's
        # rule): known here, so not derived again from every subtask's status.
        if task.status != TaskStatus.RUNNING:
            set_task(task, status=TaskStatus.RUNNING, finish_time=None)
        else:
            set_task(task)
        subtask.refresh_from_db()
    return subtask


def subtask_retry_refusal(subtask: SubtaskInstance) -> Refusal | None:
    if subtask.status != SubtaskStatus.FAILED:
        return refusal(subtask, "retry", "Only a failed subtask can be retried.")
    if subtask.is_rollback:
        return refusal(
            subtask,
            "retry",
            "This step failed while rolling back; skip it, or roll the task back again.",
        )
    return None


def subtask_retry_offered(subtask: SubtaskInstance) -> bool:
    return subtask.status == SubtaskStatus.FAILED
