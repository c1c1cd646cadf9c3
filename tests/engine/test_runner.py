"""The in-process side of the engine: the per-process watcher and worker-only settings."""

import threading

import pytest
from django.db import connections

from taskcenter.engine import runner, worker
from taskcenter.tasks import selectors, verbs


def watcher_threads():
    return [t for t in threading.enumerate() if t.name == "taskcenter-watcher"]


@pytest.mark.usefixtures("eager_engine", "finish_path")
def test_one_watcher_thread_serves_every_attempt_of_the_process():
    first = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 5})
    second = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 5})

    assert all(selectors.task_get(task_id=t.pk).status == "SUCCESSFUL" for t in (first, second))
    assert len(watcher_threads()) == 1
    assert runner.process_watcher() is runner.process_watcher()


def synchronous_commit_of_a_new_connection() -> str:
    conn = connections.create_connection("default")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_worker_processes_do_not_wait_for_the_disk_on_postgresql(
    transactional_db, settings, monkeypatch
):
    if connections["default"].vendor != "postgresql":
        pytest.skip("a PostgreSQL setting: the suite's PostgreSQL run checks it")
    monkeypatch.setattr(worker, "_in_worker", False)
    assert synchronous_commit_of_a_new_connection() == "on"  # web and scheduler processes

    worker.mark_worker_process()
    assert synchronous_commit_of_a_new_connection() == "off"

    settings.TASKCENTER_WORKER_SYNCHRONOUS_COMMIT = True
    assert synchronous_commit_of_a_new_connection() == "on"
