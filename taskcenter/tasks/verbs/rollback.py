"""Roll back: undo every started subtask of a failed task, walking its DAG backwards
("give up" in OCP)."""

from __future__ import annotations

from django.db import transaction

from taskcenter.core.errors import RollbackProhibited
from taskcenter.tasks import sql
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import (
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
)
from taskcenter.tasks.services.progress import ready_rollback, set_task, task_refresh_status
from taskcenter.tasks.verbs.common import Refusal, lock_task, raise_if_refused, refusal
from taskcenter.tasks.verbs.retry import audit_task_restart


def task_rollback(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Undo every started subtask, walking the DAG backwards ("give up" in OCP)."""
    with transaction.atomic():
        task = lock_task(task_id)
        raise_if_refused(task_rollback_refusal(task))
        sql.run(*sql.archive_before_rollback_statement(task.pk))  # the timeline's history
        task.subtasks.exclude(status=SubtaskStatus.PENDING).update(
            operation=SubtaskRunMode.ROLLBACK, rollback_pending=True
        )
        set_task(task, status=TaskStatus.RUNNING, operation=TaskRunMode.ROLLBACK, finish_time=None)
        audit_task_restart(actor, Action.ROLLBACK, task, reason)
        ready_rollback(task)
        task_refresh_status(task)
    return task


def task_rollback_refusal(task: TaskInstance) -> Refusal | None:
    if task.status == TaskStatus.RUNNING:
        return refusal(
            task, "rollback", "The task is running; Roll back becomes available if it fails."
        )
    if task.status != TaskStatus.FAILED:
        return refusal(task, "rollback", "The task succeeded; there is nothing to roll back.")
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


def task_rollback_offered(task: TaskInstance) -> bool:
    """Shown (maybe disabled, with its reason) until the task has succeeded."""
    return task.status != TaskStatus.SUCCESSFUL
