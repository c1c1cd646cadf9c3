"""Worker presence through the database: each worker's main process beats a row.

Every TASKCENTER_WORKER_BEAT_INTERVAL seconds a thread of the worker's main process
writes its WorkerPresence row (host, pid, concurrency, queues, attempts at work) and adds
the attempts its processes ended since the previous beat to the current minute's
FinishedMinute row. A clean shutdown marks the row stopped. The fleet page and the
no-worker banner read these rows (taskcenter.engine.selectors), so they work whatever the
broker is, the filesystem one included: Celery's own presence (gossip, heartbeat events,
`inspect`) needs broker broadcasts that it does not carry.

The pool's processes count the attempts they end in a shared counter made before the pool
forks them (`worker_init`); the thread starts once the consumer is ready (`worker_ready`),
after the fork, so that no child inherits a lock it holds.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from datetime import timedelta
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutdown
from celery.worker import state as worker_state
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from taskcenter.engine.models import FinishedMinute, WorkerPresence

logger = logging.getLogger(__name__)

PRUNE_EVERY_BEATS = 120
RECENT_KEPT = 20  # subtask ids a worker's row keeps of what it ran lately
STOP_MARK_WAIT = 30.0  # seconds a stopping worker waits for its stop mark to be written
# Throughput looks back an hour: its rows are kept at least that long.
THROUGHPUT_KEEP = timedelta(hours=2)

_finished: Any = None  # multiprocessing.Value shared with the pool's processes
_beat: Beat | None = None


def count_finished() -> None:
    """One attempt ended in this process (a no-op outside a worker)."""
    if _finished is not None:
        with _finished.get_lock():
            _finished.value += 1


def _finished_total() -> int:
    return int(_finished.value) if _finished is not None else 0


class Beat(threading.Thread):
    def __init__(self, *, name: str, concurrency: int, queues, interval: float):
        super().__init__(daemon=True, name="taskcenter-presence")
        self.worker_name = name
        self.concurrency = concurrency
        self.queues = queues  # a callable: the queues can change at run time (add_consumer)
        self.interval = interval
        self.started_at = timezone.now()
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.counted = 0
        self.beats = 0
        self.row_id: int | None = None  # this process's own row, made by its first beat
        self.recent: list[int] = []  # subtask ids seen at work, the latest first

    def run(self) -> None:
        while True:
            # The last beat, once asked to stop, is the stop mark; this thread writes it,
            # so no beat of its own can come after it.
            stopped = self.stopping.is_set()
            try:
                self.beat(stopped=stopped)
                if not stopped and self.beats % PRUNE_EVERY_BEATS == 1:
                    prune()
            except Exception:  # a database outage must not end the thread: beat again later
                logger.exception(
                    "marking the worker stopped failed"
                    if stopped
                    else "worker presence beat failed"
                )
            finally:
                connection.close()  # hold no connection between beats
            if stopped:
                return
            self.stopping.wait(self.interval)

    def beat(self, stopped: bool = False) -> None:
        now = timezone.now()
        self.beats += 1
        total = _finished_total()
        delta, self.counted = total - self.counted, total
        at_work = [] if stopped else attempts_at_work()
        for subtask_id, _ in at_work:
            if subtask_id in self.recent:
                self.recent.remove(subtask_id)
            self.recent.insert(0, subtask_id)
        del self.recent[RECENT_KEPT:]
        fields = {
            "hostname": self.worker_name.partition("@")[2] or self.worker_name,
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "queues": sorted(self.queues()),
            "started_at": self.started_at,
            "last_seen": now,
            "stopped_at": now if stopped else None,
            "running": 0 if stopped else len(worker_state.active_requests),
            "finished": total,
            "attempts": at_work,
            "recent": list(self.recent),
        }
        # An UPDATE of its own row in the common case; made by the first beat, and again if
        # someone deleted it. A worker started again under the same name gets a new row.
        # One transaction with the minute's count: a reader never sees the row's total
        # ahead of the throughput it is the sum of.
        with transaction.atomic():
            if self.row_id is None or not WorkerPresence.objects.filter(pk=self.row_id).update(
                **fields
            ):
                self.row_id = WorkerPresence.objects.create(name=self.worker_name, **fields).pk
            if delta:
                minute = now.replace(second=0, microsecond=0)
                row = FinishedMinute.objects.filter(minute=minute, worker=self.worker_name)
                if not row.update(count=F("count") + delta):
                    FinishedMinute.objects.create(
                        minute=minute, worker=self.worker_name, count=delta
                    )

    def stop(self) -> None:
        """Ask for the stop mark and wait for it. The thread writes it after any beat under
        way (one that is slow to write, on SQLite's lock, used to land after a mark written
        from here and erase it)."""
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=STOP_MARK_WAIT)
            return
        try:  # never started: write the mark here
            self.beat(stopped=True)
        except Exception:
            logger.exception("marking the worker stopped failed")
        finally:
            connection.close()


def attempts_at_work() -> list[list[int]]:
    """[subtask id, attempt] of the attempts this worker's pool runs now (its Celery
    requests of run_attempt)."""
    found = []
    for request in list(worker_state.active_requests):
        try:
            subtask_id, attempt = request.args[:2]
            found.append([int(subtask_id), int(attempt)])
        except (AttributeError, TypeError, ValueError):
            continue
    return found


def prune(now=None) -> tuple[int, int]:
    """Forget workers gone for longer than TASKCENTER_WORKER_PRESENCE_KEEP, and minutes
    older than the throughput needs."""
    now = now or timezone.now()
    keep = timedelta(seconds=settings.TASKCENTER_WORKER_PRESENCE_KEEP)
    workers, _ = WorkerPresence.objects.filter(last_seen__lt=now - keep).delete()
    minutes, _ = FinishedMinute.objects.filter(minute__lt=now - max(keep, THROUGHPUT_KEEP)).delete()
    return workers, minutes


@worker_init.connect
def make_the_counter(**kwargs) -> None:
    """Before the pool forks its processes, so that they share it."""
    global _finished
    _finished = multiprocessing.Value("Q", 0)


@worker_ready.connect
def start_beating(sender, **kwargs) -> None:
    global _beat
    if _beat is not None:
        return  # ready again after a broker reconnection: already beating
    controller = sender.controller
    app = sender.app
    _beat = Beat(
        name=sender.hostname,
        concurrency=int(getattr(controller, "concurrency", 0) or 0),
        queues=lambda: list(app.amqp.queues.consume_from or {}),
        interval=settings.TASKCENTER_WORKER_BEAT_INTERVAL,
    )
    _beat.start()
    # A cold shutdown (SIGQUIT) ends the process without Celery's worker_shutdown signal.
    atexit.register(stop_beating)


@worker_shutdown.connect
def stop_beating(**kwargs) -> None:
    global _beat
    beat, _beat = _beat, None
    if beat is not None and beat.pid == os.getpid():  # not in a forked child
        beat.stop()
