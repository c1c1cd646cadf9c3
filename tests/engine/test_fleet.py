"""Several workers and two schedulers as separate processes, as on several machines.

Two `celery worker` processes named w1@ and w2@ and two `run_scheduler` processes share
the test database and broker. Where the machine allows it (root on Linux), each worker
runs in its own UTS namespace with its own host name, so the executor recorded on each
subtask says which worker ran it, as it would across machines; elsewhere the workers'
own logs say which ran what.

The fleet consumes a queue of its own (the session's worker, if one runs, does not take
its messages) and a routed queue that only w2 consumes: shell subtasks go there
(TASKCENTER_QUEUE_ROUTES).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from taskcenter.core.env import load_environment
from taskcenter.engine import dispatch
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.definitions import DefinitionSpec, SubtaskSpec, register_definition
from taskcenter.tasks.models import AuditEntry
from tests.conftest import FAST_ENGINE, ROOT, TEST_QUEUE, _database_url, wait_for


def through_the_fleet(test):
    """A test that runs subtasks through the fleet's processes (committed data)."""
    return pytest.mark.worker(pytest.mark.django_db(transaction=True)(test))


FLEET_QUEUE = f"{TEST_QUEUE}-fleet"
SHELL_QUEUE = f"{TEST_QUEUE}-shell"
ROUTES = f"node:SHELL_TASK={SHELL_QUEUE}"
WORKERS = {"w1": [FLEET_QUEUE], "w2": [FLEET_QUEUE, SHELL_QUEUE]}


def _own_hostnames_possible() -> bool:
    if not shutil.which("unshare") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


OWN_HOSTNAMES = _own_hostnames_possible()


def _fleet_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(FAST_ENGINE)
    env.update(
        DATABASE_URL=_database_url(),
        TASKCENTER_QUEUE=FLEET_QUEUE,
        TASKCENTER_QUEUE_ROUTES=ROUTES,
        PYTHONUNBUFFERED="1",
        # A loaded machine can delay a heartbeat by seconds; a reaped no-op would read as a
        # second run. Lost workers are not what this module tests.
        TASKCENTER_WORKER_LOST_AFTER="60",
        # Both schedulers send again every READY attempt not claimed within a second: the
        # workers receive many duplicates, which their claims must turn away.
        TASKCENTER_REDISPATCH_AFTER="1",
        TASKCENTER_REAPER_INTERVAL="0.5",
    )
    return env


