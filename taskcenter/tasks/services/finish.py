"""Ending an attempt: one plan, decided once from the outcome, carried out one of two ways.

`plan_finish` says what the end of an attempt does: the subtask's new status, whether it
is counted off its downstreams (starting those it releases), whether the rollback walks
on, whether the subtask is retried automatically, and so whether the task's status must
be settled. Two paths carry the plan out:

- `end_attempt`, the general path, for every outcome on every database: the caller has
  locked the task and read the subtask at this attempt.
- `end_in_one_trip`, PostgreSQL only, for the common outcome (a forward attempt that
  succeeded, its last log fitting one chunk under the cap): everything in one round trip.
  The general path needs four (BEGIN, lock and read, writes, COMMIT) with the task's row
  lock held across three: in a wide fan-out every finish waits for that lock, so what is
  held under it is what the whole fan-out takes.

Both return what is left to the caller (attempts.attempt_finish): the downstreams they
released, to run or send, and whether to settle the task's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from taskcenter.tasks import sql
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import SubtaskRunMode, SubtaskStatus, TaskStatus
from taskcenter.tasks.services import logs
from taskcenter.tasks.services.progress import (
    TaskState,
    audit_subtask_change,
    emit_approvals_requested,
    emit_retries_exhausted,
    make_ready,
    ready_rollback,
)

# The tests turn this off to run the general path on PostgreSQL too (tests/finish_paths.py).
ONE_TRIP_ON_POSTGRESQL = True


def one_trip_available() -> bool:
    return ONE_TRIP_ON_POSTGRESQL and connection.vendor == "postgresql"


@dataclass(frozen=True)
class FinishPlan:
    """What the end of an attempt does (see plan_finish)."""

    status: str  # the subtask's status from now on
    canceled: bool = False  # a failure caused by a cancel: the operation becomes CANCEL
    count_off: bool = False  # a forward success: count it off its downstreams
    roll_back_next: bool = False  # a rollback succeeded: roll back what waited for it
    retry_note: str = ""  # a forward failure with runs left: run it again, logging this

    def subtask_fields(self, result: Any) -> dict[str, Any]:
        """The columns that ending the attempt sets on the subtask row (the action's JSON
        `result`, if any, included)."""
        fields = {
            "status": self.status,
            "finish_time": sql.db_time(timezone.now()),
            "heartbeat_at": None,
        }
        if self.canceled:
            fields["operation"] = SubtaskRunMode.CANCEL
        if result is not None:
            fields["result"] = sql.json_param(result)
        return fields


def plan_finish(
    *,
    succeeded: bool,
    rollback: bool,
    canceled: bool = False,
    run_time: int = 0,
    retry_count: int = 0,
) -> FinishPlan:
    """The plan for an attempt's outcome. A failed forward attempt is retried
    automatically while run_time <= retry_count, unless it was canceled."""
    if succeeded:
        if rollback:
            return FinishPlan(status=SubtaskStatus.PENDING, roll_back_next=True)
        return FinishPlan(status=SubtaskStatus.SUCCESSFUL, count_off=True)
    if not rollback and not canceled and run_time <= retry_count:
        note = f"attempt failed; retrying automatically (run {run_time + 1} of {retry_count + 1})"
        return FinishPlan(status=SubtaskStatus.FAILED, retry_note=note)
    return FinishPlan(status=SubtaskStatus.FAILED, canceled=canceled)


# What a successful forward attempt does: the plan the one-trip path carries out. Whether
# the subtask was being canceled, or had runs left, only matters to a failure.
FORWARD_SUCCESS = plan_finish(succeeded=True, rollback=False)


@dataclass(frozen=True)
class Ended:
    """What is left once an attempt's end is written."""

    released: list[tuple[int, int]]  # (subtask id, attempt) made READY: to run or send
    settle: bool  # derive the task's status now: it may have ended


@dataclass
class AttemptState:
    """A subtask whose attempt is being ended, as far as ending it needs."""

    pk: int
    name: str
    attempt: int
    status: str
    operation: str
    run_time: int
    retry_count: int
    downstream_ids: list[int]
    log_size: int
    log_truncated: bool


# --- The general path ------------------------------------------------------------------------


