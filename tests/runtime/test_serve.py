"""`serve`: the production web server, supervision of its children, and stopping cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from taskcenter.runtime.supervise import MAX_RESTART_DELAY, restart_delay
from tests.runtime.test_run_task import ROOT, _isolated_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _live_processes_in_groups(groups: set[int]) -> list[str]:
    """Processes (not zombies) whose process group is one of `groups`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ')'.
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in groups and state != "Z":
            found.append(text[:80])
    return found


def _healthz(port: int, timeout: float = 1) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as resp:
            return resp.status
    except OSError:
        return None


def _started_pids(log_path: Path) -> list[tuple[str, int]]:
    """(child name, pid) of every child serve started, restarts included, in order."""
    found = re.findall(r"started (\w+) \(pid (\d+)\)", log_path.read_text())
    return [(name, int(pid)) for name, pid in found]


def _wait_for(condition, what: str, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}:\n{log_path.read_text()}"
        time.sleep(0.2)


class Serve:
    """`serve` on a free port with its own var dir; every process it started is killed after."""

    def __init__(self, tmp_path: Path, web_processes: int = 2) -> None:
        self.port = _free_port()
        self.log_path = tmp_path / "serve.log"
        self.env = _isolated_env(tmp_path / "var")
        self.var_dir = tmp_path / "var"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(self.port)]
                + ["--concurrency", "1", "--web-processes", str(web_processes)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 180  # migrate and collectstatic on a busy machine
        while _healthz(self.port) != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.2)

    @property
    def groups(self) -> set[int]:
        return {pid for _, pid in _started_pids(self.log_path)}

    def pid_of(self, name: str) -> int:
        return [pid for child, pid in _started_pids(self.log_path) if child == name][-1]

    def output(self) -> str:
        return self.log_path.read_text()

    def kill_everything(self) -> None:
        groups = self.groups if self.log_path.exists() else set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def serve(tmp_path):
    running = Serve(tmp_path)
    try:
        running.wait_until_up()
        yield running
    finally:
        running.kill_everything()


def test_serve_runs_web_worker_scheduler_and_stops_cleanly_on_ctrl_c(serve):
    groups = serve.groups
    assert len(groups) == 4, serve.output()  # two web processes, worker, scheduler
    # The worker's banner comes after the web server.
    _wait_for(
        lambda: " ready." in serve.output() and "scheduler | " in serve.output(),
        "the worker and the scheduler did not start",
        serve.log_path,
        timeout=30,
    )
    assert _live_processes_in_groups(groups)

    os.kill(serve.proc.pid, signal.SIGINT)
    assert serve.proc.wait(timeout=15) == 0, serve.output()

    output = serve.output()
    assert "web1      | " in output and "web2      | " in output and "worker    | " in output
    assert f"http://127.0.0.1:{serve.port}/" in output
    assert "serve: stopped" in output
    assert _live_processes_in_groups(groups) == []


def _web_threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE).group(1))


