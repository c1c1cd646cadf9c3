"""Set-up shared by the benchmark scripts: a throw-away var dir, the database, Django.

Everything a benchmark writes (secret key, SQLite file, filesystem broker, worker logs,
Celery's control folder) goes under one temporary directory, never under the project's
var/. The environment is prepared before Django is imported, because taskcenter's
settings read it once at import.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/taskcenter_bench"
REDIS_DEFAULT = "redis://127.0.0.1:6379/14"
AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672//"


def database_url(option: str | None, tmp: Path) -> str:
    """--database: a URL, or the shorthands 'sqlite' (fresh temp file) and 'postgres'."""
    if not option or option == "sqlite":
        return f"sqlite:///{tmp / 'bench.sqlite3'}"
    if option in ("postgres", "postgresql"):
        return POSTGRES_DEFAULT
    return option


def describe_database(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {url.removeprefix('sqlite:///')}"
    parts = urlsplit(url)
    return f"PostgreSQL {parts.hostname}:{parts.port or 5432}{parts.path}"


def prepare_environment(*, tmp: Path, database: str, broker: str | None = None) -> None:
    """Point taskcenter's settings at the temp dir, the database and the broker."""
    sys.path[:0] = [str(ROOT), str(BENCH_DIR)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "taskcenter.settings"
    os.environ["TASKCENTER_VAR_DIR"] = str(tmp / "var")
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The benchmarks run the demo's definitions (and seed_demo), in this process and in
    # the workers they start.
    os.environ["TASKCENTER_DEMO"] = "true"
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    # Celery's filesystem transport keeps its exchange table in ./control; keep it in tmp.
    os.chdir(tmp)


def ensure_postgres_database(url: str) -> None:
    """CREATE DATABASE when it does not exist yet (connecting to the 'postgres' database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(url: str, *, only_if_named: str = "") -> None:
    """DROP DATABASE (closing its connections), for a run that must start from nothing.

    only_if_named: a suffix the database's name must end with, so that a benchmark drops
    its own database and never one a --database URL named (the project's)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.endswith(only_if_named):
        return
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database: str) -> None:
    """django.setup() and migrate the chosen database (creating it on PostgreSQL)."""
    if database.startswith(("postgres://", "postgresql://", "pgsql://")):
        ensure_postgres_database(database)
    import django
    from django.core.management import call_command

    django.setup()
    # kombu warns on every connection to "filesystem://localhost/" that it has no hostname.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)


@contextlib.contextmanager
def temporary_setup(args, prefix: str):
    """A temp dir, the environment and a migrated database for a run: (tmp, database URL).

    `args` carries --database and --broker, and --json, made absolute here because the
    run changes directory.
    """
    if getattr(args, "json", None):
        args.json = args.json.resolve()
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        database = database_url(args.database, tmp)
        prepare_environment(tmp=tmp, database=database, broker=args.broker)
        setup_django(database)
        yield tmp, database


def exit_on_sigterm() -> None:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt so `finally` blocks clean up.

    SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU so far of the processes in process group `pgid` (main and children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:  # process group; utime, stime follow
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time every process of the machine has used so far (user, nice, system, irq,
    softirq from /proc/stat): the database server and the broker included."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def command_cpu_seconds(command: str) -> float:
    """CPU time so far of the processes named `command` (e.g. "postgres", "redis-server"),
    with that of their children already ended (a PostgreSQL backend that exited counts in
    its postmaster's)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name != command:
            continue
        fields = text.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def wsgi_get(url: str, **environ) -> int:
    """GET `url` through the project's WSGI application as the web server calls it
    (request_started and request_finished fire, so database connections are kept or
    closed as in production) and return the status; `environ` adds headers
    (HTTP_COOKIE=...) or keys of the WSGI environ."""
    import io

    from taskcenter.wsgi import application

    request = _request_factory().get(url).environ
    request.update({"wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(), **environ})
    status: list[str] = []
    body = application(request, lambda line, headers, exc=None: status.append(line))
    try:
        for _ in body:
            pass
    finally:
        body.close()
    return int(status[0].split()[0])


@functools.cache
def _request_factory():
    from django.test import RequestFactory

    return RequestFactory()


def pid_cpu_seconds(pid: int) -> float:
    """CPU time so far of one process (user and system), e.g. a PostgreSQL backend."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM a subprocess started with start_new_session=True and its children; then KILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain-text table, right-aligned except for the first column."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]

    def line(cells):
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out)

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (p95 of 20 values is the 19th)."""
    import math

    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def free_port(first: int = 18400, last: int = 18499) -> int:
    """A port nobody listens on, from a range (the benchmarks' own, on a shared machine;
    TASKCENTER_BENCH_PORTS=FIRST-LAST gives another)."""
    import socket

    if os.environ.get("TASKCENTER_BENCH_PORTS"):
        first, last = (int(p) for p in os.environ["TASKCENTER_BENCH_PORTS"].split("-"))

    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {first}-{last}")


def _static_root() -> str:
    import tempfile

    return os.environ.get("STATIC_ROOT") or str(
        Path(tempfile.gettempdir()) / "taskcenter-bench-static"
    )


class Server:
    """`manage.py serve` (web server, worker and scheduler) as a benchmark's server.

    The one-command setup is what is measured, whichever web server it runs. The settings
    come from this process's environment (prepare_environment), so the server shares the
    benchmark's database, broker and secret key.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        concurrency: int = 1,
        extra: tuple[str, ...] = (),
        ports: tuple[int, int] = (18400, 18499),
    ):
        import subprocess

        self.port = free_port(*ports)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*argv, "--concurrency", str(concurrency), *extra],
            cwd=tmp,
            # serve runs collectstatic: a folder kept between runs makes it incremental
            # (minutes on a busy machine the first time, a second after).
            env=dict(os.environ, PYTHONUNBUFFERED="1", STATIC_ROOT=_static_root()),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"serve did not answer /healthz; see {self.log_path}")
            time.sleep(0.3)

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # serve stops its children itself
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