def end_attempt(
    task: TaskState, subtask: AttemptState, *, succeeded: bool, result: Any, log: bytes = b""
) -> Ended:
    """Record the attempt's outcome and its last log, and carry out the plan's follow-ups.

    The caller holds the task lock and has just read the subtask at this attempt, so the
    compare-and-set below cannot miss. The writes and the first follow-up reads go in one
    round trip (see sql.run_batch).
    """
    plan = plan_finish(
        succeeded=succeeded,
        rollback=subtask.operation == SubtaskRunMode.ROLLBACK,
        canceled=subtask.status == SubtaskStatus.CANCELING,
        run_time=subtask.run_time,
        retry_count=subtask.retry_count,
    )
    statements = _end_statements(plan, subtask, result, log)
    ended_at = len(statements) - 1  # the compare-and-set that ends the attempt
    if plan.count_off:
        if subtask.downstream_ids:
            statements.append(sql.count_off_statement(subtask.downstream_ids))
        statements.append(sql.any_active_subtask(task.pk))
    results = sql.run_batch(statements)
    if not results[ended_at]:
        raise RuntimeError(f"subtask {subtask.pk} changed under its task's lock")
    if plan.count_off:
        counted = results[ended_at + 1] if subtask.downstream_ids else []
        return _counted_off(counted, task.status == TaskStatus.RUNNING and bool(results[-1]))
    if plan.roll_back_next:
        ready_rollback(task)
    elif plan.retry_note:
        logs.log_line(subtask, plan.retry_note)
        audit_subtask_change(
            None, Action.AUTO_RETRY, task, subtask, SubtaskStatus.FAILED, SubtaskStatus.READY
        )
        make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskRunMode.RETRY)
    elif _out_of_retries(plan, subtask):
        emit_retries_exhausted(task, subtask)
    return Ended(released=[], settle=True)


def _out_of_retries(plan: FinishPlan, subtask: AttemptState) -> bool:
    """A forward attempt of a subtask with automatic retries failed, none left to run."""
    return (
        plan.status == SubtaskStatus.FAILED
        and not plan.canceled
        and subtask.retry_count > 0
        and subtask.operation != SubtaskRunMode.ROLLBACK
    )


def _end_statements(
    plan: FinishPlan, subtask: AttemptState, result: Any, log: bytes
) -> list[sql.Statement]:
    """The log's last chunks, if any, then the compare-and-set that ends the attempt."""
    fields = plan.subtask_fields(result)
    statements = []
    log_insert, log_fields = logs.chunks_insert(
        subtask.pk, subtask.attempt, log, subtask.log_size, subtask.log_truncated
    )
    if log_insert:
        statements.append(log_insert)
        fields.update(log_fields)
    statements.append(sql.attempt_end_statement(subtask.pk, subtask.attempt, fields))
    return statements


def _counted_off(counted: list[tuple], still_running: bool) -> Ended:
    """After a forward success: the downstreams it released, and whether the task may have
    ended (nothing released and nothing else at work)."""
    released = sql.released(counted)
    emit_approvals_requested(sql.opened_gates(counted))
    return Ended(released=released, settle=not (released or still_running))


# --- PostgreSQL's one round trip -----------------------------------------------------------------


def end_in_one_trip(
    task_id: int, subtask_id: int, attempt: int, log: bytes, result: Any
) -> Ended | None:
    """End a successful forward attempt in one round trip; None when it is not that case
    (a rollback, a log that needs more than one chunk or reaches the cap, an attempt
    already ended), and then the general path runs and decides.

    The statements go in one simple query, which PostgreSQL runs as one transaction (or
    inside the caller's): lock the task row, then one statement whose data-modifying WITH
    parts end the attempt, store the log chunk at the log's current end and count the
    attempt off its downstreams, and which says whether another subtask is still at work.
    """
    if len(log) > sql.LOG_CHUNK_MAX:
        return None
    fields = FORWARD_SUCCESS.subtask_fields(result)
    task_rows, rows = sql.run_batch(
        [
            sql.lock_task_statement(task_id),
            sql.forward_end_in_one_statement(task_id, subtask_id, attempt, fields, log),
        ]
    )
    ended = [row for row in rows if row[0] == 0]
    if not task_rows or not ended:
        return None  # not this case (or already ended): the general path sorts it out
    counted = [row[1:5] for row in rows if row[0] == 1]
    others_at_work = bool(ended[0][5])
    return _counted_off(counted, task_rows[0][0] == TaskStatus.RUNNING and others_at_work)
