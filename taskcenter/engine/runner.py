"""Runs one subtask attempt inside a Celery worker.

claim (idempotent) -> run the action while the process's watcher thread heartbeats,
flushes the log, and notices cancel or timeout -> report the outcome to the finishing
service.
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
from django.db import connection

from taskcenter.engine.actions import ActionFailed, Stopped, run_action
from taskcenter.engine.metrics import observe_attempt
from taskcenter.engine.presence import count_finished
from taskcenter.tasks import selectors, services
from taskcenter.tasks.models import SubtaskStatus
from taskcenter.tasks.services import ClaimedAttempt, format_log_line

logger = logging.getLogger(__name__)

LOG_FLUSH_INTERVAL = 0.25


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
    per attempt cost more than a no-op subtask itself.
    """

    def __init__(self):
        super().__init__(daemon=True, name="taskcenter-watcher")
        self.pid = os.getpid()
        self._attempts: dict[int, AttemptContext] = {}
        self._lock = threading.Lock()

    def watch(self, ctx: AttemptContext) -> None:
        with self._lock:
            self._attempts[id(ctx)] = ctx

    def unwatch(self, ctx: AttemptContext) -> None:
        with self._lock:
            self._attempts.pop(id(ctx), None)
        with ctx.watching:  # wait for a flush of this attempt that is under way
            pass

    def run(self) -> None:
        poll = min(settings.TASKCENTER_CANCEL_POLL_INTERVAL, LOG_FLUSH_INTERVAL)
        while True:
            time.sleep(poll)
            with self._lock:
                attempts = list(self._attempts.values())
            if not attempts:
                connection.close()  # hold no database connection while idle
            for ctx in attempts:
                with ctx.watching:
                    if self._attempts.get(id(ctx)) is ctx:
                        self._check(ctx)

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

    def flush(self, ctx: AttemptContext) -> None:
        data = ctx.drain()
        if data:
            services.log_append(subtask_id=ctx.subtask_id, attempt=ctx.attempt, data=data)


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


# A worker runs the next link of a chain itself (claimed by the finish of the previous
# one) while the Celery message it started from is younger than this; after that the
# next link goes through the broker, so that no message stays unacknowledged for long
# (RabbitMQ's consumer timeout, Redis' visibility timeout) and queued work gets its turn.
FOLLOW_FOR_SECONDS = 5.0


def _may_follow() -> bool:
    # A route by node type can send the next link to another queue, which this worker may
    # not consume: then every link goes through the broker. Routes by cluster alone keep a
    # task's subtasks on one queue, so following stays right.
    return not any("node" in conditions for conditions, _ in settings.TASKCENTER_QUEUE_ROUTES)


def execute_attempt(*, subtask_id: int, attempt: int) -> None:
    executor = socket.gethostname()
    claimed = services.attempt_claim(subtask_id=subtask_id, attempt=attempt, executor=executor)
    if claimed is None:
        logger.info(
            "subtask %s attempt %s already claimed or moved on; skipping", subtask_id, attempt
        )
        return
    follow_until = time.monotonic() + FOLLOW_FOR_SECONDS
    while claimed is not None:
        succeeded, result, log = _run_claimed(claimed, executor)
        finished = services.attempt_finish(
            subtask_id=claimed.subtask_id,
            attempt=claimed.attempt,
            task_id=claimed.task_id,
            succeeded=succeeded,
            log=log,
            result=result if _is_json_result(result) else None,
            claim_next_as=executor if time.monotonic() < follow_until and _may_follow() else None,
        )
        if finished.ended:
            count_finished()
        claimed = finished.next


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
        watcher.unwatch(ctx)
    elapsed = time.monotonic() - ctx.started
    observe_attempt(succeeded=succeeded, seconds=elapsed)
    ctx.log(f"{'succeeded' if succeeded else 'failed'} in {elapsed:.2f} s")
    return succeeded, result, ctx.drain()


def _is_json_result(result: Any) -> bool:
    return isinstance(result, dict | list)
