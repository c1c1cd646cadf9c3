"""Worker presence through the database, with a real worker process (whatever the broker:
the default test run uses the filesystem one)."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter.engine import presence
from taskcenter.engine import selectors as engine_selectors
from taskcenter.engine.models import FinishedMinute, WorkerPresence
from taskcenter.tasks import selectors, verbs
from tests.conftest import TEST_QUEUE, WorkerProcess, wait_for
from tests.factories import make_finished_minute, make_presence

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_worker(celery_worker, tmp_path):
    """A worker of this test's own, with two processes, stopped at the end (the session's
    worker is stopped meanwhile, so that only this one takes the messages)."""
    celery_worker.stop()
    worker = WorkerProcess(tmp_path / "worker.log", concurrency=2)
    worker.start()
    yield worker
    worker.stop()


def row_of(worker: WorkerProcess) -> WorkerPresence | None:
    assert worker.proc is not None
    return WorkerPresence.objects.filter(pid=worker.proc.pid).first()


def test_a_worker_beats_counts_what_it_ends_and_marks_itself_stopped(own_worker):
    row = wait_for(lambda: row_of(own_worker), timeout=30)
    assert row.concurrency == 2
    assert TEST_QUEUE in row.queues
    assert row.stopped_at is None and row.hostname
    first_seen = row.last_seen
    wait_for(lambda: row_of(own_worker).last_seen > first_seen, timeout=10)
    assert engine_selectors.presence().online

    long = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 4})
    wait_for(lambda: row_of(own_worker).running >= 1, timeout=30)  # an attempt at work
    wait_for(lambda: selectors.task_get(task_id=long.pk).status == "SUCCESSFUL", timeout=60)
    wait_for(lambda: row_of(own_worker).running == 0, timeout=10)

    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 5})
    wait_for(lambda: selectors.task_get(task_id=task.pk).status == "SUCCESSFUL", timeout=60)
    ended = 5 + long.subtask_total
    wait_for(lambda: row_of(own_worker).finished >= ended, timeout=10)
    since = timezone.now() - timedelta(minutes=5)
    assert engine_selectors.finished_since(since) >= ended
    assert sum(FinishedMinute.objects.values_list("count", flat=True)) >= ended

    pid = own_worker.proc.pid
    own_worker.stop(signal.SIGTERM)  # a clean (warm) shutdown
    stopped = WorkerPresence.objects.get(pid=pid)
    assert stopped.stopped_at is not None and stopped.running == 0
    assert not engine_selectors.presence().online  # the session's worker stopped too


def test_a_killed_worker_goes_offline_after_the_threshold(own_worker, settings):
    row = wait_for(lambda: row_of(own_worker), timeout=30)
    own_worker.kill()
    settings.TASKCENTER_NO_WORKER_AFTER = 1.0
    wait_for(lambda: not engine_selectors.presence().online, timeout=10)
    gone = WorkerPresence.objects.get(pk=row.pk)
    assert gone.stopped_at is None  # it never said goodbye: offline by silence
    [listed] = [w for w in engine_selectors.workers() if w.name == gone.name]
    assert not listed.online


def test_old_rows_are_pruned(db):
    now = timezone.now()
    make_presence("gone@host", seen_ago=timedelta(days=2), started_ago=timedelta(0), pid=1)
    make_presence("here@host", started_ago=timedelta(0), pid=2)
    make_finished_minute("gone@host", 3, at=now - timedelta(days=2))
    assert presence.prune(now) == (1, 1)
    assert list(WorkerPresence.objects.values_list("name", flat=True)) == ["here@host"]


def test_a_beat_under_way_at_shutdown_cannot_overwrite_the_stop_mark(transactional_db):
    """A regular beat that is slow to write (SQLite's write lock on a busy machine) was
    still running when the shutdown wrote the stop mark beside it; it then wrote its own
    row, without the mark, over it. Only the beating thread writes the row now, so the
    stop mark is always the last write."""
    import threading

    hanging = threading.Event()
    regular_beat = presence.Beat.beat

    def slow_beat(self, stopped: bool = False) -> None:
        if not stopped and self.beats >= 1:  # the second regular beat waits, as on a lock
            hanging.set()
            threading.Event().wait(6)
        regular_beat(self, stopped)

    beat = presence.Beat(name="slow@host", concurrency=1, queues=lambda: ["q"], interval=0.05)
    beat.beat = slow_beat.__get__(beat)  # type: ignore[method-assign]
    beat.start()
    assert hanging.wait(10)
    beat.stop()
    beat.join(15)
    assert not beat.is_alive()
    row = WorkerPresence.objects.get(name="slow@host")
    assert row.stopped_at is not None and row.running == 0