# --- A signed-in Chromium (dashboard_render.py, history_views.py) ----------------------------

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def signed_in_chromium(tmp: Path, *, port: int, username: str, password: str):
    """`runserver` on the benchmark's database (this process's environment) and a headless
    Chromium page, 1280x800, signed in to it as `username`: yields (page, base URL).

    runserver rather than `serve`: the browser figures are the page's own work, the same
    with any web server. When something fails, the end of runserver's output is printed.
    """
    import socket
    import time

    from playwright.sync_api import sync_playwright

    env = dict(os.environ, DEBUG="false", PYTHONUNBUFFERED="1")
    log_path = tmp / "runserver.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    argv = [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*argv, "--noreload", "--skip-checks"],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"runserver did not start; see {log_path}") from None
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url("**/tasks/", timeout=90_000)
            yield page, base
            chromium.close()
    except Exception:
        log.flush()
        tail = log_path.read_text(errors="replace")[-3000:]
        print(f"--- runserver output (end) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- What PostgreSQL's backends wait on --------------------------------------------------------


class WaitSampler:
    """Samples pg_stat_activity every `interval` seconds from a connection of its own, and
    adds up, per wait event, how long the benchmark database's active backends spent in it
    (samples x interval): PostgreSQL's own view of lock waits, I/O and client waits.

    A sample costs the database a little CPU (about a tenth of a core at 2 ms), so the
    runs that measure wall time leave it off (--waits turns it on)."""

    QUERY = (
        "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''),"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
        " FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state = 'active'"
    )

    def __init__(self, url: str, interval: float = 0.002):
        import psycopg

        self.interval = interval
        self._conn = psycopg.connect(url, autocommit=True)
        self._stop = threading.Event()
        self.seconds: dict[tuple[str, str, str], float] = defaultdict(float)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        with self._conn.cursor() as cursor:
            while not self._stop.wait(self.interval):
                cursor.execute(self.QUERY)
                for kind, event, query in cursor.fetchall():
                    self.seconds[(kind, event, query)] += self.interval

    def lock_seconds(self) -> float:
        return sum(v for (kind, _, _), v in self.seconds.items() if kind == "Lock")

    def report(self, per: int | None = None, unit: str = "subtask", queries: int = 0) -> None:
        """Time per wait event (and per `unit` in lock waits when `per` is given); with
        `queries`, that many (event, statement) pairs that took the most."""
        by_event: dict[str, float] = defaultdict(float)
        for (kind, event, _), value in self.seconds.items():
            by_event[f"{kind}:{event}" if event else kind] += value
        total = sum(by_event.values())
        line = f"    backends active {total:.3f} s in all; lock waits {self.lock_seconds():.3f} s"
        if per:
            line += f" = {1000 * self.lock_seconds() / per:.3f} ms per {unit}"
        print(line)
        for event, value in sorted(by_event.items(), key=lambda kv: -kv[1])[:6]:
            print(f"      {value:7.3f} s  {event}")
        locks = sorted(
            ((v, event, query) for (kind, event, query), v in self.seconds.items()
             if kind == "Lock"), reverse=True,
        )[:3]  # fmt: skip
        for value, event, query in locks:
            print(f"      lock {event:<14} {value:7.3f} s  {query}")
        by_query = sorted(((v, k) for k, v in self.seconds.items()), reverse=True)[:queries]
        for value, (kind, event, query) in by_query:
            print(f"      {value:7.3f} s  {kind}:{event or '-':<16} {query}")
