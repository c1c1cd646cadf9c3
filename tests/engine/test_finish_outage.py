"""A finished step's outcome is never lost to a database outage.

The worker keeps an outcome the database does not take and tries again until it does,
heartbeating the attempt meanwhile; no other step is claimed or sent in its place, and
the reaper does not call the attempt lost. The attempts run in-process (the runner, as a
worker's pool process runs it), in a thread of their own, so that the test can break the
database under them.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import OperationalError, connection, connections
from django.utils import timezone

from taskcenter.engine import dispatch, reaper, runner
from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    SubtaskSpec,
    register_callable,
    register_definition,
)
from taskcenter.tasks.models import AuditEntry, SubtaskInstance
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

RESULT = {"schema": [{"name": "copied", "type": "number"}], "data": [[42]]}


class Step:
    """The first step's action: tells the test it runs, then ends when the test says."""

    def __init__(self):
        self.running = threading.Event()
        self.may_end = threading.Event()
        self.runs = 0

    def __call__(self, ctx) -> dict:
        self.runs += 1
        ctx.log("copying")
        self.running.set()
        assert self.may_end.wait(30)
        ctx.log("copied")  # logged while the database is away: kept for the finish
        return RESULT


STEP = Step()
register_callable("tests.outage_step")(lambda ctx: STEP(ctx))


@pytest.fixture
def chain(fast_engine, no_broker, monkeypatch):
    """A two-step chain whose first step is STEP, its first attempt sent; the reaper as a
    fresh scheduler's with the broker up, minus its first pass's catch-up sends (no
    message is lost here); short pauses between the worker's tries."""
    global STEP
    STEP = Step()
    fast_engine.TASKCENTER_FINISH_RETRY_FOR = 20  # a failing test's worker stops trying
    monkeypatch.setattr(runner, "FINISH_RETRY_MAX_PAUSE", 0.4)
    monkeypatch.setattr(reaper, "_catch_up", False)
    monkeypatch.setattr(dispatch, "broker_answers", lambda: True)
    monkeypatch.setattr(reaper, "_database_failed", False)
    monkeypatch.setattr(reaper, "_database_back_at", None)
    register_definition(
        DefinitionSpec(
            name="Outage chain",
            build=lambda p: [
                SubtaskSpec("copy", "Copy", "PYTHON_TASK", {"callable": "tests.outage_step"}),
                SubtaskSpec(
                    "check",
                    "Check",
                    "PYTHON_TASK",
                    {"callable": "demo.step", "kwargs": {"step": "check", "seconds": 0}},
                    upstreams=["copy"],
                ),
            ],
        )
    )
    task = verbs.task_start(definition_name="Outage chain")
    first, second = selectors.task_subtasks(task=task)
    assert no_broker == [(first.pk, first.attempt)]
    no_broker.clear()
    yield task, first, second
    STEP.may_end.set()  # a failing test's step ends


def count_finish_failures(monkeypatch) -> Counter[int]:
    """Finishes that raised, by subtask id (what the worker logs as "did not take")."""
    failures: Counter[int] = Counter()
    finish = services.attempt_finish

    def attempt_finish(**kwargs):
        try:
            return finish(**kwargs)
        except Exception:
            failures[kwargs["subtask_id"]] += 1
            raise

    monkeypatch.setattr(services, "attempt_finish", attempt_finish)
    return failures


class Worker(threading.Thread):
    """Runs one message's attempt as a worker's pool process would; keeps what it raised."""

    def __init__(self, subtask: SubtaskInstance):
        super().__init__(daemon=True)
        self.subtask_id, self.attempt = subtask.pk, subtask.attempt
        self.raised: BaseException | None = None

    def run(self) -> None:
        try:
            runner.execute_attempt(subtask_id=self.subtask_id, attempt=self.attempt)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            self.raised = exc
        finally:
            connection.close()


def assert_ran_once_with_its_outcome(task, first, second, no_broker):
    first = SubtaskInstance.objects.get(pk=first.pk)
    assert (first.status, first.run_time, first.result) == ("SUCCESSFUL", 1, RESULT)
    log = selectors.log_read(subtask=first).text
    assert log.count("start run 1") == 1 and "copied" in log and "worker lost" not in log
    assert STEP.runs == 1
    assert not AuditEntry.objects.filter(task=task, action__in=["WORKER_LOST", "AUTO_RETRY"])
    # The second step runs once: claimed by the finish for this worker, or sent once.
    second = SubtaskInstance.objects.get(pk=second.pk)
    if second.status == "SUCCESSFUL":
        assert second.run_time == 1 and no_broker == []
    else:
        assert second.status == "READY" and no_broker == [(second.pk, second.attempt)]


