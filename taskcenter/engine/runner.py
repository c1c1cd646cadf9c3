"""Runs one subtask attempt inside a Celery worker.

claim (idempotent) -> run the action while the process's watcher thread heartbeats,
flushes the log, and notices cancel or timeout -> report the outcome to the finishing
service, trying again while the database does not take it (the watcher heartbeats the
attempt meanwhile, so that the reaper does not call it lost).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from taskcenter.engine.actions import ActionFailed, Stopped, run_action
from taskcenter.engine.metrics import observe_attempt
from taskcenter.engine.outbox import describe_error
from taskcenter.engine.presence import count_finished
from taskcenter.tasks import selectors, services
from taskcenter.tasks.models import SubtaskStatus
from taskcenter.tasks.services import ClaimedAttempt, FinishedAttempt, format_log_line

logger = logging.getLogger(__name__)

LOG_FLUSH_INTERVAL = 0.25

# What a database that does not answer raises (a connection refused, or broken by a
# restart: "terminating connection due to administrator command", then "connection
# already closed"); the same statement may succeed on a new connection. Other database
# errors (a constraint, bad data) would fail again and are not retried.
TRANSIENT = (OperationalError, InterfaceError)

# A finish the database does not take is tried again after this pause, doubled after
# each failure up to the second figure, for TASKCENTER_FINISH_RETRY_FOR seconds.
FINISH_RETRY_FIRST_PAUSE = 0.2
FINISH_RETRY_MAX_PAUSE = 5.0


class AttemptContext:
    """What an action sees: parameters, logging, and whether it should stop."""

    def __init__(self, claimed: ClaimedAttempt):
        self.subtask_id = claimed.subtask_id
        self.subtask_name = claimed.name
        self.attempt = claimed.attempt
        self.run_time = claimed.run_time
        self.params = claimed.parameters
        self.timeout = claimed.timeout
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        # Held by the watcher while it works on this attempt, so that the runner can wait
        # for a flush in progress before it writes the end of the log itself.
        self.watching = threading.Lock()
        self.last_beat = self.last_status = self.started

    # -- logging --
    def log(self, message: str) -> None:
        line = format_log_line(message)
        with self._lock:
            self._buffer.append(line)

    def output(self, line: str) -> None:
        self.log(line)

    def drain(self) -> bytes:
        with self._lock:
            data, self._buffer = b"".join(self._buffer), []
        return data

    def put_back(self, data: bytes) -> None:
        """Return drained lines that could not be written, ahead of those logged since."""
        with self._lock:
            self._buffer.insert(0, data)

    # -- stopping --
    def stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self.stop_event.set()

    def check(self) -> None:
        """Raise Stopped if the attempt should stop; long Python actions call this often."""
        if self.stop_event.is_set():
            raise Stopped(self.stop_reason)

    def sleep(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise Stopped(self.stop_reason)

    def remaining_seconds(self) -> float:
        return max(0.0, self.timeout - (time.monotonic() - self.started))


class Watcher(threading.Thread):
    """Heartbeats, flushes logs, and turns CANCELING or a timeout into a stop request.

    One thread per worker process watches every attempt running in it; starting a thread
    per attempt cost more than a no-op subtask itself. Once an attempt's action has ended,
    the watcher goes on heartbeating it (and only that) until the runner has recorded its
    outcome: the attempt's lease is extended for as long as its worker holds the outcome,
    however long the database takes to take it.
    """

    def __init__(self):
        super().__init__(daemon=True, name="taskcenter-watcher")
        self.pid = os.getpid()
        self._attempts: dict[int, AttemptContext] = {}
        # (subtask id, attempt) whose outcome the runner holds -> monotonic time of the
        # last heartbeat sent for it.
        self._held: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    def watch(self, ctx: AttemptContext) -> None:
        with self._lock:
            self._attempts[id(ctx)] = ctx

    def action_ended(self, ctx: AttemptContext) -> None:
        """Stop watching the action; heartbeat the attempt until `release`."""
        with self._lock:
            self._attempts.pop(id(ctx), None)
            self._held[(ctx.subtask_id, ctx.attempt)] = ctx.last_beat
        with ctx.watching:  # wait for a flush of this attempt that is under way
            pass

    def release(self, subtask_id: int, attempt: int) -> None:
        """The attempt's outcome is recorded (or given up): no more heartbeats for it."""
        with self._lock:
            self._held.pop((subtask_id, attempt), None)

    def run(self) -> None:
        poll = min(settings.TASKCENTER_CANCEL_POLL_INTERVAL, LOG_FLUSH_INTERVAL)
        while True:
            time.sleep(poll)
            with self._lock:
                attempts = list(self._attempts.values())
                held = list(self._held)
            if not attempts and not held:
                connection.close()  # hold no database connection while idle
            for ctx in attempts:
                with ctx.watching:
                    if self._attempts.get(id(ctx)) is ctx:
                        self._check(ctx)
            for key in held:
                self._beat_held(key)

    def _check(self, ctx: AttemptContext) -> None:
        try:
            now = time.monotonic()
            self.flush(ctx)
            if now - ctx.started >= ctx.timeout:
                ctx.stop(f"timed out after {ctx.timeout} s")
            if now - ctx.last_status >= settings.TASKCENTER_CANCEL_POLL_INTERVAL:
                ctx.last_status = now
                status = selectors.subtask_attempt_status(
                    subtask_id=ctx.subtask_id, attempt=ctx.attempt
                )
                if status == SubtaskStatus.CANCELING:
                    ctx.stop("canceled")
                elif status != SubtaskStatus.RUNNING:
                    ctx.stop("the attempt is no longer running here")
            if now - ctx.last_beat >= settings.TASKCENTER_HEARTBEAT_INTERVAL:
                ctx.last_beat = now
                if not services.attempt_heartbeat(subtask_id=ctx.subtask_id, attempt=ctx.attempt):
                    ctx.stop("the attempt is no longer running here")
        except Exception:  # one failing check must not leave the other attempts unwatched
            logger.exception("watching subtask %s failed", ctx.subtask_id)
            connection.close()  # a broken connection is opened again on the next check

    def _beat_held(self, key: tuple[int, int]) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._held.get(key)
            if last is None or now - last < settings.TASKCENTER_HEARTBEAT_INTERVAL:
                return
            self._held[key] = now
        subtask_id, attempt = key
        try:
            services.attempt_heartbeat(subtask_id=subtask_id, attempt=attempt)
        except Exception as exc:  # noqa: BLE001 - the database is away: beat again later
            logger.warning(
                "subtask %s attempt %s: heartbeat while its outcome waits failed (%s)",
                subtask_id,
                attempt,
                describe_error(exc),
            )
            connection.close()

    def flush(self, ctx: AttemptContext) -> None:
        data = ctx.drain()
        if data:
            try:
                services.log_append(subtask_id=ctx.subtask_id, attempt=ctx.attempt, data=data)
            except TRANSIENT:
                ctx.put_back(data)  # written by a later flush, or with the finish
                raise