def test_serve_web_is_uvicorn_and_answers_at_once_with_200_half_sent_requests_open(serve):
    """No reverse proxy stands in front of serve: the server itself must hold slow clients
    without giving each a thread (Django's runserver had one thread per connection)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{serve.port}/healthz", timeout=5) as response:
        assert response.headers["Server"] == "uvicorn"
    # Static files come through whitenoise, from the files collectstatic gathered.
    with urllib.request.urlopen(
        f"http://127.0.0.1:{serve.port}/static/css/app.css", timeout=5
    ) as response:
        assert response.status == 200
        assert "max-age" in response.headers["Cache-Control"]

    with ExitStack() as stack:
        for i in range(200):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", serve.port), 5))
            # A request line and part of the headers, never the blank line that ends them.
            partial = f"GET /api/v2/tasks/instances?page={i} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            sock.sendall(partial.encode())
        time.sleep(1)  # let the server take them all in

        # Answered while they are all open (a server with a thread per connection would
        # have none left and time out).
        for _ in range(3):
            assert _healthz(serve.port, timeout=5) == 200
        # Holding 200 half-sent requests costs sockets, not threads.
        assert _web_threads(serve.pid_of("web1")) < 50


def test_serve_restarts_a_killed_worker_keeps_serving_and_sigterm_stops_everything(serve):
    _wait_for(lambda: " ready." in serve.output(), "no worker", serve.log_path)
    old_worker = serve.pid_of("worker")

    answers: list[int | None] = []
    polling = threading.Event()

    def poll_web() -> None:
        while not polling.is_set():
            answers.append(_healthz(serve.port, timeout=5))
            polling.wait(0.1)

    poller = threading.Thread(target=poll_web, daemon=True)
    poller.start()
    try:
        os.killpg(old_worker, signal.SIGKILL)
        _wait_for(
            lambda: serve.pid_of("worker") != old_worker,
            "the worker was not restarted",
            serve.log_path,
            timeout=30,
        )
        output = serve.output()
        assert "serve: worker exited unexpectedly with signal SIGKILL; restarting it in" in output
        assert "serve: restarted worker" in output
        assert serve.proc.poll() is None

        # The new worker runs a task to the end.
        waited = subprocess.run(
            [sys.executable, "manage.py", "run_task", "Benchmark chain", "--param", "length=3"]
            + ["--wait", "--timeout", "90"],
            cwd=ROOT,
            env=serve.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert waited.returncode == 0, waited.stdout + waited.stderr + serve.output()
        assert "SUCCESSFUL" in waited.stdout.splitlines()[-1]
    finally:
        polling.set()
        poller.join(timeout=10)
    assert answers and set(answers) == {200}, answers

    # SIGTERM (a service manager's stop) ends every child, the restarted worker included.
    groups = serve.groups
    assert len(groups) == 5  # two web processes, scheduler, two workers
    os.kill(serve.proc.pid, signal.SIGTERM)
    assert serve.proc.wait(timeout=20) == 0, serve.output()
    assert "serve: SIGTERM received; stopping" in serve.output()
    assert "serve: stopped" in serve.output()
    assert _live_processes_in_groups(groups) == []


def test_restart_delay_doubles_from_one_second_up_to_a_cap():
    assert [restart_delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert restart_delay(20) == MAX_RESTART_DELAY == 30.0


def test_serve_runs_several_web_processes_on_one_port_and_a_dead_one_is_replaced(serve):
    """`--web-processes 2`: two web processes accept from the one socket serve bound;
    killing one leaves the other answering, and serve starts a new one on the same socket."""
    first, second = serve.pid_of("web1"), serve.pid_of("web2")
    assert first != second
    listening = {pid for pid in (first, second) if _listens_on(pid, serve.port)}
    assert listening == {first, second}, serve.output()

    os.killpg(first, signal.SIGKILL)
    answers = [_healthz(serve.port, timeout=5) for _ in range(20)]
    assert answers == [200] * 20, answers  # the other one answers meanwhile
    _wait_for(
        lambda: serve.pid_of("web1") != first and _listens_on(serve.pid_of("web1"), serve.port),
        "web1 was not restarted on the shared socket",
        serve.log_path,
        timeout=30,
    )
    assert "serve: web1 exited unexpectedly with signal SIGKILL" in serve.output()
    assert _healthz(serve.port, timeout=5) == 200


def _listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on `port` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A: LISTEN
            inodes.add(inode)
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(link == f"socket:[{inode}]" for link in links for inode in inodes)


def _steps_of(var_dir: Path) -> list[int]:
    """The shell steps of "Back up cluster" that the processes of `var_dir` run."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"TC_PARAM_SECONDS" not in cmdline.read_bytes():
                continue
            environ = (cmdline.parent / "environ").read_bytes()
        except OSError:
            continue
        if f"TASKCENTER_VAR_DIR={var_dir}".encode() in environ.split(b"\0"):
            found.append(int(cmdline.parent.name))
    return found


def test_serve_killed_with_sigkill_takes_its_children_with_it_mid_step(serve):
    """kill -9 gives serve no chance to stop its children: they stop themselves (the
    kernel signals them when their parent dies), the worker within seconds although it is
    in the middle of a long shell step (which runs in a session of its own), and the port
    is free again."""
    _wait_for(lambda: " ready." in serve.output(), "no worker", serve.log_path)
    groups = serve.groups
    assert len(groups) == 4
    subprocess.run(
        [sys.executable, "manage.py", "run_task", "Back up cluster", "--param", "seconds=600"],
        cwd=ROOT,
        env=serve.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    _wait_for(lambda: _steps_of(serve.var_dir), "the step did not start", serve.log_path)
    steps = _steps_of(serve.var_dir)

    os.kill(serve.proc.pid, signal.SIGKILL)
    serve.proc.wait(timeout=10)
    _wait_for(
        lambda: _live_processes_in_groups(groups) == [] and not _steps_of(serve.var_dir),
        f"children outlived serve: {_live_processes_in_groups(groups)}, steps {steps}",
        serve.log_path,
        timeout=10,
    )
    assert _healthz(serve.port) is None


def test_serve_clears_the_metrics_of_an_earlier_run_before_starting(tmp_path):
    """Prometheus's multiprocess files of a previous run would add old counts to the new
    run's /metrics: serve empties the folder before its children start."""
    stale = tmp_path / "var" / "metrics" / "counter_12345.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    running = Serve(tmp_path)
    try:
        running.wait_until_up()
        assert not stale.exists()
    finally:
        running.kill_everything()


def test_run_task_in_another_terminal_checks_the_port_serve_runs_on(tmp_path, monkeypatch):
    # The demo's "Check service health" calls this task center: started by `run_task` in a
    # second terminal (no variable set), it must call the port serve listens on, not 8000.
    monkeypatch.setenv("TASKCENTER_DEMO", "true")
    monkeypatch.delenv("TASKCENTER_BASE_URL", raising=False)
    running = Serve(tmp_path, web_processes=1)
    try:
        running.wait_until_up()
        assert running.port != 8000
        recorded = (running.var_dir / "serve-address").read_text().strip()
        assert recorded == f"http://127.0.0.1:{running.port}"
        done = subprocess.run(
            [sys.executable, "manage.py", "run_task", "Check service health", "--wait"]
            + ["--timeout", "90"],
            cwd=ROOT,
            env=running.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESSFUL" in done.stdout.splitlines()[-1], done.stdout
        os.kill(running.proc.pid, signal.SIGINT)
        assert running.proc.wait(timeout=15) == 0, running.output()
        # Stopped, it no longer claims the address.
        assert not (running.var_dir / "serve-address").exists()
    finally:
        running.kill_everything()
