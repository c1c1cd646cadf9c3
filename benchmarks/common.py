"""Set-up shared by the benchmark scripts: a throw-away var dir, the database, Django.

Everything a benchmark writes (secret key, SQLite file, filesystem broker, worker logs,
Celery's control folder) goes under one temporary directory, never under the project's
var/. The environment is prepared before Django is imported, because taskcenter's
settings read it once at import.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import sys
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