_watcher: Watcher | None = None
_watcher_lock = threading.Lock()


def process_watcher() -> Watcher:
    """This process's watcher, started on first use (a forked pool child starts its own)."""
    global _watcher
    with _watcher_lock:
        if _watcher is None or _watcher.pid != os.getpid() or not _watcher.is_alive():
            _watcher = Watcher()
            _watcher.start()
        return _watcher


# A worker takes its next subtask itself (a chain's next link, or a READY sibling in a
# fan-out: see "Turns" in taskcenter.tasks.services.attempts), claimed by the finish of the
# previous one, while the Celery message it started from is younger than this; after that
# it hands its turn back to the broker, so that no message stays unacknowledged for long
# (RabbitMQ's consumer timeout, Redis' visibility timeout) and queued work gets its turn.
FOLLOW_FOR_SECONDS = 5.0


def execute_attempt(*, subtask_id: int, attempt: int) -> None:
    """Run the message's attempt (or, when that was claimed already, a READY sibling's),
    then the subtasks its finishes claim for this worker.

    Only the first claim lets a transient database error out, to Celery, which tries this
    same message again (celery_tasks). Once an attempt is claimed, its outcome is recorded
    here however long the database takes (`_record_finish`): such an error after the first
    claim must never reach Celery, whose retry would send this message's attempt again,
    long claimed, in place of the one whose finish failed.
    """
    executor = socket.gethostname()
    claimed = services.attempt_claim_turn(subtask_id=subtask_id, attempt=attempt, executor=executor)
    if claimed is None:
        logger.info(
            "subtask %s attempt %s already claimed or moved on, and no sibling is READY; skipping",
            subtask_id,
            attempt,
        )
        return
    follow_until = time.monotonic() + FOLLOW_FOR_SECONDS
    while claimed is not None:
        try:
            succeeded, result, log = _run_claimed(claimed, executor)
            finished = _record_finish(
                claimed,
                executor,
                succeeded=succeeded,
                result=result if _is_json_result(result) else None,
                log=log,
                follow_until=follow_until,
            )
        finally:
            process_watcher().release(claimed.subtask_id, claimed.attempt)
        if finished is None:
            return
        if finished.ended:
            count_finished()
        claimed = finished.next


