"""The engine through a real Celery worker process, broker and database."""

import http.server
import threading
import time

import pytest

from taskcenter.engine import reaper
from taskcenter.engine.celery_tasks import run_attempt
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.definitions import DefinitionSpec, SubtaskSpec, register_definition
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished(task, timeout=60):
    def done():
        current = selectors.task_get(task_id=task.pk)
        return current if current.status != "RUNNING" else None

    return wait_for(done, timeout=timeout)


def subtask_named(task, name):
    return next(s for s in selectors.task_subtasks(task=task) if s.name == name)


def assert_dag_order(task):
    subs = {s.pk: s for s in selectors.task_subtasks(task=task)}
    for sub in subs.values():
        for upstream in sub.upstream_ids:
            assert sub.start_time >= subs[upstream].finish_time, (sub.name, subs[upstream].name)


@pytest.mark.parametrize(
    ("definition", "parameters"),
    [
        ("Reinstall OCP agent", {"host": "10.0.0.9"}),
        ("Scale out tenant units", {"units": 4}),
        ("Rolling upgrade of observers", {"servers_per_zone": 20}),
        ("Migrate tenant", {"fail_step": "", "step_seconds": 0.1}),
        ("Back up cluster", {"seconds": 1}),
        ("Benchmark fan-out", {"width": 50}),
        ("Benchmark chain", {"length": 20}),
    ],
)
def test_definition_runs_to_successful_in_dag_order(worker, definition, parameters):
    task = finished(verbs.task_start(definition_name=definition, parameters=parameters), 120)
    assert task.status == "SUCCESSFUL", [
        (s.name, s.status) for s in selectors.task_subtasks(task=task)
    ]
    subs = selectors.task_subtasks(task=task)
    assert all(s.status == "SUCCESSFUL" and s.run_time == 1 for s in subs)
    assert all(s.executor for s in subs)
    assert_dag_order(task)


def _messages_run(worker) -> int:
    return worker.log_path.read_bytes().count(b"Task taskcenter.run_attempt[")


def test_a_wide_fan_out_runs_each_node_once_on_fewer_messages_than_nodes(worker):
    """The release of 300 nodes sends TASKCENTER_FANOUT_MESSAGES (64) messages; the turns
    they start take the other nodes, each once."""
    before = _messages_run(worker)
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 300})
    task = finished(task, 120)
    subs = selectors.task_subtasks(task=task)

    assert task.status == "SUCCESSFUL"
    assert {(s.status, s.attempt, s.run_time) for s in subs} == {("SUCCESSFUL", 1, 1)}
    for sub in subs:
        assert selectors.log_read(subtask=sub).text.count("start run") == 1, sub.name
    assert_dag_order(task)
    # Received and run; a message whose node a turn took first runs a sibling.
    assert _messages_run(worker) - before < 150


def test_rolling_upgrade_has_more_than_fifty_subtasks(worker):
    task = verbs.task_start(definition_name="Rolling upgrade of observers")
    assert task.subtask_total == 65
    assert finished(task, 120).status == "SUCCESSFUL"


def test_parallel_branches_run_at_the_same_time(worker):
    task = finished(
        verbs.task_start(definition_name="Scale out tenant units", parameters={"units": 3})
    )
    units = [s for s in selectors.task_subtasks(task=task) if s.parallel_idx >= 0]
    assert sorted(s.parallel_idx for s in units) == [0, 1, 2]
    latest_start = max(s.start_time for s in units)
    earliest_finish = min(s.finish_time for s in units)
    assert latest_start < earliest_finish, "the three 1 s units did not overlap"


def test_shell_output_is_streamed_into_the_log_while_it_runs(worker):
    task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 4})
    backup = subtask_named(task, "Back up data files")

    def lines_so_far():
        sub = SubtaskInstance.objects.get(pk=backup.pk)
        text = selectors.log_read(subtask=sub).text
        return sub.status == "RUNNING" and "copied block 2 of 4" in text

    wait_for(lines_so_far, timeout=20)
    assert finished(task).status == "SUCCESSFUL"


def test_cancel_stops_a_running_shell_step_within_two_seconds(worker):
    task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 120})
    backup = subtask_named(task, "Back up data files")
    wait_for(
        lambda: (
            "copied block 1"
            in selectors.log_read(subtask=SubtaskInstance.objects.get(pk=backup.pk)).text
        ),
        timeout=20,
    )
    verbs.subtask_cancel(task_id=task.pk, subtask_id=backup.pk, reason="wrong window")
    # Long before the step's 120 s; the latency itself (the cancel poll's 0.2 s here) is a
    # figure of the benchmarks, not of a test on a machine that may be loaded.
    ended = wait_for(
        lambda: SubtaskInstance.objects.filter(pk=backup.pk, status="FAILED").first(),
        timeout=10,
        interval=0.05,
    )
    assert ended.operation == "CANCEL"
    assert selectors.task_get(task_id=task.pk).status == "FAILED"
    log = selectors.log_read(subtask=ended).text
    assert "cancel requested" in log and "stopped: canceled" in log
    assert subtask_named(task, "Finish backup").status == "PENDING"


def test_timeout_kills_the_step_and_fails_it(worker):
    register_definition(
        DefinitionSpec(
            name="Too slow",
            build=lambda p: [
                SubtaskSpec(
                    "slow",
                    "Slow step",
                    "SHELL_TASK",
                    {"command": "echo begin; sleep 30"},
                    timeout=1,
                )
            ],
        )
    )
    task = finished(verbs.task_start(definition_name="Too slow"), timeout=25)  # not 30 s
    slow = selectors.task_subtasks(task=task)[0]
    assert (task.status, slow.status) == ("FAILED", "FAILED")
    assert "timed out after 1 s" in selectors.log_read(subtask=slow).text


