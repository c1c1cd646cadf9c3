"""The engine's side of the state machine: claim an attempt, heartbeat, finish it, and the
reaper's verdicts (lost worker, lost message, task left unsettled).

The claim and the finish run once per subtask attempt: they use the plain SQL of
taskcenter.tasks.sql (see there why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from taskcenter.core.errors import TaskNotFound
from taskcenter.tasks import selectors, sql
from taskcenter.tasks.audit import Action
from taskcenter.tasks.enqueue import enqueue_attempt, enqueue_attempts
from taskcenter.tasks.models import SubtaskInstance, SubtaskRunMode, SubtaskStatus
from taskcenter.tasks.services import finish
from taskcenter.tasks.services.logs import log_line
from taskcenter.tasks.services.progress import (
    TaskState,
    audit_subtask_change,
    enqueue_turns,
    task_refresh_status,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedAttempt:
    """What a worker needs to run an attempt it has claimed."""

    subtask_id: int
    task_id: int
    attempt: int
    name: str
    node_type: str
    operation: str
    action: dict
    rollback_action: dict | None
    run_time: int
    timeout: int
    parameters: dict

    @property
    def is_rollback(self) -> bool:
        return self.operation == SubtaskRunMode.ROLLBACK

    @property
    def action_to_run(self) -> dict | None:
        """The action this attempt runs; None for a rollback that has nothing to undo."""
        if self.is_rollback:
            return self.rollback_action or None
        return self.action


def attempt_claim(*, subtask_id: int, attempt: int, executor: str) -> ClaimedAttempt | None:
    """READY -> RUNNING for exactly this attempt; None when it was already claimed or moved on.

    This is what makes a redelivered Celery message harmless. The claim is one
    compare-and-set statement that also returns the task's parameters, committed on its
    own so that the reaper and the pages see RUNNING at once (or with the finish of the
    previous link, when that finish claims it: see attempt_finish).
    """
    rows = sql.run(*sql.claim_statement(subtask_id, attempt, executor))
    return _claimed(subtask_id, attempt, rows[0], executor) if rows else None


def attempt_claim_sibling(*, subtask_id: int, executor: str) -> ClaimedAttempt | None:
    """READY -> RUNNING for a READY subtask of the same task and node type as `subtask_id`
    (see "Turns" in docs/engine.md); None when there is none."""
    rows = sql.run(*sql.claim_sibling_statement(subtask_id, executor))
    if not rows:
        return None
    sibling_id, attempt, *row = rows[0]
    return _claimed(sibling_id, attempt, row, executor)


def attempt_claim_turn(*, subtask_id: int, attempt: int, executor: str) -> ClaimedAttempt | None:
    """What a message claims: its own attempt or, when that was claimed already or moved on,
    a READY sibling (a message is a turn on its subtask's task and node type)."""
    return attempt_claim(
        subtask_id=subtask_id, attempt=attempt, executor=executor
    ) or attempt_claim_sibling(subtask_id=subtask_id, executor=executor)


def _claimed(subtask_id: int, attempt: int, row, executor: str) -> ClaimedAttempt:
    (
        task_id,
        name,
        node_type,
        operation,
        action,
        rollback,
        run_time,
        timeout,
        prohibit,
        parameters,
        task_executor,
        task_prohibits,
    ) = row
    claimed = ClaimedAttempt(
        subtask_id=subtask_id,
        task_id=task_id,
        attempt=attempt,
        name=name,
        node_type=node_type,
        operation=operation,
        action=sql.json_value(action) or {},
        rollback_action=sql.json_value(rollback),
        run_time=run_time,
        timeout=timeout,
        parameters=sql.json_value(parameters) or {},
    )
    # Recorded before the action runs: once a prohibit-rollback subtask has started, the
    # task must refuse a rollback even if this worker dies in the middle of the action.
    if prohibit and not claimed.is_rollback and not task_prohibits:
        sql.run(*sql.task_mark_prohibits_rollback(task_id))
    if not task_executor:
        sql.run(*sql.task_set_first_executor(task_id, executor))
    return claimed


def attempt_heartbeat(*, subtask_id: int, attempt: int) -> bool:
    """Record that the attempt's worker is alive; False when the attempt is no longer running."""
    return (
        SubtaskInstance.objects.filter(
            pk=subtask_id,
            attempt=attempt,
            status__in=[SubtaskStatus.RUNNING, SubtaskStatus.CANCELING],
        ).update(heartbeat_at=timezone.now())
        == 1
    )


@dataclass(frozen=True)
class FinishedAttempt:
    """What attempt_finish did: whether it ended the attempt, and what to run next."""

    ended: bool
    # A downstream made READY by this finish and claimed for the caller (claim_next_as).
    next: ClaimedAttempt | None = None


def attempt_finish(
    *,
    subtask_id: int,
    attempt: int,
    task_id: int | None = None,
    succeeded: bool,
    log: bytes = b"",
    result: Any = None,
    claim_next_as: str | None = None,
    hand_on_turn: bool = False,
) -> FinishedAttempt:
    """End a running attempt with its outcome, then let the DAG move on (see finish.py).

    `ended` is False when the attempt had already been ended (by the reaper). With
    `claim_next_as` (an executor name), the caller takes its next turn here (see
    `_next_turn`): one of the downstreams this finish makes READY, or else a READY
    sibling, is claimed for that executor instead of being sent to the broker (in the
    same transaction, or right after the one-trip finish on PostgreSQL, where a worker
    lost in between leaves a READY subtask that the reaper sends again). With
    `hand_on_turn`, a worker that takes no next subtask hands its turn on.
    """
    if succeeded and task_id and finish.one_trip_available():
        ended = finish.end_in_one_trip(task_id, subtask_id, attempt, log, result)
        if ended is not None:
            claimed = _after_one_trip(
                task_id, subtask_id, attempt, ended, claim_next_as, hand_on_turn
            )
            return FinishedAttempt(ended=True, next=claimed)
    with transaction.atomic():
        task, subtask = _lock_attempt(task_id or _task_id_of(subtask_id), subtask_id, attempt)
        if task is None or subtask is None:
            return FinishedAttempt(ended=False)
        ended = finish.end_attempt(task, subtask, succeeded=succeeded, result=result, log=log)
        claimed = _next_turn(subtask_id, attempt, ended.released, claim_next_as, hand_on_turn)
        if ended.settle:
            task_refresh_status(task)
    return FinishedAttempt(ended=True, next=claimed)


def _after_one_trip(
    task_id: int,
    subtask_id: int,
    attempt: int,
    ended: finish.Ended,
    claim_next_as: str | None,
    hand_on_turn: bool,
) -> ClaimedAttempt | None:
    """What follows a one-trip finish, which has committed: claim or send the released
    downstreams, settle the task.

    A database error here must not reach the caller: it would take the finish, which is
    recorded, for one that is not and try it again, which finds the attempt ended and
    would leave the released downstreams READY and unsent. They are sent through the
    broker instead (a claim that failed left its subtask READY; one whose commit
    did reach the database makes its message a no-op and its subtask is reaped as lost,
    the one case left to the reaper), and the task's end is left to the reaper's settling
    (selectors.running_tasks_without_work), as when the process stops just before it.
    """
    try:
        claimed = _next_turn(subtask_id, attempt, ended.released, claim_next_as, hand_on_turn)
    except (OperationalError, InterfaceError) as exc:
        logger.warning(
            "task %s: claiming the next subtask failed (%s); sending %d released subtask(s) "
            "through the broker",
            task_id,
            exc.__class__.__name__,
            len(ended.released),
        )
        enqueue_attempts(ended.released)
        return None
    if ended.settle:
        try:
            task_settle(task_id=task_id)  # its own transaction
        except (OperationalError, InterfaceError) as exc:
            logger.warning(
                "task %s: recording its end failed (%s); the reaper settles it",
                task_id,
                exc.__class__.__name__,
            )
    return claimed


def attempt_fail_lost(*, subtask_id: int, attempt: int, why: str) -> bool:
    """The reaper's verdict on an attempt whose worker stopped answering."""
    with transaction.atomic():
        task, subtask = _lock_attempt(_task_id_of(subtask_id), subtask_id, attempt)
        if task is None or subtask is None:
            return False
        log_line(subtask, f"worker lost: {why}; the attempt is marked FAILED")
        audit_subtask_change(
            None, Action.WORKER_LOST, task, subtask, subtask.status, SubtaskStatus.FAILED, why
        )
        ended = finish.end_attempt(task, subtask, succeeded=False, result=None)
        _next_turn(subtask_id, attempt, ended.released, claim_next_as=None, hand_on_turn=True)
        if ended.settle:  # a failure releases nothing
            task_refresh_status(task)
        return True


def task_settle(*, task_id: int) -> bool:
    """Derive a task's status from its subtasks and record its end if it has ended; True
    when the status changed. The finish of an attempt does this; the reaper does it for
    a RUNNING task with no subtask left at work."""
    with transaction.atomic():
        task = _lock_task_state(task_id)
        before = task.status
        task_refresh_status(task)
        return task.status != before


def attempt_redispatch(*, subtask_id: int, attempt: int) -> bool:
    """Enqueue a READY attempt again (its message may be lost); claiming is idempotent."""
    still_ready = SubtaskInstance.objects.filter(
        pk=subtask_id, attempt=attempt, status=SubtaskStatus.READY
    ).update(ready_at=timezone.now())
    if still_ready:
        enqueue_attempt(subtask_id, attempt)
    return bool(still_ready)


def attempt_downstreams_resend(*, subtask_id: int) -> int:
    """Send again the READY downstreams of a subtask whose finish committed unseen.

    A worker whose finish failed on a broken connection tries it again; when the retry
    finds the attempt already ended, the first try's commit may have reached the database
    with the downstreams it released, which nobody has sent. Claims are compare-and-set,
    so a duplicate does nothing. Returns how many were sent."""
    sent = 0
    for downstream_id, attempt in selectors.ready_downstreams(subtask_id=subtask_id):
        sent += attempt_redispatch(subtask_id=downstream_id, attempt=attempt)
    return sent


# Turns. A wide fan-out does not send a message per subtask it makes READY: a message is a
# turn on its subtask's task and node type (attempt_claim_turn), and a worker whose turn
# ends a subtask takes the next READY sibling itself (_next_turn). So a finish that makes
# more than TASKCENTER_FANOUT_MESSAGES subtasks of one node type READY sends that many
# messages for them, and the turns they start drain the rest. A turn is never dropped
# while siblings wait: a worker that stops taking turns (its message is old, see
# taskcenter.engine.runner) sends one for them, and so does the reaper when it fails an
# attempt as lost; and the reaper sends any READY attempt not claimed for
# TASKCENTER_REDISPATCH_AFTER, as it always has. Every claim is still a compare-and-set
# of one attempt, so no subtask runs twice; what a message per subtask cost (a publish,
# the worker's receive, hand-over to a pool process and acknowledgement) was most of a
# no-op subtask's time.


def _next_turn(
    subtask_id: int,
    attempt: int,
    released: list[tuple[int, int]],
    claim_next_as: str | None,
    hand_on_turn: bool,
) -> ClaimedAttempt | None:
    """After ending `attempt` of `subtask_id`: claim the caller's next subtask when it takes
    one (`claim_next_as`): the first of those this finish made READY (a chain's next link,
    unless routes by node type may send it to another queue), or else a READY sibling;
    and send messages for the rest (progress.enqueue_turns).

    A worker that takes no next subtask (`hand_on_turn`) after a finish that made nothing
    READY hands its turn on: when a sibling is READY, its own attempt is sent again, which
    its message's claim turns into a sibling's claim."""
    claimed = None
    if claim_next_as and released and links_may_follow():
        claimed = attempt_claim(
            subtask_id=released[0][0], attempt=released[0][1], executor=claim_next_as
        )
        released = released[1:]
    elif claim_next_as and not released:
        claimed = attempt_claim_sibling(subtask_id=subtask_id, executor=claim_next_as)
    elif hand_on_turn and not released:
        attempt_hand_on_turn(subtask_id=subtask_id, attempt=attempt)
    enqueue_turns(released)
    return claimed


def attempt_hand_on_turn(*, subtask_id: int, attempt: int) -> bool:
    """A worker gives its turn back: when a sibling of the ended attempt is READY, the
    attempt is sent again, and its message's claim takes the sibling (attempt_claim_turn).
    True when it was sent."""
    if not sql.run(*sql.ready_sibling_statement(subtask_id))[0][0]:
        return False
    enqueue_attempt(subtask_id, attempt)
    return True


def links_may_follow() -> bool:
    """Whether a worker may run a chain's next link itself. A route by node type can send
    the next link to a queue that this worker does not consume; routes by cluster alone
    keep a task's subtasks on one queue."""
    return not any("node" in conditions for conditions, _ in settings.TASKCENTER_QUEUE_ROUTES)


def _task_id_of(subtask_id: int) -> int:
    return (
        SubtaskInstance.objects.filter(pk=subtask_id).values_list("task_id", flat=True).first() or 0
    )


def _lock_task_state(task_id: int) -> TaskState:
    rows = sql.run(*sql.lock_task_statement(task_id))
    if not rows:
        raise TaskNotFound(f"The {task_id} task does not exist.")
    return TaskState(task_id, *rows[0])


def _lock_attempt(
    task_id: int, subtask_id: int, attempt: int
) -> tuple[TaskState | None, finish.AttemptState | None]:
    """Lock the task row and read the subtask if `attempt` is its current one and still
    RUNNING or CANCELING.

    Two statements in one round trip: the second one's snapshot is taken after the first
    has the lock, so it sees every change committed by the lock's previous holder.
    """
    task_rows, subtask_rows = sql.run_batch(
        [
            sql.lock_task_statement(task_id),
            sql.attempt_read_statement(task_id, subtask_id, attempt),
        ]
    )
    if not task_rows or not subtask_rows:
        return None, None
    name, status, operation, run_time, retries, downs, size, truncated = subtask_rows[0]
    return TaskState(task_id, *task_rows[0]), finish.AttemptState(
        pk=subtask_id,
        name=name,
        attempt=attempt,
        status=status,
        operation=operation,
        run_time=run_time,
        retry_count=retries,
        downstream_ids=sql.json_value(downs) or [],
        log_size=size,
        log_truncated=bool(truncated),
    )
