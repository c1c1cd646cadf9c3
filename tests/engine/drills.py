"""A whole installation in processes, for the failure drills: its own PostgreSQL (initdb +
pg_ctl in a temporary folder) and its own redis-server, the web server, the worker and
the scheduler, each a process that a drill can kill, stop and start again.

Everything listens on 127.0.0.1 on ports 18200-18299. The drills watch the database with
their own short connections, so that a restart of PostgreSQL does not break them.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from tests.conftest import FAST_ENGINE, ROOT, end_process_group, wait_for

PORTS = range(18200, 18300)
PASSWORD = "Dr1ll-password!long"


# Ports in use by the drill runs of this machine, one "pid port" a line: test runs side by
# side (tests/run.sh's stages, pytest-xdist) each have their installation, and a drill that
# has stopped its PostgreSQL or Redis leaves that port unbound, yet still its own.
PORTS_HELD = Path(tempfile.gettempdir()) / "taskcenter-drill-ports"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(taken: set[int]) -> int:
    with open(PORTS_HELD.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        held = [
            (int(pid), int(port))
            for pid, port in (
                line.split() for line in PORTS_HELD.read_text().splitlines() if line.strip()
            )
            if _alive(int(pid))
        ] if PORTS_HELD.exists() else []  # fmt: skip
        for port in PORTS:
            if port in taken or any(p == port and pid != os.getpid() for pid, p in held):
                continue
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            taken.add(port)
            held.append((os.getpid(), port))
            PORTS_HELD.write_text("".join(f"{pid} {p}\n" for pid, p in held))
            return port
    raise RuntimeError("no free port in 18200-18299")


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found[-1]


class Postgres:
    """A PostgreSQL cluster of our own. initdb refuses root, so as root it runs as the
    `postgres` system user (the data folder is handed to it)."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.data = folder / "pgdata"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self._run(postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self._run(postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  "postgres", "tc_faults_drill")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "postgres.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/tc_faults_drill"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)


class Redis:
    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(self.port), timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/11"


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """One taskcenter process (manage.py command or celery) in its own process group."""

    def __init__(self, name: str, args: list[str], env: dict, folder: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = folder / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash or the OOM killer would."""
        assert self.proc is not None
        end_process_group(self.proc, signal.SIGKILL)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            end_process_group(self.proc, signal.SIGTERM, grace=10)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Installation:
    """PostgreSQL, Redis, web, worker and scheduler of one drill run."""

    def __init__(self, folder: Path):
        self.folder = folder
        taken: set[int] = set()
        # Not under pytest's folder: the postgres user cannot enter root's private /tmp dirs.
        self.postgres = Postgres(Path(tempfile.mkdtemp(prefix="tc-faults-pg-")), free_port(taken))
        self.redis = Redis(folder / "redis", free_port(taken))
        self.web_port = free_port(taken)
        self.env = {
            **os.environ,
            **FAST_ENGINE,
            "DATABASE_URL": self.postgres.url(),
            "CELERY_BROKER_URL": self.redis.url(),
            "TASKCENTER_VAR_DIR": str(folder / "var"),
            "PROMETHEUS_MULTIPROC_DIR": "",
            "TASKCENTER_DEMO": "true",
            "TASKCENTER_QUEUE": "drill",
            "TASKCENTER_REAPER_INTERVAL": "1",
            # A fan-out sends two messages, as many as the worker has processes: the rest of
            # it runs on their turns, which a drill must not lose.
            "TASKCENTER_FANOUT_MESSAGES": "2",
            "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, "manage.py"]
        # The production web server (what serve runs), with its kept database connections.
        self.web = Process(
            "web",
            [sys.executable, "-m", "taskcenter.webserver", "--listen",
             f"127.0.0.1:{self.web_port}", "--threads", "4"],
            self.env, folder,
        )  # fmt: skip
        self.scheduler = Process("scheduler", [*manage, "run_scheduler"], self.env, folder)
        self.worker = Process(
            "worker",
            [sys.executable, "-m", "celery", "-A", "taskcenter", "worker", "-l", "info", "-c",
             "2", "-n", "drill@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            self.env, folder,
        )  # fmt: skip

    def up(self) -> None:
        self.postgres.init()
        self.redis.start()
        self.manage("migrate", "-v", "0")
        self.manage("create_user", "operator", "--role", "TASK_MANAGER", "--password-env",
                    "DRILL_PASSWORD", env={"DRILL_PASSWORD": PASSWORD})  # fmt: skip
        for process in (self.web, self.worker, self.scheduler):
            process.start()
        wait_for(lambda: b" ready." in self.worker.log_path.read_bytes(), timeout=60)
        wait_for(lambda: _answers(self.web_port), timeout=60)

    def down(self) -> None:
        for process in (self.web, self.worker, self.scheduler):
            process.stop()
        self.redis.stop()
        try:
            self.postgres.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.postgres.folder, ignore_errors=True)

    def manage(self, *args: str, env: dict | None = None, check: bool = True):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=120, check=check,
        )  # fmt: skip

    def run_task(self, definition: str, **params) -> subprocess.CompletedProcess:
        args = ["run_task", definition]
        for key, value in params.items():
            args += ["--param", f"{key}={value}"]
        return self.manage(*args, check=False)

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.web_port}", auth=("operator", PASSWORD), timeout=30
        )

    def browser(self) -> httpx.Client:
        """A client signed in through the sign-in page, as a person with a browser."""
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.web_port}", timeout=30)
        client.get("/login/")
        signed_in = client.post(
            "/login/",
            data={"username": "operator", "password": PASSWORD,
                  "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": f"http://127.0.0.1:{self.web_port}/login/"},
        )  # fmt: skip
        assert signed_in.status_code == 302, signed_in.text[:500]
        return client

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows from the drill's database; an empty list while it does not answer."""
        try:
            with psycopg.connect(self.postgres.url(), connect_timeout=2, autocommit=True) as db:
                return db.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            return []

    def task_status(self, task_id: int) -> str | None:
        rows = self.query("SELECT status FROM tasks_taskinstance WHERE id = %s", task_id)
        return rows[0][0] if rows else None

    def subtasks(self, task_id: int) -> list[tuple[int, str, str]]:
        return self.query(
            "SELECT id, name, status FROM tasks_subtaskinstance WHERE task_id = %s ORDER BY id",
            task_id,
        )

    def wait_status(self, task_id: int, statuses: set[str], timeout: float) -> float:
        """Seconds until the task reaches one of `statuses` (fails after `timeout`)."""
        started = time.monotonic()
        wait_for(lambda: self.task_status(task_id) in statuses, timeout=timeout, interval=0.2)
        return time.monotonic() - started


def started_task_id(result: subprocess.CompletedProcess) -> int:
    assert result.stdout.strip(), (result.returncode, result.stdout, result.stderr)
    return int(result.stdout.split()[0])


def report(drill: str, **seconds: float) -> None:
    figures = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    print(f"\n[drill] {drill}: {figures}")