def test_retry_after_failure_through_the_worker(worker):
    task = finished(
        verbs.task_start(definition_name="Migrate tenant", parameters={"step_seconds": 0.1})
    )
    assert task.status == "FAILED"
    verbs.task_retry(task_id=task.pk)
    task = finished(task)
    assert (task.status, task.operation) == ("SUCCESSFUL", "RETRY")
    assert subtask_named(task, "Copy tenant data").run_time == 2


def test_rollback_through_the_worker(worker):
    task = finished(
        verbs.task_start(
            definition_name="Migrate tenant", parameters={"step_seconds": 0.1, "fail_times": 9}
        )
    )
    verbs.task_rollback(task_id=task.pk)
    task = finished(task)
    assert task.is_rolled_back
    assert all(s.status == "PENDING" for s in selectors.task_subtasks(task=task))


def test_same_message_delivered_twice_runs_the_attempt_once(worker):
    register_definition(
        DefinitionSpec(
            name="Count runs",
            build=lambda p: [
                SubtaskSpec("gate", "Gate", "SHELL_TASK", {"command": "sleep 1"}),
                SubtaskSpec(
                    "once", "Once", "SHELL_TASK", {"command": "echo ran"}, upstreams=["gate"]
                ),
            ],
        )
    )
    task = verbs.task_start(definition_name="Count runs")
    once = subtask_named(task, "Once")
    wait_for(lambda: SubtaskInstance.objects.get(pk=once.pk).status != "PENDING", timeout=20)
    attempt = SubtaskInstance.objects.get(pk=once.pk).attempt
    run_attempt.apply_async(args=[once.pk, attempt])  # the broker redelivers it
    run_attempt.apply_async(args=[once.pk, attempt])
    assert finished(task).status == "SUCCESSFUL"
    time.sleep(1.5)  # give the duplicates time to be consumed
    once = SubtaskInstance.objects.get(pk=once.pk)
    log = selectors.log_read(subtask=once).text
    assert log.count("start run") == 1 and log.count("echo ran") == 1
    assert once.run_time == 1


def test_worker_killed_mid_subtask_is_reaped_and_retry_succeeds(worker, fast_engine):
    task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 3})
    backup = subtask_named(task, "Back up data files")
    wait_for(
        lambda: (
            "copied block 1"
            in selectors.log_read(subtask=SubtaskInstance.objects.get(pk=backup.pk)).text
        ),
        timeout=20,
    )
    worker.kill()
    try:

        def reaped():
            reaper.reap()
            return SubtaskInstance.objects.filter(pk=backup.pk, status="FAILED").first()

        # WORKER_LOST_AFTER is 3 s here; how soon after it the reaper acts is a figure of
        # the failure drills (tests/engine/test_drills.py reports it).
        lost = wait_for(reaped, timeout=15, interval=0.25)
        assert "worker lost: no heartbeat since" in selectors.log_read(subtask=lost).text
        assert selectors.task_get(task_id=task.pk).status == "FAILED"
    finally:
        worker.start()
    verbs.task_retry(task_id=task.pk)
    task = finished(task)
    assert task.status == "SUCCESSFUL"
    assert subtask_named(task, "Back up data files").run_time == 2


def test_http_step_logs_status_and_stores_a_tabular_result(worker):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()
            self.wfile.write(b'{"status": "fine"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        ok = finished(
            verbs.task_start(
                definition_name="Check service health", parameters={"url": f"{base}/ok"}
            )
        )
        bad = finished(
            verbs.task_start(
                definition_name="Check service health", parameters={"url": f"{base}/down"}
            )
        )
    finally:
        server.shutdown()
    check = selectors.task_subtasks(task=ok)[0]
    assert ok.status == "SUCCESSFUL"
    assert check.result["schema"][0]["name"] == "status" and check.result["data"][0][0] == 200
    assert "HTTP 200" in selectors.log_read(subtask=check).text
    failed = selectors.task_subtasks(task=bad)[0]
    assert bad.status == "FAILED"
    assert "unexpected HTTP status 503" in selectors.log_read(subtask=failed).text


def test_ready_attempt_whose_message_was_lost_is_sent_again(worker, settings, monkeypatch):
    register_definition(
        DefinitionSpec(
            name="Lost message",
            build=lambda p: [
                SubtaskSpec("gate", "Gate", "SHELL_TASK", {"command": "sleep 2"}),
                SubtaskSpec(
                    "after", "After", "SHELL_TASK", {"command": "echo after"}, upstreams=["gate"]
                ),
                SubtaskSpec(
                    "orphan", "Orphan", "SHELL_TASK", {"command": "echo orphan"}, upstreams=["gate"]
                ),
            ],
        )
    )
    task = verbs.task_start(definition_name="Lost message")
    orphan = subtask_named(task, "Orphan")
    # Simulate a READY attempt whose Celery message never arrived: set it READY in the
    # database without sending anything, an hour ago.
    from datetime import timedelta

    from django.utils import timezone

    SubtaskInstance.objects.filter(pk=orphan.pk).update(
        status="READY", attempt=7, run_time=1, ready_at=timezone.now() - timedelta(hours=1)
    )
    settings.TASKCENTER_REDISPATCH_AFTER = 60
    # Not this process's first pass: that one sends every READY attempt again (the gate
    # too, when the worker has not claimed it yet), and only the orphan is an hour old.
    monkeypatch.setattr(reaper, "_catch_up", False)
    report = reaper.reap()
    assert report.redispatched == 1
    assert finished(task).status == "SUCCESSFUL"
    orphan = SubtaskInstance.objects.get(pk=orphan.pk)
    assert (orphan.status, orphan.attempt) == ("SUCCESSFUL", 7)
    assert "orphan" in selectors.log_read(subtask=orphan).text
