"""Failure drills: a worker killed, the broker and the database restarted, the scheduler
killed, each against a whole installation in processes (tests/engine/drills.py). Each
ends with nothing lost and nothing stuck, and prints how long recovery took.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.engine.drills import Installation, report, started_task_id

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

TERMINAL = {"SUCCESSFUL", "FAILED"}


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    stack = Installation(tmp_path_factory.mktemp("drill"))
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


@pytest.fixture
def stack(installation):
    """The installation with every process running (a drill may have killed one)."""
    for process in (installation.web, installation.worker, installation.scheduler):
        if not process.alive():
            process.start()
    wait_for(lambda: installation.worker.log().count(" ready.") >= 1, timeout=60)
    return installation


def running_subtask(stack, task_id: int, timeout: float = 60) -> int:
    """The id of a subtask of the task once one runs: the drill's starting point, not
    what it measures (a loaded CI machine, three stages side by side, once took over
    30 s to get there)."""

    def running():
        return next((pk for pk, _, status in stack.subtasks(task_id) if status == "RUNNING"), 0)

    return wait_for(running, timeout=timeout, interval=0.1)


def test_drill_a_worker_killed_mid_subtask(stack):
    task_id = started_task_id(stack.run_task("Back up cluster", seconds=4))
    subtask_id = running_subtask(stack, task_id)
    stack.worker.kill()
    killed = time.monotonic()
    stack.wait_status(task_id, {"FAILED"}, timeout=20)
    to_failed = time.monotonic() - killed
    with stack.http() as http:
        log = http.get(f"/api/v2/tasks/instances/{task_id}/subtasks/{subtask_id}/log").json()
        assert "worker lost" in log["data"]["log"]
        stack.worker.start()
        assert http.post(f"/api/v2/tasks/instances/{task_id}/retry").status_code == 200
    stack.wait_status(task_id, {"SUCCESSFUL"}, timeout=60)
    assert to_failed < 3 + 2 + 2  # TASKCENTER_WORKER_LOST_AFTER + reaper pass + margin
    report("worker killed", failed_worker_lost_after=to_failed,
           successful_after=time.monotonic() - killed)  # fmt: skip


def test_drill_a_worker_killed_mid_fan_out_loses_no_turn(stack):
    """Both of the fan-out's messages are on the worker when it is killed (Redis gives an
    unacknowledged message back only after an hour): the reaper fails the two attempts it
    ran and hands their turns on, and the new worker runs every other unit at once, not
    after TASKCENTER_REDISPATCH_AFTER (300 s)."""
    task_id = started_task_id(stack.run_task("Scale out tenant units", units=12))

    def units(status: str) -> list[int]:
        return [pk for pk, name, s in stack.subtasks(task_id) if "unit" in name and s == status]

    wait_for(lambda: len(units("SUCCESSFUL")) >= 2 and units("RUNNING"), timeout=60, interval=0.1)
    stack.worker.kill()
    killed = time.monotonic()
    stack.worker.start()
    stack.wait_status(task_id, {"FAILED"}, timeout=60)
    to_end = time.monotonic() - killed

    lost = units("FAILED")
    assert 1 <= len(lost) <= 2, stack.subtasks(task_id)  # what the worker ran when killed
    assert len(units("SUCCESSFUL")) == 12 - len(lost), stack.subtasks(task_id)
    with stack.http() as http:
        log = http.get(f"/api/v2/tasks/instances/{task_id}/subtasks/{lost[0]}/log").json()
        assert "worker lost" in log["data"]["log"]
        assert http.post(f"/api/v2/tasks/instances/{task_id}/retry").status_code == 200
    stack.wait_status(task_id, {"SUCCESSFUL"}, timeout=60)
    assert to_end < 40
    report("worker killed mid fan-out", every_unit_ended_after=to_end,
           successful_after=time.monotonic() - killed)  # fmt: skip


def test_drill_the_broker_stopped_and_restarted_during_a_run(stack):
    failed, later = (
        started_task_id(stack.run_task("Migrate tenant", fail_step="copy", step_seconds=0))
        for _ in range(2)
    )
    for task_id in (failed, later):
        stack.wait_status(task_id, {"FAILED"}, timeout=60)
    running = started_task_id(stack.run_task("Migrate tenant", fail_step="", step_seconds=2))
    running_subtask(stack, running)

    outage_log = len(stack.worker.log())
    stack.redis.stop()
    with stack.http() as http:
        retry = http.post(f"/api/v2/tasks/instances/{failed}/retry")
    assert retry.status_code == 200, retry.text  # committed, and said so: never a 500
    assert retry.json()["successful"] is True
    started = stack.run_task("Reinstall OCP agent", host="10.0.0.7")
    assert started.returncode == 0, started.stderr
    assert "broker does not answer" in started.stderr
    queued = started_task_id(started)
    # The outage goes on: the worker must wait it out, not exit. Seen once it has failed to
    # reconnect twice and is trying again.
    wait_for(
        lambda: (
            stack.worker.log()[outage_log:].count("Trying again") >= 2 or not stack.worker.alive()
        ),
        timeout=30,
    )
    assert stack.worker.alive(), stack.worker.log()[-3000:]

    stack.redis.start()
    back = time.monotonic()
    # READY work is sent again within 10 s of the broker's return, not after 300 s.
    wait_for(
        lambda: all(status != "READY" for task in (failed, queued)
                    for _, _, status in stack.subtasks(task)),
        timeout=10, interval=0.2,
    )  # fmt: skip
    sent_again = time.monotonic() - back
    with stack.http() as http:  # the web server's own sends work again too
        assert http.post(f"/api/v2/tasks/instances/{later}/retry").status_code == 200
    for task_id in (failed, running, queued, later):
        stack.wait_status(task_id, {"SUCCESSFUL"}, timeout=60)
    assert stack.worker.alive() and "Unrecoverable error" not in stack.worker.log()
    report("broker restarted", ready_work_sent_after=sent_again,
           all_successful_after=time.monotonic() - back)  # fmt: skip


def test_drill_postgresql_restarted_while_steps_finish(stack):
    # Steps end during the outage (a migration's 1.5 s steps, which return results) and
    # right after it, on the connection the restart broke (a backup step that outlasts
    # the outage, as in "Back up cluster" with a restart in the middle of its step).
    with stack.http() as http:  # the API starts them at once (run_task takes seconds)
        backup = start_run(http, "Back up cluster", seconds=10)
        migration = start_run(http, "Migrate tenant", fail_step="", step_seconds=1.5)
    wait_for(lambda: subtask_status(stack, backup, "Back up data files") == "RUNNING", 30, 0.1)
    running_subtask(stack, migration)
    worker_log = len(stack.worker.log())

    browser = stack.browser()
    stack.postgres.stop()
    try:
        page = browser.get("/tasks/")
        with stack.http() as http:
            api = http.get("/api/v2/tasks/instances")
            ready = http.get("/readyz")
        time.sleep(4)  # the outage: longer than TASKCENTER_WORKER_LOST_AFTER (3 s)
    finally:
        stack.postgres.start()
    back = time.monotonic()
    assert page.status_code == 503 and "database does not answer" in page.text
    assert api.status_code == 503 and api.json()["successful"] is False
    assert ready.status_code == 503 and ready.json()["database"] == "unavailable"

    wait_for(lambda: browser.get("/tasks/").status_code == 200, timeout=20)
    web_back = time.monotonic() - back
    # Every step ends with its own outcome, without a retry: nothing is failed as lost.
    for task_id in (migration, backup):
        stack.wait_status(task_id, TERMINAL, timeout=60)
    all_ended = time.monotonic() - back
    assert (stack.task_status(migration), stack.task_status(backup)) == ("SUCCESSFUL",) * 2
    # Some finish did meet the outage (else this drill proved nothing).
    assert "the database did not take its outcome" in stack.worker.log()[worker_log:]
    # None ran twice: each step's runTime is 1 and its log has one run; the audit has no
    # lost worker and no retry; each migration step's result is its first run's.
    steps = stack.query(
        "SELECT s.task_id, s.name, s.status, s.run_time, s.result::text, "
        "(SELECT string_agg(convert_from(c.data, 'UTF8'), '' ORDER BY c.\"offset\") "
        " FROM tasks_logchunk c WHERE c.subtask_id = s.id) "
        "FROM tasks_subtaskinstance s WHERE s.task_id IN (%s, %s) ORDER BY s.id",
        migration,
        backup,
    )
    assert len(steps) == 8, steps
    for _, name, status, run_time, _, log in steps:
        assert (status, run_time) == ("SUCCESSFUL", 1), (name, status, run_time)
        assert log.count("start run") == 1 and "worker lost" not in log, (name, log)
    results = [result for task_id, _, _, _, result, _ in steps if task_id == migration]
    assert len(results) == 5
    assert all(result and '"data": [[' in result and ", 1]]" in result for result in results)
    assert not stack.query(
        "SELECT action FROM tasks_auditentry WHERE task_id IN (%s, %s) AND action IN "
        "('WORKER_LOST', 'AUTO_RETRY', 'RETRY', 'SUBTASK_RETRY')",
        migration,
        backup,
    )
    assert stack.worker.alive() and stack.scheduler.alive() and stack.web.alive()
    after = started_task_id(stack.run_task("Reinstall OCP agent", host="10.0.0.8"))
    stack.wait_status(after, {"SUCCESSFUL"}, timeout=60)
    report("PostgreSQL restarted while steps finish", pages_answer_after=web_back,
           all_steps_ended_after=all_ended)  # fmt: skip


def start_run(http, job: str, **parameters) -> int:
    started = http.post(f"/api/v2/jobs/{job}/runs", json={"parameters": parameters})
    assert started.status_code == 201, started.text
    body = started.json()
    return body.get("data", body)["taskInstanceId"]


def subtask_status(stack, task_id: int, name: str) -> str | None:
    return next((status for _, n, status in stack.subtasks(task_id) if n == name), None)


PLAN = {
    "entityGroup": "NOTEBOOK",
    "entityKey": "drill",
    "overlapPolicy": "START",
    "planItems": [{"triggerType": "CRON_JOB", "cronDesc": "*/2 * * * * ?", "cronType": "CRON"}],
    "execDetail": {
        "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
        "jobParams": {"notebook": 1},
    },
}


def fires(stack) -> list[tuple]:
    return stack.query(
        "SELECT fire_time, outcome, task_id FROM schedules_fire ORDER BY fire_time, id"
    )


def test_drill_the_scheduler_killed_during_a_fire(stack):
    with stack.http() as http:
        created = http.post("/api/schedules", json=PLAN)
        assert created.status_code == 200, created.text
        plan_id = created.json()["data"]["id"]
        recoveries = []
        for _ in range(3):
            # Kill it right as a fire is recorded: the next scheduler must not fire it again.
            seen = len(fires(stack))
            wait_for(lambda seen=seen: len(fires(stack)) > seen, timeout=10, interval=0.02)
            stack.scheduler.kill()
            killed = time.monotonic()
            count = len(fires(stack))
            stack.scheduler.start()
            wait_for(lambda count=count: len(fires(stack)) > count, timeout=15, interval=0.05)
            recoveries.append(time.monotonic() - killed)
        wait_for(lambda: http.post(f"/api/schedules/{plan_id}/disable").status_code == 200)
    time.sleep(1)
    rows = fires(stack)
    times = [fire_time for fire_time, _, _ in rows]
    assert len(times) == len(set(times)), rows  # no fire time fired twice
    started = [task for _, outcome, task in rows if outcome == "STARTED"]
    assert all(started) and len(started) == len(set(started))  # one run per fire
    # Nothing lost: every 2-second slot between the first and the last fire is recorded.
    span = (times[-1] - times[0]).total_seconds()
    assert len(times) == span / 2 + 1, rows
    for task_id in started:
        stack.wait_status(task_id, {"SUCCESSFUL"}, timeout=60)
    report("scheduler killed", **{f"next_fire_after_kill_{n + 1}": s
                                  for n, s in enumerate(recoveries)})  # fmt: skip
