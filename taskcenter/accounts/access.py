"""Who may see and do what: the one place every view, API endpoint and page asks.

Every view calls get_task_for_user / get_operable_task_for_user first; every list starts
from visible_tasks(user). Scoping by cluster, when added, belongs here and nowhere else.
"""

from __future__ import annotations

from django.db.models import QuerySet

from taskcenter.tasks.errors import NotPermitted, TaskNotFound
from taskcenter.tasks.models import TaskInstance

PERM_VIEW = "tasks.view_taskinstance"
PERM_RETRY = "tasks.retry_taskinstance"
PERM_ROLLBACK = "tasks.rollback_taskinstance"
PERM_SKIP = "tasks.skip_subtaskinstance"
PERM_CANCEL = "tasks.cancel_subtaskinstance"
PERM_RUN = "tasks.run_taskinstance"

OPERATION_PERMISSIONS = {
    "retry": PERM_RETRY,
    "rollback": PERM_ROLLBACK,
    "subtask_retry": PERM_RETRY,
    "skip": PERM_SKIP,
    "cancel": PERM_CANCEL,
    "run": PERM_RUN,
}


def can_view(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(PERM_VIEW))


def require_view(user) -> None:
    if not can_view(user):
        raise NotPermitted("You do not have permission to view tasks (TASK_VIEWER).")


def can_operate(user, operation: str) -> bool:
    return can_view(user) and user.has_perm(OPERATION_PERMISSIONS[operation])


def visible_tasks(user) -> QuerySet[TaskInstance]:
    """The tasks `user` may see: every task for a viewer, none for anyone else."""
    if not can_view(user):
        return TaskInstance.objects.none()
    return TaskInstance.objects.all()


def get_task_for_user(user, task_id) -> TaskInstance:
    require_view(user)
    try:
        return visible_tasks(user).select_related("cluster", "tenant", "creator").get(pk=task_id)
    except (TaskInstance.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def get_operable_task_for_user(user, task_id, operation: str) -> TaskInstance:
    task = get_task_for_user(user, task_id)
    if not can_operate(user, operation):
        raise NotPermitted(f"You do not have permission to {operation.replace('_', ' ')} tasks.")
    return task
