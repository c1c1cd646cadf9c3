"""Skip: treat a failed subtask as done ("set to success"); in a rollback, as rolled back."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from taskcenter.tasks import sql
from taskcenter.tasks.audit import Action, actor_name
from taskcenter.tasks.models import SubtaskInstance, SubtaskRunMode, SubtaskStatus
from taskcenter.tasks.services.logs import log_line
from taskcenter.tasks.services.progress import (
    audit_subtask_change,
    ready_rollback,
    recount_upstreams,
    set_task,
    start_unblocked,
    task_refresh_status,
)
from taskcenter.tasks.verbs.common import (
    Refusal,
    invalid_state,
    lock_subtask,
    raise_if_refused,
    refusal,
)


def subtask_skip(*, task_id: int, subtask_id: int, actor=None, reason: str = "") -> SubtaskInstance:
    """Treat a FAILED subtask as done ("set to success"); in a rollback, as rolled back."""
    with transaction.atomic():
        task, subtask = lock_subtask(task_id, subtask_id)
        raise_if_refused(subtask_skip_refusal(subtask))
        if subtask.is_rollback:
            new_status, run_mode = SubtaskStatus.PENDING, SubtaskRunMode.ROLLBACK_SKIP
        else:
            new_status, run_mode = SubtaskStatus.SUCCESSFUL, SubtaskRunMode.SKIP
        # The failed attempt joins the history (the timeline), the skip keeps its number.
        sql.run(*sql.archive_attempts_statement([subtask.pk], [SubtaskStatus.FAILED]))
        updated = SubtaskInstance.objects.filter(pk=subtask.pk, status=SubtaskStatus.FAILED).update(
            status=new_status,
            operation=run_mode,
            finish_time=timezone.now(),
            rollback_pending=False,
        )
        if updated != 1:
            raise invalid_state(subtask, "skip")
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
        set_task(task)
        subtask.refresh_from_db()
    return subtask


def subtask_skip_refusal(subtask: SubtaskInstance) -> Refusal | None:
    if subtask.status != SubtaskStatus.FAILED:
        return refusal(subtask, "skip", "Only a failed subtask can be skipped.")
    return None


def subtask_skip_offered(subtask: SubtaskInstance) -> bool:
    return subtask.status == SubtaskStatus.FAILED
