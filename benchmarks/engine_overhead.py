"""Engine overhead: taskcenter against plain Celery on the same broker and worker settings.

What is measured (wall time, median of --repeat runs, after one unmeasured warm-up run):

* fan-out: 1 -> W -> 1 no-op subtasks (definition "Benchmark fan-out", width=W, default 1000)
* chain:   L no-op subtasks in a row   (definition "Benchmark chain", length=L, default 100)

taskcenter: from services.task_start(...) until the task row says SUCCESSFUL (the database
is polled every 20 ms), with a real `celery -A taskcenter worker` subprocess running.
plain Celery: the same shapes as a canvas, noop | chord(group(W x noop), noop) and
chain(L x noop), from building the canvas until the last result is ready (polled every
20 ms), run by a `celery -A plain_celery_app worker` subprocess. Both workers use prefork
with the same --concurrency, the same broker, acks_late and prefetch multiplier; they run
one after the other, never at the same time, and the queue is purged before each run.
Plain Celery needs a result backend for chords: Redis when reachable, else file://.

Target: taskcenter seconds / plain Celery seconds <= 2.0 for each shape (aim: 1.5).

--profile also runs each shape inline in this process (no broker, no worker) and prints
the database queries and time per engine step, to show where taskcenter's time goes.

Usage, from the project root:
    .venv/bin/python benchmarks/engine_overhead.py [--broker redis|filesystem|amqp|URL]
        [--database sqlite|postgres|URL] [--width 1000] [--length 100]
        [--concurrency 4] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import common

POLL_INTERVAL = 0.02
TARGET_RATIO, AIM_RATIO = 2.0, 1.5


class BenchError(Exception):
    pass


_created_tasks: list[int] = []  # deleted at the end from a database that is not a temp file


@dataclass
class Shape:
    kind: str  # "fan-out" or "chain"
    size: int  # width or length

    @property
    def label(self) -> str:
        return f"fan-out 1->{self.size}->1" if self.kind == "fan-out" else f"chain {self.size}"

    @property
    def subtasks(self) -> int:
        return self.size + 2 if self.kind == "fan-out" else self.size


# --- Broker and result backend -----------------------------------------------------------------


def redis_answers(url: str = common.REDIS_DEFAULT) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def broker_url(option: str | None, tmp: Path) -> str:
    """--broker: a URL, or 'redis', 'filesystem', 'amqp'; default redis if it answers."""
    if option is None:
        option = "redis" if redis_answers() else "filesystem"
    if option == "redis":
        return common.REDIS_DEFAULT
    if option == "filesystem":
        return f"filesystem://{tmp / 'broker'}"
    if option in ("amqp", "rabbitmq"):
        return common.AMQP_DEFAULT
    return option


def result_backend(option: str | None, broker: str, tmp: Path) -> str:
    if option:
        return option
    if broker.startswith(("redis://", "rediss://")):
        return broker
    if redis_answers():
        return common.REDIS_DEFAULT
    return f"file://{tmp / 'results'}"


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# --- Worker subprocesses -----------------------------------------------------------------------

_live_workers: list[Worker] = []


class Worker:
    """A `celery worker` subprocess in its own process group, stopped on exit."""

    def __init__(self, label: str, app: str, tmp: Path, concurrency: int, queue: str | None,
                 loglevel: str, extra_env: dict[str, str] | None = None):
        self.label, self.app, self.tmp = label, app, tmp
        self.concurrency, self.queue, self.loglevel = concurrency, queue, loglevel
        self.extra_env = extra_env or {}
        self.log_path = tmp / f"worker-{label}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(common.ROOT), str(common.BENCH_DIR)])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        command = [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "-P", "prefork", "-c", str(self.concurrency), "-l", self.loglevel,
            "-n", f"bench-{self.label}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if self.queue:
            command += ["-Q", self.queue]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, cwd=self.tmp, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        _live_workers.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        self.proc = None
        self._log.close()
        if self in _live_workers:
            _live_workers.remove(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@atexit.register
def _stop_workers() -> None:
    for worker in list(_live_workers):
        worker.stop()


def wait_until(predicate, worker: Worker, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if not worker.alive():
            raise BenchError(f"the {worker.label} worker died while {what}:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} took more than {timeout:g} s:\n{worker.log_tail()}")
        time.sleep(POLL_INTERVAL)


def purge(app, queue: str) -> int:
    """Drop messages left in the queue (a missing queue counts as empty)."""
    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_purge(queue) or 0
    except Exception:  # noqa: BLE001 - e.g. amqp NOT_FOUND for a queue not declared yet
        return 0


# --- One run of each system --------------------------------------------------------------------


def run_plain(shape: Shape, worker: Worker, timeout: float) -> float:
    from celery import chain, chord
    from plain_celery_app import QUEUE, app, noop

    purge(app, QUEUE)
    started = time.perf_counter()
    if shape.kind == "fan-out":
        canvas = noop.si() | chord([noop.si() for _ in range(shape.size)], noop.si())
    else:
        canvas = chain(noop.si() for _ in range(shape.size))
    result = canvas.apply_async()
    wait_until(result.ready, worker, timeout, f"plain Celery {shape.label}")
    elapsed = time.perf_counter() - started
    if not result.successful():
        raise BenchError(f"plain Celery {shape.label} ended {result.state}")
    return elapsed


def run_taskcenter(shape: Shape, worker: Worker, timeout: float) -> float:
    from taskcenter.celery import app
    from taskcenter.tasks import services
    from taskcenter.tasks.models import TaskInstance, TaskStatus

    purge(app, "celery")
    if shape.kind == "fan-out":
        name, params = "Benchmark fan-out", {"width": shape.size}
    else:
        name, params = "Benchmark chain", {"length": shape.size}
    started = time.perf_counter()
    task = services.task_start(definition_name=name, parameters=params)
    _created_tasks.append(task.pk)
    rows = TaskInstance.objects.filter(pk=task.pk).values_list("status", flat=True)
    done = (TaskStatus.SUCCESSFUL, TaskStatus.FAILED)
    wait_until(lambda: rows.get() in done, worker, timeout, f"taskcenter {shape.label}")
    elapsed = time.perf_counter() - started
    if rows.get() != TaskStatus.SUCCESSFUL:
        raise BenchError(f"taskcenter task {task.pk} ({shape.label}) ended {rows.get()}")
    return elapsed


def measure(system: str, run, shapes: list[Shape], worker: Worker, args) -> dict[str, list]:
    """One warm-up run of small shapes (also waits for the worker to be up), then the runs."""
    for warm in (Shape("fan-out", 2 * args.concurrency), Shape("chain", 5)):
        run(warm, worker, timeout=120)
    times: dict[str, list[float]] = {}
    for shape in shapes:
        times[shape.label] = []
        for index in range(args.repeat):
            elapsed = run(shape, worker, args.timeout)
            times[shape.label].append(elapsed)
            print(f"  {system:<12} {shape.label:<20} run {index + 1}: {elapsed:7.3f} s", flush=True)
    return times


# --- Inline profile: where taskcenter's time goes ----------------------------------------------


@dataclass
class Phase:
    calls: int = 0
    queries: int = 0
    seconds: float = 0.0
    db_seconds: float = 0.0


@dataclass
class Profile:
    phases: dict[str, Phase] = field(default_factory=lambda: defaultdict(Phase))
    statements: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _statement_shape(sql: str) -> str:
    sql = re.sub(r"IN \([^)]*\)", "IN (...)", sql)
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r'"[a-z_]+"\.', "", sql)
    return re.sub(r"SELECT .*? FROM", "SELECT ... FROM", sql, count=1)


def profile_inline(shape: Shape) -> tuple[Profile, float]:
    """Run every attempt of one task in this process, counting queries per engine step.

    Like the Celery worker (whose Django fixup closes the connections after every task),
    each attempt starts on a new database connection; that cost is the 'connect' step.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from taskcenter.engine import dispatch, runner
    from taskcenter.tasks import selectors, services
    from taskcenter.tasks.models import TaskInstance, TaskStatus

    profile = Profile()
    pending: deque[tuple[int, int]] = deque()

    def measured(name, func):
        def wrapper(*args, **kwargs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    phase = profile.phases[name]
                    phase.calls += 1
                    phase.seconds += time.perf_counter() - started
                    phase.queries += len(captured.captured_queries)
                    for query in captured.captured_queries:
                        phase.db_seconds += float(query["time"])
                        profile.statements[f"{name}: {_statement_shape(query['sql'])}"].append(
                            float(query["time"])
                        )

        return wrapper

    patched = {
        (dispatch, "_send"): lambda subtask_id, attempt: pending.append((subtask_id, attempt)),
        (services, "attempt_claim"): measured("attempt_claim", services.attempt_claim),
        (services, "attempt_finish"): measured("attempt_finish", services.attempt_finish),
        (selectors, "task_parameters"): measured("task_parameters", selectors.task_parameters),
    }
    originals = {key: getattr(*key) for key in patched}
    for (module, name), value in patched.items():
        setattr(module, name, value)
    execute = measured("execute_attempt (all)", runner.execute_attempt)
    try:
        name, params = (
            ("Benchmark fan-out", {"width": shape.size})
            if shape.kind == "fan-out"
            else ("Benchmark chain", {"length": shape.size})
        )
        started = time.perf_counter()
        task = measured("task_start", services.task_start)(definition_name=name, parameters=params)
        _created_tasks.append(task.pk)
        while pending:
            subtask_id, attempt = pending.popleft()
            connection.close()
            t0 = time.perf_counter()
            connection.ensure_connection()
            phase = profile.phases["connect"]
            phase.calls += 1
            phase.seconds += time.perf_counter() - t0
            execute(subtask_id=subtask_id, attempt=attempt)
        total = time.perf_counter() - started
    finally:
        for (module, name), value in originals.items():
            setattr(module, name, value)
    status = TaskInstance.objects.filter(pk=task.pk).values_list("status", flat=True).get()
    if status != TaskStatus.SUCCESSFUL:
        raise BenchError(f"inline run of {shape.label} ended {status}")
    return profile, total


def print_profile(shape: Shape, profile: Profile, total: float) -> None:
    print(f"\nInline profile of {shape.label} ({shape.subtasks} attempts, one process, "
          f"no broker): {total:.3f} s, {1000 * total / shape.subtasks:.2f} ms per subtask")  # fmt: skip
    phases = profile.phases
    every = phases["execute_attempt (all)"]
    inner = ("attempt_claim", "task_parameters", "attempt_finish")
    rest = Phase(
        calls=every.calls,
        queries=every.queries - sum(phases[n].queries for n in inner),
        seconds=every.seconds - sum(phases[n].seconds for n in inner),
        db_seconds=every.db_seconds - sum(phases[n].db_seconds for n in inner),
    )
    rows = []
    order = ["task_start", "connect", *inner]
    for name, phase in [*[(n, phases[n]) for n in order], ("rest of execute_attempt", rest)]:
        per = max(phase.calls, 1)
        rows.append([
            name, str(phase.calls), f"{phase.queries / per:.1f}", f"{1000 * phase.seconds / per:.3f}",
            f"{1000 * phase.db_seconds / per:.3f}", f"{phase.seconds:.3f}",
        ])  # fmt: skip
    common.print_table(
        ["step", "calls", "queries/call", "ms/call", "db ms/call", "total s"], rows
    )
    heaviest = sorted(profile.statements.items(), key=lambda kv: -sum(kv[1]))[:8]
    print("Heaviest statements (total over the run):")
    for statement, times in heaviest:
        print(f"  {sum(times):7.3f} s  {len(times):6d} x  {1000 * sum(times) / len(times):6.3f} ms"
              f"  {statement[:150]}")  # fmt: skip


# --- Main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", help="redis | filesystem | amqp | a broker URL")
    parser.add_argument("--database", help="sqlite (temp file, default) | postgres | a URL")
    parser.add_argument("--result-backend", help="plain Celery's result backend URL")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--loglevel", default="warning", help="workers' -l (info logs tasks)")
    parser.add_argument("--only", choices=["plain", "taskcenter"], help="run one system")
    parser.add_argument("--profile", action="store_true", help="also profile inline")
    parser.add_argument("--profile-only", action="store_true", help="only the inline profile")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()

    common.exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="taskcenter-bench-"))
    database = common.database_url(args.database, tmp)
    broker = broker_url(args.broker, tmp)
    common.prepare_environment(tmp=tmp, database=database, broker=broker)
    common.setup_django(database)

    import celery
    from django.conf import settings

    backend = result_backend(args.result_backend, broker, tmp)
    os.environ["BENCH_PLAIN_CONFIG"] = json.dumps(
        {
            "broker_url": settings.CELERY_BROKER_URL,
            "broker_transport_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "worker_prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
            "result_backend": backend,
        }
    )
    shapes = [Shape("fan-out", args.width), Shape("chain", args.length)]
    print(
        f"engine_overhead on {socket.gethostname()} ({os.cpu_count()} CPUs), celery "
        f"{celery.__version__}\n  broker:   {safe_url(broker)}\n"
        f"  database: {common.describe_database(database)}\n"
        f"  workers:  prefork -c {args.concurrency}, prefetch x"
        f"{settings.CELERY_WORKER_PREFETCH_MULTIPLIER}, acks_late, -l {args.loglevel}\n"
        f"  plain Celery result backend: {safe_url(backend)}\n"
        f"  median of {args.repeat} run(s) after one warm-up; tmp {tmp}",
        flush=True,
    )
    results: dict[str, dict[str, list[float]]] = {}
    try:
        if not args.profile_only:
            systems = [
                ("plain", "plain_celery_app", "bench_plain", run_plain),
                ("taskcenter", "taskcenter", None, run_taskcenter),
            ]
            for system, app, queue, run in systems:
                if args.only and args.only != system:
                    continue
                with Worker(system, app, tmp, args.concurrency, queue, args.loglevel) as worker:
                    results[system] = measure(system, run, shapes, worker, args)
            report(shapes, results)
        if args.profile or args.profile_only:
            for shape in shapes:
                print_profile(shape, *profile_inline(shape))
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; workers stopped", file=sys.stderr)
        return 130
    finally:
        _stop_workers()
        cleanup_database(database)
        if args.keep_temp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(shapes: list[Shape], results: dict[str, dict[str, list[float]]]) -> None:
    plain, tc = results.get("plain", {}), results.get("taskcenter", {})
    rows = []
    verdicts = []
    for shape in shapes:
        p = common.median(plain[shape.label]) if shape.label in plain else None
        t = common.median(tc[shape.label]) if shape.label in tc else None
        ratio = t / p if p and t else None
        row = [
            shape.label,
            str(shape.subtasks),
            f"{p:.3f}" if p else "-",
            f"{t:.3f}" if t else "-",
            f"{ratio:.2f}" if ratio else "-",
            f"{1000 * p / shape.subtasks:.2f}" if p else "-",
            f"{1000 * t / shape.subtasks:.2f}" if t else "-",
            f"{1000 * (t - p) / shape.subtasks:.2f}" if p and t else "-",
        ]
        if ratio:
            aim = "aim 1.5 met" if ratio <= AIM_RATIO else "aim 1.5 not met"
            row.append(f"{common.verdict(ratio <= TARGET_RATIO)} ({aim})")
            verdicts.append(ratio <= TARGET_RATIO)
        else:
            row.append("-")
        rows.append(row)
    print()
    common.print_table(
        [
            "shape", "subtasks", "plain celery s", "taskcenter s", "ratio",
            "plain ms/subtask", "taskcenter ms/subtask", "overhead ms/subtask",
            f"target ratio <= {TARGET_RATIO}",
        ],
        rows,
    )  # fmt: skip
    if verdicts:
        print(f"\nOverall: {common.verdict(all(verdicts))}")


def cleanup_database(database: str) -> None:
    """Delete the tasks this run created from a database that outlives it (PostgreSQL)."""
    if database.startswith("sqlite") or not _created_tasks:
        return
    try:
        from taskcenter.tasks.models import TaskInstance

        TaskInstance.objects.filter(pk__in=_created_tasks).delete()
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
        print(f"(could not delete the benchmark tasks: {exc})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