def test_a_finish_that_meets_a_database_restart_is_recorded_once_it_answers(
    chain, no_broker, monkeypatch, finish_path
):
    if connection.vendor != "postgresql":
        pytest.skip("terminates PostgreSQL backends, as a restart does")
    task, first, second = chain
    failures = count_finish_failures(monkeypatch)
    # The connections this test ends: its own (this thread's) and those opened from now on
    # (the worker's and its heartbeat's), found by when their backend started; nothing
    # else connected to the database is touched.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), clock_timestamp()")
        own, began = cursor.fetchone()
    worker = Worker(first)
    worker.start()
    assert STEP.running.wait(30)

    # What a restart does to this test's database: its connections are ended
    # ("terminating connection due to administrator command") and new ones are refused for
    # a while. The test keeps one connection to the database (`inside`) and acts as the
    # operator through another to the server's maintenance database.
    db = connection.settings_dict
    inside = connections.create_connection("default")
    inside.ensure_connection()
    with (
        inside.cursor() as keeper,
        psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as operator,
    ):
        keeper.execute("SELECT pg_backend_pid()")
        kept = keeper.fetchone()[0]
        try:
            operator.execute(f'ALTER DATABASE "{db["NAME"]}" WITH ALLOW_CONNECTIONS false')
            operator.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s AND (pid = %s OR backend_start >= %s)",
                [db["NAME"], kept, own, began],
            )
            # An outage longer than TASKCENTER_WORKER_LOST_AFTER (3 s here), without
            # waiting it out: the last heartbeat was an hour ago.
            keeper.execute(
                "UPDATE tasks_subtaskinstance SET heartbeat_at = %s WHERE id = %s",
                [timezone.now() - timedelta(hours=1), first.pk],
            )
            STEP.may_end.set()
            # The finish meets the dead connection, then refused ones: the worker waits.
            wait_for(lambda: not worker.is_alive() or failures[first.pk] >= 2, timeout=20)
            assert worker.is_alive(), worker.raised
            with pytest.raises(OperationalError):  # the scheduler's reaper pass fails too
                reaper.reap()
        finally:
            operator.execute(f'ALTER DATABASE "{db["NAME"]}" WITH ALLOW_CONNECTIONS true')
            connection.close()  # as the scheduler's loop does after a failed pass
    inside.close()

    # The database is back: the reaper does not call the attempt lost, though its last
    # heartbeat is an hour old; the worker records its outcome.
    report = reaper.reap()
    assert report.lost == 0
    worker.join(30)
    assert not worker.is_alive() and worker.raised is None, worker.raised
    assert_ran_once_with_its_outcome(task, first, second, no_broker)


def test_the_reaper_leaves_an_attempt_alone_while_its_worker_holds_its_outcome(
    chain, no_broker, monkeypatch
):
    """The lease goes on after the action: the held attempt is heartbeaten until its
    finish is recorded, on any database."""
    task, first, second = chain
    database_answers = threading.Event()
    finish = services.attempt_finish

    def attempt_finish(**kwargs):
        if not database_answers.is_set():
            raise OperationalError("server closed the connection unexpectedly")
        return finish(**kwargs)

    monkeypatch.setattr(services, "attempt_finish", attempt_finish)
    failures = count_finish_failures(monkeypatch)
    worker = Worker(first)
    worker.start()
    assert STEP.running.wait(30)
    STEP.may_end.set()
    wait_for(lambda: not worker.is_alive() or failures[first.pk] >= 1, timeout=20)

    long_ago = timezone.now() - timedelta(hours=1)
    SubtaskInstance.objects.filter(pk=first.pk).update(heartbeat_at=long_ago)

    def beaten():
        return SubtaskInstance.objects.filter(pk=first.pk, heartbeat_at__gt=long_ago).exists()

    wait_for(beaten, timeout=10)
    assert reaper.reap().lost == 0
    assert SubtaskInstance.objects.get(pk=first.pk).status == "RUNNING"

    database_answers.set()
    worker.join(30)
    assert not worker.is_alive() and worker.raised is None, worker.raised
    assert_ran_once_with_its_outcome(task, first, second, no_broker)


def test_a_finish_whose_commit_was_not_seen_sends_its_downstreams_again(
    chain, no_broker, monkeypatch, finish_path
):
    """The connection broke after the finish's commit reached the database: the worker
    saw an error, its retry finds the attempt ended, and the step the finish released
    (never sent: its send ran on a commit the worker did not see) is sent now, once."""
    task, first, second = chain
    from taskcenter.tasks.services import attempts

    monkeypatch.setattr(attempts, "links_may_follow", lambda: False)  # released steps are sent
    finish = services.attempt_finish
    tries = Counter[str]()

    def attempt_finish(**kwargs):
        tries["finish"] += 1
        finished = finish(**kwargs)
        if tries["finish"] == 1:
            no_broker.clear()  # the send that followed the commit is lost with the answer
            raise OperationalError("server closed the connection unexpectedly")
        return finished

    monkeypatch.setattr(services, "attempt_finish", attempt_finish)
    STEP.may_end.set()
    runner.execute_attempt(subtask_id=first.pk, attempt=first.attempt)

    assert tries["finish"] == 2
    second = SubtaskInstance.objects.get(pk=second.pk)
    assert second.status == "READY" and no_broker == [(second.pk, second.attempt)]
    first = SubtaskInstance.objects.get(pk=first.pk)
    assert (first.status, first.run_time, first.result) == ("SUCCESSFUL", 1, RESULT)


def test_a_one_trip_finish_whose_next_claim_fails_sends_the_next_step(
    chain, no_broker, monkeypatch
):
    """PostgreSQL's one-trip finish commits before the claim of the next link: when that
    claim fails on the connection, the finish is not tried again (it is recorded), and the
    next link goes through the broker instead of waiting for the reaper."""
    if connection.vendor != "postgresql":
        pytest.skip("the one-trip finish is PostgreSQL's")
    task, first, second = chain
    from taskcenter.tasks.services import attempts

    def attempt_claim(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    failures = count_finish_failures(monkeypatch)
    claimed = services.attempt_claim(subtask_id=first.pk, attempt=first.attempt, executor="w")
    assert claimed is not None
    monkeypatch.setattr(attempts, "attempt_claim", attempt_claim)
    finished = services.attempt_finish(
        subtask_id=first.pk,
        attempt=first.attempt,
        task_id=task.pk,
        succeeded=True,
        result=RESULT,
        claim_next_as="w",
    )

    assert finished.ended and finished.next is None and not failures
    second = SubtaskInstance.objects.get(pk=second.pk)
    assert second.status == "READY" and no_broker == [(second.pk, second.attempt)]
    assert SubtaskInstance.objects.get(pk=first.pk).status == "SUCCESSFUL"