class FleetProcess:
    """One process of the fleet, in its own process group, logging to its own file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, ready_mark: bytes):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.ready_mark = ready_mark
        env = _fleet_env()
        env["FLEET_MEMBER"] = name
        if OWN_HOSTNAMES:  # a host name of its own, as on another machine
            argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0-fleet" && exec "$@"', name, *argv]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        wait_for(lambda: self.ready_mark in self.log() or self.proc.poll() is not None, 60)
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited at start:\n{self.log().decode(errors='replace')}")

    def log(self) -> bytes:
        return self.log_path.read_bytes()

    def stop(self) -> None:
        """A warm shutdown, and SIGKILL to the whole group for what outlives it."""
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
        self._log.close()


def _worker_argv(name: str, queues: list[str]) -> list[str]:
    return [
        *(sys.executable, "-m", "celery", "-A", "taskcenter", "worker"),
        *("-l", "info", "-c", "2", "-P", "prefork", "-n", f"{name}@%h"),
        *("-Q", ",".join(queues), "--without-gossip", "--without-mingle"),
    ]


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker, tmp_path_factory):
    """w1 and w2 (w2 also on the shell queue) and two schedulers, started once."""
    log_dir = tmp_path_factory.mktemp("fleet")
    members: dict[str, FleetProcess] = {}
    try:
        for name, queues in WORKERS.items():
            members[name] = FleetProcess(name, _worker_argv(name, queues), log_dir, b" ready.")
        for name in ("scheduler1", "scheduler2"):
            argv = [sys.executable, "manage.py", "run_scheduler"]
            members[name] = FleetProcess(name, argv, log_dir, b"scheduler: firing")
        for member in members.values():
            member.wait_ready()
        yield members
    finally:
        for member in members.values():
            member.stop()


@pytest.fixture
def routed(fleet, settings):
    """This process sends as the fleet's members do: to the fleet's queue, shells routed."""
    from taskcenter.celery import app

    settings.TASKCENTER_QUEUE_ROUTES = [({"node": "SHELL_TASK"}, SHELL_QUEUE)]
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = FLEET_QUEUE
    yield fleet
    app.conf.task_default_queue = default_queue


def _finished(task, timeout: float):
    def done():
        current = selectors.task_get(task_id=task.pk)
        return current if current.status != "RUNNING" else None

    return wait_for(done, timeout=timeout, interval=0.5)


def _runs_done_by(member: FleetProcess) -> int:
    return len(re.findall(rb"Task taskcenter\.run_attempt\[[^\]]+\] succeeded", member.log()))


@through_the_fleet
def test_two_workers_share_a_thousand_subtask_fan_out_and_none_runs_twice(routed):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 1000})
    task = _finished(task, timeout=600)
    subtasks = selectors.task_subtasks(task=task)

    assert task.status == "SUCCESSFUL"
    assert len(subtasks) == 1002
    # Each attempt ran once: first attempt, one run, one start line in its log.
    assert {(s.status, s.attempt, s.run_time) for s in subtasks} == {("SUCCESSFUL", 1, 1)}
    for sub in subtasks:
        assert selectors.log_read(subtask=sub).text.count("start run") == 1, sub.name
    # The audit trail: started once, ended once, nothing lost or retried in between.
    actions = list(
        AuditEntry.objects.filter(task_id=task.pk).order_by("id").values_list("action", "to_status")
    )
    assert [action for action, _ in actions] == ["START", "FINISH"], actions
    assert actions[-1][1] == "SUCCESSFUL"
    # Both workers did work, and the schedulers' duplicates were turned away by the claims.
    assert _runs_done_by(routed["w1"]) > 0 and _runs_done_by(routed["w2"]) > 0
    if OWN_HOSTNAMES:
        assert {s.executor for s in subtasks} == {"w1-fleet", "w2-fleet"}


def _start_then_six_shells(params: dict) -> list[SubtaskSpec]:
    """A Python step, then six shell steps that say which fleet member ran them."""
    say_who = {"command": 'echo "ran on $FLEET_MEMBER"'}
    shells = [
        SubtaskSpec(f"sh{i}", f"shell {i}", "SHELL_TASK", say_who, ["start"]) for i in range(6)
    ]
    return [SubtaskSpec("start", "start", "PYTHON_TASK", {"callable": "demo.noop"}), *shells]


@through_the_fleet
def test_a_routed_subtask_runs_on_the_only_worker_that_consumes_its_queue(routed):
    register_definition(DefinitionSpec(name="Fleet routing", build=_start_then_six_shells))
    task = _finished(verbs.task_start(definition_name="Fleet routing"), timeout=120)

    assert task.status == "SUCCESSFUL"
    shells = [s for s in selectors.task_subtasks(task=task) if s.node_type == "SHELL_TASK"]
    assert len(shells) == 6
    for shell in shells:
        assert "ran on w2" in selectors.log_read(subtask=shell).text, shell.name
        if OWN_HOSTNAMES:
            assert shell.executor == "w2-fleet"


# --- The routing setting, without processes ---------------------------------------------------


def _queue_routes(monkeypatch, rules: list[str]) -> list:
    """TASKCENTER_QUEUE_ROUTES set to these rules, as the settings read it."""
    monkeypatch.setenv("TASKCENTER_QUEUE_ROUTES", ",".join(rules))
    return load_environment().TASKCENTER_QUEUE_ROUTES


def test_routes_are_read_in_order_with_node_types_in_capitals(monkeypatch):
    rules = ["cluster:east&node:shell_task=east-shell", "node:SHELL_TASK=shell"]
    assert _queue_routes(monkeypatch, rules) == [
        ({"cluster": "east", "node": "SHELL_TASK"}, "east-shell"),
        ({"node": "SHELL_TASK"}, "shell"),
    ]


@pytest.mark.parametrize(
    "rule", ["node:SHELL_TASK", "=shell", "host:a=q", "node:SHELL_TASK&node:HTTP_TASK=q", "node:=q"]
)
def test_a_malformed_route_stops_the_process_naming_the_variable(monkeypatch, rule):
    with pytest.raises(ImproperlyConfigured, match="TASKCENTER_QUEUE_ROUTES"):
        _queue_routes(monkeypatch, [rule])


def test_an_unknown_node_type_is_refused_when_the_engine_starts():
    with pytest.raises(ImproperlyConfigured, match="SHEL_TASK"):
        dispatch._check_routes([({"node": "SHEL_TASK"}, "shell")])


def test_the_first_matching_route_wins_and_the_rest_go_to_the_default_queue(settings, monkeypatch):
    settings.TASKCENTER_QUEUE_ROUTES = _queue_routes(
        monkeypatch,
        ["cluster:east&node:SHELL_TASK=east-shell", "node:SHELL_TASK=shell", "cluster:east=east"],
    )
    assert dispatch.queue_for(node_type="SHELL_TASK", cluster="east") == "east-shell"
    assert dispatch.queue_for(node_type="SHELL_TASK", cluster="west") == "shell"
    assert dispatch.queue_for(node_type="PYTHON_TASK", cluster="east") == "east"
    assert dispatch.queue_for(node_type="PYTHON_TASK", cluster=None) is None
