"""How work moves on: making subtasks READY (handed to the engine on commit), counting
upstreams, walking a rollback backwards, and deriving a task's status from its subtasks.

Every function here runs inside the caller's transaction, which holds the task's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from taskcenter.tasks import events, models, selectors, sql
from taskcenter.tasks.audit import ROLLED_BACK, Action, audit_record
from taskcenter.tasks.enqueue import enqueue_attempts


@dataclass
class TaskState:
    """The locked task row, as far as ending an attempt and deriving a status need it."""

    pk: int
    status: str
    operation: str


def set_task(task: models.TaskInstance | TaskState, **fields: Any) -> None:
    """Change task columns; updated_at too (the live pages' change cursor)."""
    fields.setdefault("updated_at", timezone.now())
    models.TaskInstance.objects.filter(pk=task.pk).update(**fields)
    for key, value in fields.items():
        setattr(task, key, value)


def make_ready(
    ids: list[int],
    from_statuses: list[str],
    operation: str,
    count_run: bool = True,
    unblocked_only: bool = False,
) -> list[int]:
    """Compare-and-set these subtasks to READY with a new attempt; send their turns on
    commit (enqueue_turns).

    Only those still in one of `from_statuses` (and, with `unblocked_only`, with no
    upstream left to wait for) change; their new attempt numbers come back from the same
    statement. Returns the ids made READY (approval gates among them are opened instead:
    RUNNING, waiting for a person, and not sent).
    """
    if not ids:
        return []
    rows = sorted(
        sql.run(*sql.make_ready_statement(ids, from_statuses, operation, count_run, unblocked_only))
    )
    # An approval gate comes back RUNNING, opened without a worker (sql.ready_assignments).
    enqueue_turns([(pk, attempt) for pk, attempt, status in rows if status == "READY"])
    emit_approvals_requested([pk for pk, _, status in rows if status == "RUNNING"])
    return [pk for pk, _, _ in rows]


def enqueue_turns(ready: list[tuple[int, int]]) -> None:
    """Send messages, on commit, for (subtask id, attempt) of one task just made READY: at
    most TASKCENTER_FANOUT_MESSAGES of each node type. A message is a turn on its task and
    node type, and the turns drain the others (see "Turns" in services.attempts)."""
    most = settings.TASKCENTER_FANOUT_MESSAGES
    if len(ready) > most:
        attempts = dict(ready)
        per_type: dict[str, list[tuple[int, int]]] = {}
        for pk, node_type, _ in selectors.subtask_routing_facts(subtask_ids=list(attempts)):
            per_type.setdefault(node_type, []).append((pk, attempts[pk]))
        ready = sorted(pair for pairs in per_type.values() for pair in sorted(pairs)[:most])
    enqueue_attempts(ready)


def emit_approvals_requested(gate_ids: list[int]) -> None:
    """approval.requested: these approval gates were opened and wait for a person (one
    read of the gates, one INSERT each, only when someone listens)."""
    if not gate_ids or not events.listening():
        return
    kind = events.Kind.APPROVAL_REQUESTED
    for pk, task_id, name, attempt in selectors.subtask_identities(subtask_ids=gate_ids):
        events.emit(
            events.DomainEvent(
                kind=kind,
                key=f"{kind}:{pk}:{attempt}",
                object_type="subtask",
                object_id=pk,
                name="",
                status=models.SubtaskStatus.RUNNING,
                task_id=task_id,
                occurred_at=timezone.now(),
                detail={"subtask": name},
            )
        )


def start_unblocked(candidate_ids: list[int]) -> list[int]:
    return make_ready(
        candidate_ids,
        [models.SubtaskStatus.PENDING],
        operation=models.SubtaskRunMode.EXECUTE,
        unblocked_only=True,
    )


def recount_upstreams(task: models.TaskInstance) -> None:
    """Set every subtask's upstreams_left from the statuses (before work resumes)."""
    rows = list(task.subtasks.values_list("pk", "status", "upstream_ids", "upstreams_left"))
    succeeded = {pk for pk, status, _, _ in rows if status == models.SubtaskStatus.SUCCESSFUL}
    changed = [
        models.SubtaskInstance(pk=pk, upstreams_left=left)
        for pk, _, ups, current in rows
        if (left := sum(1 for u in ups if u not in succeeded)) != current
    ]
    models.SubtaskInstance.objects.bulk_update(changed, ["upstreams_left"], batch_size=500)


def ready_rollback(task: models.TaskInstance | TaskState) -> None:
    """Make READY every subtask waiting for rollback whose downstreams are all PENDING."""
    rows = list(
        models.SubtaskInstance.objects.filter(task_id=task.pk).values_list(
            "pk", "status", "rollback_pending", "downstream_ids"
        )
    )
    status_of = {pk: status for pk, status, _, _ in rows}
    ready = [
        pk
        for pk, status, pending, downs in rows
        if pending
        and status in (models.SubtaskStatus.SUCCESSFUL, models.SubtaskStatus.FAILED)
        and all(status_of[d] == models.SubtaskStatus.PENDING for d in downs)
    ]
    make_ready(
        ready,
        [models.SubtaskStatus.SUCCESSFUL, models.SubtaskStatus.FAILED],
        operation=models.SubtaskRunMode.ROLLBACK,
        count_run=False,
    )


def task_refresh_status(task: models.TaskInstance | TaskState) -> None:
    """Derive the task status from its subtasks (OCP's rules) and record a finish."""
    if task.status == models.TaskStatus.RUNNING and sql.run(*sql.any_active_subtask(task.pk)):
        return  # the common case while work goes on: one indexed EXISTS, no aggregate
    new_status = _derived_status(task)
    if new_status == task.status:
        return
    previous = task.status
    finish_time: datetime | None = (
        None if new_status == models.TaskStatus.RUNNING else timezone.now()
    )
    set_task(task, status=new_status, finish_time=finish_time)
    if new_status != models.TaskStatus.RUNNING:
        rolled_back = (
            new_status == models.TaskStatus.SUCCESSFUL
            and task.operation == models.TaskRunMode.ROLLBACK
        )
        label = "rolled back" if rolled_back else new_status
        audit_record(
            actor=None,
            action=Action.FINISH,
            task=task,
            from_status=previous,
            to_status=ROLLED_BACK if rolled_back else new_status,
            reason=f"task ended {label}",
        )
        _emit_task_end(task, new_status, finish_time)


def _emit_task_end(
    task: models.TaskInstance | TaskState, status: str, finish_time: datetime | None
) -> None:
    """task.failed or task.succeeded, keyed by the end's time (a task retried and failed
    again is a new event). One INSERT and nothing read: the task's name, cluster and job
    are filled in when the event is fanned out."""
    if not events.listening():
        return
    kind = (
        events.Kind.TASK_SUCCEEDED
        if status == models.TaskStatus.SUCCESSFUL
        else events.Kind.TASK_FAILED
    )
    stamp = finish_time.isoformat() if finish_time else ""
    events.emit(
        events.DomainEvent(
            kind=kind,
            key=f"{kind}:{task.pk}:{stamp}",
            object_type="task",
            object_id=task.pk,
            name="",
            status=status,
            task_id=task.pk,
            occurred_at=finish_time,
        )
    )


def _derived_status(task: models.TaskInstance | TaskState) -> str:
    """RUNNING while a subtask is at work; then SUCCESSFUL when every subtask is done (or,
    in a rollback, back to PENDING), FAILED otherwise."""
    subtasks = models.SubtaskInstance.objects.filter(task_id=task.pk)
    counts = dict(subtasks.values_list("status").annotate(n=Count("pk")).order_by())
    total = sum(counts.values())
    if any(counts.get(status, 0) for status in models.ACTIVE_SUBTASK_STATUSES):
        return models.TaskStatus.RUNNING
    rollback = task.operation == models.TaskRunMode.ROLLBACK
    done = models.SubtaskStatus.PENDING if rollback else models.SubtaskStatus.SUCCESSFUL
    return (
        models.TaskStatus.SUCCESSFUL if counts.get(done, 0) == total else models.TaskStatus.FAILED
    )


def audit_subtask_change(
    actor,
    action: str,
    task: models.TaskInstance | TaskState,
    subtask: Any,
    from_status: str,
    to_status: str,
    reason: str = "",
) -> None:
    """The audit row of a subtask's change (`subtask`: a row, or an attempt being ended)."""
    audit_record(
        actor=actor,
        action=action,
        task=task,
        subtask=subtask,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
    )


def emit_retries_exhausted(task: models.TaskInstance | TaskState, subtask: Any) -> None:
    """subtask.retries_exhausted: a subtask with automatic retries failed its last one
    (one INSERT, as a task's end)."""
    if not events.listening():
        return
    kind = events.Kind.SUBTASK_RETRIES_EXHAUSTED
    events.emit(
        events.DomainEvent(
            kind=kind,
            key=f"{kind}:{subtask.pk}:{subtask.attempt}",
            object_type="subtask",
            object_id=subtask.pk,
            name="",
            status=models.SubtaskStatus.FAILED,
            task_id=task.pk,
            occurred_at=timezone.now(),
            detail={
                "subtask": subtask.name,
                "runs": subtask.run_time,
                "retries": subtask.retry_count,
            },
        )
    )
