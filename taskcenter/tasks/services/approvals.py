"""Approval gates on the engine's side: how a gate ends, and the reaper's timeout.

A gate opens without a worker, in the statement that would have made it READY
(sql.ready_assignments): RUNNING, no executor, no heartbeat. It ends like any attempt
(attempts.attempt_finish: approved is a success that releases the steps after it,
rejected a failure), either by a person's decision (verbs.approval) or here, when its
timeout passes with no decision: the gate then fails or approves itself as its
`onTimeout` setting says. Nothing holds a worker while a gate waits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskcenter.tasks import sql
from taskcenter.tasks.audit import Action
from taskcenter.tasks.definitions import approval_settings
from taskcenter.tasks.models import NodeType, SubtaskInstance, SubtaskStatus
from taskcenter.tasks.services.attempts import attempt_finish
from taskcenter.tasks.services.logs import format_log_line
from taskcenter.tasks.services.progress import TaskState, audit_subtask_change


def decision(kind: str, by: str, reason: str, at: datetime | None = None) -> dict[str, Any]:
    """What a gate's `result` keeps of its decision: approved, rejected or timed out."""
    return {
        "approval": {
            "decision": kind,
            "by": by,
            "reason": reason,
            "at": (at or timezone.now()).isoformat(),
        }
    }


def gate_end(
    *, task_id: int, subtask: SubtaskInstance, approved: bool, result: dict, line: str
) -> bool:
    """End the waiting gate at its current attempt, inside the caller's transaction that
    holds the task's lock; False when it was no longer waiting."""
    finished = attempt_finish(
        subtask_id=subtask.pk,
        attempt=subtask.attempt,
        task_id=task_id,
        succeeded=approved,
        log=format_log_line(line),
        result=result,
    )
    return finished.ended


def gates_due(now: datetime) -> list[tuple[int, int]]:
    """(subtask id, attempt) of the waiting gates whose timeout has passed. A waiting gate
    is RUNNING without a heartbeat: read through the (status, heartbeat_at) index."""
    rows = SubtaskInstance.objects.filter(
        status=SubtaskStatus.RUNNING,
        heartbeat_at__isnull=True,
        node_type=NodeType.APPROVAL_TASK,
    ).values_list("pk", "attempt", "start_time", "timeout")
    return [
        (pk, attempt)
        for pk, attempt, started, timeout in rows
        if started is not None and started + timedelta(seconds=timeout) <= now
    ]


def gate_time_out(*, subtask_id: int, attempt: int, now: datetime | None = None) -> bool:
    """The reaper's verdict on a gate nobody decided in time: it fails, or approves itself
    when its `onTimeout` says so. False when it was decided (or changed) meanwhile."""
    now = now or timezone.now()
    with transaction.atomic():
        task_id = (
            SubtaskInstance.objects.filter(pk=subtask_id).values_list("task_id", flat=True).first()
        )
        locked = sql.run(*sql.lock_task_statement(task_id)) if task_id is not None else []
        if task_id is None or not locked:
            return False
        subtask = SubtaskInstance.objects.filter(
            pk=subtask_id,
            attempt=attempt,
            status=SubtaskStatus.RUNNING,
            node_type=NodeType.APPROVAL_TASK,
        ).first()
        if subtask is None or subtask.start_time is None:
            return False
        if subtask.start_time + timedelta(seconds=subtask.timeout) > now:
            return False
        approve = approval_settings(subtask.action)["onTimeout"] == "approve"
        why = f"no decision within {subtask.timeout} s"
        outcome = "approved" if approve else "failed"
        if not gate_end(
            task_id=task_id,
            subtask=subtask,
            approved=approve,
            result=decision("timed out", "system", why, now),
            line=f"approval timed out ({why}): the gate {outcome} as it says to",
        ):
            return False
        audit_subtask_change(
            None,
            Action.APPROVAL_TIMEOUT,
            TaskState(task_id, *locked[0]),
            subtask,
            SubtaskStatus.RUNNING,
            SubtaskStatus.SUCCESSFUL if approve else SubtaskStatus.FAILED,
            f"{why}; {outcome}",
        )
        return True