def _record_finish(
    claimed: ClaimedAttempt,
    executor: str,
    *,
    succeeded: bool,
    result: Any,
    log: bytes,
    follow_until: float,
) -> FinishedAttempt | None:
    """Record the attempt's outcome, trying again while the database does not take it.

    The outcome (status, result, the log's end) is kept here between tries and the watcher
    heartbeats the attempt, so the reaper leaves it alone. Each failed try drops this
    thread's connection: the next one opens a new connection rather than meeting the
    broken one again. None after TASKCENTER_FINISH_RETRY_FOR seconds of failures: the
    attempt is then left to the reaper, which fails it as lost.
    """
    outcome = "succeeded" if succeeded else "failed"
    deadline = time.monotonic() + settings.TASKCENTER_FINISH_RETRY_FOR
    pause, failures = FINISH_RETRY_FIRST_PAUSE, 0
    while True:
        follow = time.monotonic() < follow_until
        try:
            finished = services.attempt_finish(
                subtask_id=claimed.subtask_id,
                attempt=claimed.attempt,
                task_id=claimed.task_id,
                succeeded=succeeded,
                log=log,
                result=result,
                claim_next_as=executor if follow else None,
                hand_on_turn=not follow,
            )
        except TRANSIENT as exc:
            failures += 1
            _drop_connection()
            if time.monotonic() + pause > deadline:
                logger.error(
                    "subtask %s attempt %s: its outcome (%s) was not recorded after %d tries "
                    "(%s); giving up, the reaper will fail the attempt as lost",
                    claimed.subtask_id,
                    claimed.attempt,
                    outcome,
                    failures,
                    describe_error(exc),
                )
                return None
            logger.warning(
                "subtask %s attempt %s: the database did not take its outcome (%s): %s; "
                "trying again in %.1f s",
                claimed.subtask_id,
                claimed.attempt,
                outcome,
                describe_error(exc),
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, FINISH_RETRY_MAX_PAUSE)
            continue
        if failures:
            _after_a_retried_finish(claimed, finished, outcome, failures)
        return finished


def _after_a_retried_finish(
    claimed: ClaimedAttempt, finished: FinishedAttempt, outcome: str, failures: int
) -> None:
    if finished.ended:
        logger.warning(
            "subtask %s attempt %s: outcome (%s) recorded after %d failed tries",
            claimed.subtask_id,
            claimed.attempt,
            outcome,
            failures,
        )
        return
    # Already ended: a failed try's commit reached the database before its connection
    # broke (then the downstreams it released wait unsent), or the reaper ended it.
    logger.warning(
        "subtask %s attempt %s: already ended when its outcome (%s) was tried again",
        claimed.subtask_id,
        claimed.attempt,
        outcome,
    )
    try:
        if not services.attempt_downstreams_resend(subtask_id=claimed.subtask_id):
            # This worker takes no next subtask: its turn goes on through the broker.
            services.attempt_hand_on_turn(subtask_id=claimed.subtask_id, attempt=claimed.attempt)
    except TRANSIENT as exc:  # the reaper sends READY work that waits too long
        logger.warning("sending its READY downstreams failed (%s)", describe_error(exc))
        _drop_connection()


def _drop_connection() -> None:
    """Close this thread's connection after a failure; the next statement opens a new one."""
    try:
        connection.close()
    except DatabaseError:
        pass


def _run_claimed(claimed: ClaimedAttempt, executor: str) -> tuple[bool, Any, bytes]:
    """Run a claimed attempt's action under the watcher: (succeeded, result, rest of log)."""
    ctx = AttemptContext(claimed)
    rollback = claimed.is_rollback
    action = claimed.action_to_run
    what = "rollback" if rollback else f"run {claimed.run_time}"
    ctx.log(f"start {what} of '{claimed.name}' ({claimed.node_type}) on {executor}")
    watcher = process_watcher()
    watcher.watch(ctx)
    succeeded, result = False, None
    try:
        if action is None:
            ctx.log("nothing to roll back for this subtask")
            succeeded = True
        else:
            result = run_action(claimed.node_type, action, ctx)
            succeeded = True
    except Stopped as stop:
        ctx.log(f"stopped: {stop}")
    except ActionFailed as failure:
        ctx.log(f"failed: {failure}")
    except Exception as exc:
        ctx.log(f"failed with {exc.__class__.__name__}: {exc}")
        for line in traceback.format_exc().rstrip().splitlines():
            ctx.log(line)
    finally:
        watcher.action_ended(ctx)  # heartbeats go on until the outcome is recorded
    elapsed = time.monotonic() - ctx.started
    observe_attempt(succeeded=succeeded, seconds=elapsed)
    ctx.log(f"{'succeeded' if succeeded else 'failed'} in {elapsed:.2f} s")
    return succeeded, result, ctx.drain()


def _is_json_result(result: Any) -> bool:
    return isinstance(result, dict | list)
