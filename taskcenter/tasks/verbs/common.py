"""What every operator verb shares: the refusal it answers with, and the lock it takes.

Each verb runs in one transaction that first locks the task row (SELECT ... FOR UPDATE on
PostgreSQL; on SQLite every transaction is IMMEDIATE, which serialises writers), asks its
refusal predicate whether the state allows it, then changes rows with compare-and-set
updates whose row count says whether the change happened, writes its audit entry, and
ends by stamping the task's updated_at (progress.set_task), the live pages' change
cursor: every verb changes the task or one of its subtasks. A refused verb raises before
it writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskcenter.core.errors import InvalidState, TaskCenterError, TaskNotFound
from taskcenter.tasks.models import SubtaskInstance, TaskInstance


@dataclass(frozen=True)
class Refusal:
    """Why a verb is not possible now, in two voices: the error the verb raises (the API's
    code and message) and the same reason in the pages' words."""

    error: TaskCenterError
    why: str


def lock_task(task_id: int) -> TaskInstance:
    """Lock the task row for a verb and read it under the lock."""
    try:
        # Parameters are only needed by actions; not decoding them keeps the lock cheap.
        return TaskInstance.objects.select_for_update().defer("parameters").get(pk=task_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def lock_subtask(task_id: int, subtask_id: int) -> tuple[TaskInstance, SubtaskInstance]:
    """Lock the task row and read the subtask with it under that lock, in one statement
    (FOR UPDATE OF the task's row only: the engine writes subtask rows without the task
    lock, and must not wait for an operator)."""
    subtasks = (
        SubtaskInstance.objects.select_related("task")
        .select_for_update(of=("task",))
        .defer("task__parameters")
    )
    try:
        subtask = subtasks.get(pk=subtask_id, task_id=task_id)
    except SubtaskInstance.DoesNotExist:
        lock_task(task_id)  # TaskNotFound when the task is the one missing
        raise TaskNotFound(
            f"The {subtask_id} subtask does not exist in the {task_id} task."
        ) from None
    return subtask.task, subtask


def invalid_state(obj: TaskInstance | SubtaskInstance, action: str) -> InvalidState:
    kind = "subtask" if isinstance(obj, SubtaskInstance) else "task"
    detail = f"{obj.status}" + (f"/{obj.operation}" if obj.operation else "")
    return InvalidState(
        f"This operation ({action}) is not supported for the {obj.pk} {kind} in the {detail} state."
    )


def refusal(obj: TaskInstance | SubtaskInstance, action: str, why: str) -> Refusal:
    return Refusal(invalid_state(obj, action), why)


def raise_if_refused(refused: Refusal | None) -> None:
    if refused is not None:
        raise refused.error
