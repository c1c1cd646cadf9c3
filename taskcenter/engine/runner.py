"""Runs one subtask attempt inside a Celery worker.

claim (idempotent) -> run the action while a watcher thread heartbeats, flushes the log,
and notices cancel or timeout -> report the outcome to the finishing service.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from typing import Any

from django.conf import settings
from django.db import connection

from taskcenter.engine.actions import ActionFailed, Stopped, run_action
from taskcenter.tasks import selectors, services
from taskcenter.tasks.models import SubtaskInstance, SubtaskOperation, SubtaskStatus
from taskcenter.tasks.services import format_log_line

logger = logging.getLogger(__name__)

LOG_FLUSH_INTERVAL = 0.25


class AttemptContext:
    """What an action sees: parameters, logging, and whether it should stop."""

    def __init__(self, subtask: SubtaskInstance, attempt: int, params: dict[str, Any]):
        self.subtask_id = subtask.pk
        self.subtask_name = subtask.name
        self.attempt = attempt
        self.run_time = subtask.run_time
        self.params = params
        self.timeout = subtask.timeout
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()

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
    """Heartbeats, flushes the log, and turns CANCELING or a timeout into a stop request."""

    def __init__(self, ctx: AttemptContext):
        super().__init__(daemon=True, name=f"watch-subtask-{ctx.subtask_id}")
        self.ctx = ctx
        self.done = threading.Event()

    def run(self) -> None:
        ctx = self.ctx
        poll = min(settings.TASKCENTER_CANCEL_POLL_INTERVAL, LOG_FLUSH_INTERVAL)
        last_beat = last_status = time.monotonic()
        try:
            while not self.done.wait(poll):
                now = time.monotonic()
                self.flush()
                if now - ctx.started >= ctx.timeout:
                    ctx.stop(f"timed out after {ctx.timeout} s")
                if now - last_status >= settings.TASKCENTER_CANCEL_POLL_INTERVAL:
                    last_status = now
                    status = selectors.subtask_attempt_status(
                        subtask_id=ctx.subtask_id, attempt=ctx.attempt
                    )
                    if status == SubtaskStatus.CANCELING:
                        ctx.stop("canceled")
                    elif status != SubtaskStatus.RUNNING:
                        ctx.stop("the attempt is no longer running here")
                if now - last_beat >= settings.TASKCENTER_HEARTBEAT_INTERVAL:
                    last_beat = now
                    if not services.attempt_heartbeat(
                        subtask_id=ctx.subtask_id, attempt=ctx.attempt
                    ):
                        ctx.stop("the attempt is no longer running here")
        except Exception:  # a broken watcher must not leave the action unwatched silently
            logger.exception("watcher of subtask %s failed", ctx.subtask_id)
        finally:
            connection.close()

    def flush(self) -> None:
        data = self.ctx.drain()
        if data:
            services.log_append(subtask_id=self.ctx.subtask_id, attempt=self.ctx.attempt, data=data)


def execute_attempt(*, subtask_id: int, attempt: int) -> None:
    executor = socket.gethostname()
    subtask = services.attempt_claim(subtask_id=subtask_id, attempt=attempt, executor=executor)
    if subtask is None:
        logger.info(
            "subtask %s attempt %s already claimed or moved on; skipping", subtask_id, attempt
        )
        return
    ctx = AttemptContext(subtask, attempt, subtask.task.parameters)
    rollback = subtask.operation == SubtaskOperation.ROLLBACK
    action = subtask.rollback_action if rollback else subtask.action
    what = "rollback" if rollback else f"run {subtask.run_time}"
    ctx.log(f"start {what} of '{subtask.name}' ({subtask.node_type}) on {executor}")
    watcher = Watcher(ctx)
    watcher.start()
    succeeded, result = False, None
    try:
        if rollback and not action:
            ctx.log("nothing to roll back for this subtask")
            succeeded = True
        else:
            result = run_action(subtask.node_type, action, ctx)
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
        watcher.done.set()
        watcher.join()
    elapsed = time.monotonic() - ctx.started
    ctx.log(f"{'succeeded' if succeeded else 'failed'} in {elapsed:.2f} s")
    services.attempt_finish(
        subtask_id=subtask_id,
        attempt=attempt,
        task_id=subtask.task_id,
        succeeded=succeeded,
        log=ctx.drain(),
        result=result if _is_json_result(result) else None,
    )


def _is_json_result(result: Any) -> bool:
    return isinstance(result, dict | list)
