"""Engine overhead: taskcenter against plain Celery on the same broker and worker settings.

What is measured (wall time, median of --repeat runs, after one unmeasured warm-up run):

* fan-out: 1 -> W -> 1 no-op subtasks (definition "Benchmark fan-out", width=W, default 1000)
* chain:   L no-op subtasks in a row   (definition "Benchmark chain", length=L, default 100)

taskcenter: from verbs.task_start(...) until the task row says SUCCESSFUL (the database
is polled every 5 ms), with a real `celery -A taskcenter worker` subprocess running.
plain Celery: the same shapes as a canvas, noop | chord(group(W x noop), noop) and
chain(L x noop), from building the canvas until the last result is ready (polled every
5 ms), run by a `celery -A plain_celery_app worker` subprocess. Both workers use prefork
with the same --concurrency, the same broker, acks_late and prefetch multiplier; they run
one after the other, never at the same time, and the queue is purged before each run.
Plain Celery needs a result backend for chords: Redis when reachable, else file://.
Each run also records the CPU time of the worker processes and of this process (not of
the database server or broker): less sensitive than wall time to other load on the box.

Target: taskcenter seconds / plain Celery seconds <= 1.25 for the fan-out, <= 1.0 for the
chain.

Each run also records the machine's CPU time (/proc/stat: every process, the database
server and the broker included), printed per subtask: on one machine, what a subtask
costs the whole system.

--workers N starts N worker nodes, each on a host name of its own (-n ...@bench-host-K),
each with --concurrency processes: the scale-out runs (for example --workers 4
--concurrency 1 --width 10000). --waits samples pg_stat_activity every 2 ms during the
taskcenter runs and prints what the database's backends waited on, the lock waits per
subtask and the statements that waited (PostgreSQL's own view of the task-row lock).

--services-core C pins PostgreSQL, Redis and RabbitMQ to CPU C and this script and the
workers to the other CPUs (restored at the end; needs root): the database and the broker
then have a core of their own, as on a deployment where they run on machines of their own,
and the workers' core is what both systems are timed on.

--profile (or --profile-only) also runs each shape inline in this process (no broker, no
worker) and prints the statements, wall, CPU and database time per engine step, the
heaviest statements, and PostgreSQL's own counters for the engine's tables (rows
updated and how many of them HOT, heap and index blocks touched per attempt): where
taskcenter's time goes, in figures that other load on the machine does not move.

On the filesystem broker both systems use taskcenter's atomic transport
(taskcenter/engine/fs_transport.py); kombu's own can hand a consumer a half-written file.
A worker that dies anyway is restarted and the run repeated (and counted).

Usage, from the project root:
    .venv/bin/python benchmarks/engine_overhead.py [--broker redis|filesystem|amqp|URL]
        [--database sqlite|postgres|URL] [--width 1000] [--length 100]
        [--concurrency 4] [--workers 1] [--repeat 3] [--waits] [--timeline]
        [--services-core 1] [--profile | --profile-only]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
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

# How often the end is looked for (the task row, or the chord's result): a run's time is
# known to within this. 20 ms hid a tenth of a chain of 100.
POLL_INTERVAL = 0.005
TASKCENTER_QUEUE = "bench_taskcenter"
TARGET_RATIO = {"fan-out": 1.25, "chain": 1.0}  # by Shape.kind


class BenchError(Exception):
    pass


class WorkerDied(BenchError):
    pass


_created_tasks: list[int] = []  # deleted at the end from a database that is not a temp file
crashes: dict[str, int] = {}  # worker deaths per system, reported with the results


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

    def __init__(
        self,
        label: str,
        app: str,
        tmp: Path,
        concurrency: int,
        queue: str | None,
        loglevel: str,
        extra_env: dict[str, str | None] | None = None,
        host: str = "%h",
    ):
        self.label, self.app, self.tmp, self.host = label, app, tmp, host
        self.concurrency, self.queue, self.loglevel = concurrency, queue, loglevel
        self.extra_env = extra_env or {}
        self.log_path = tmp / f"worker-{label}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        self.start()
        return self

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(common.ROOT), str(common.BENCH_DIR)])
        env["PYTHONUNBUFFERED"] = "1"
        for name, value in self.extra_env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        command = [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "-P", "prefork", "-c", str(self.concurrency), "-l", self.loglevel,
            "-n", f"bench-{self.label}-{os.getpid()}@{self.host}",
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

    def __exit__(self, *exc) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker's processes (main and pool children) so far."""
        if self.proc is None:
            return 0.0
        return common.group_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        common.stop_group(self.proc)
        self.proc = None
        self._log.close()
        if self in _live_workers:
            _live_workers.remove(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Workers:
    """Several worker nodes, each on a host name of its own (--workers N): used like one."""

    def __init__(self, label: str, nodes: int, *args, **kwargs):
        self.label = label
        self.nodes = [
            Worker(f"{label}-{index}" if nodes > 1 else label, *args, **kwargs,
                   host=f"bench-host-{index}" if nodes > 1 else "%h")
            for index in range(1, nodes + 1)
        ]  # fmt: skip

    def __enter__(self) -> Workers:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cpu_seconds(self) -> float:
        return sum(node.cpu_seconds() for node in self.nodes)

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(node.log_tail(lines) for node in self.nodes if not node.alive()) or (
            self.nodes[0].log_tail(lines)
        )


@atexit.register
def _stop_workers() -> None:
    for worker in list(_live_workers):
        worker.stop()


def wait_until(predicate, worker: Workers, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if not worker.alive():
            raise WorkerDied(f"the {worker.label} worker died while {what}:\n{worker.log_tail()}")
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


def run_plain(shape: Shape, worker: Workers, timeout: float) -> float:
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


def run_taskcenter(shape: Shape, worker: Workers, timeout: float) -> float:
    from taskcenter.celery import app
    from taskcenter.tasks import verbs
    from taskcenter.tasks.models import TaskInstance, TaskStatus

    purge(app, app.conf.task_default_queue)
    if shape.kind == "fan-out":
        name, params = "Benchmark fan-out", {"width": shape.size}
    else:
        name, params = "Benchmark chain", {"length": shape.size}
    started = time.perf_counter()
    task = verbs.task_start(definition_name=name, parameters=params)
    _created_tasks.append(task.pk)
    rows = TaskInstance.objects.filter(pk=task.pk).values_list("status", flat=True)
    done = (TaskStatus.SUCCESSFUL, TaskStatus.FAILED)
    wait_until(lambda: rows.get() in done, worker, timeout, f"taskcenter {shape.label}")
    elapsed = time.perf_counter() - started
    if rows.get() != TaskStatus.SUCCESSFUL:
        raise BenchError(f"taskcenter task {task.pk} ({shape.label}) ended {rows.get()}")
    if _print_timeline:
        print_timeline(task.pk, elapsed)
    return elapsed


_print_timeline = False  # --timeline


def print_timeline(task_id: int, elapsed: float) -> None:
    """Where the wall time of one run went, from the rows' own times (ms after the task
    row was created): the start written, the first subtask's run, its downstreams' runs
    (first start, last end), the last subtask's run, the task's end."""
    from django.db.models import Max, Min

    from taskcenter.tasks.models import SubtaskInstance, TaskInstance

    task = TaskInstance.objects.get(pk=task_id)
    subtasks = SubtaskInstance.objects.filter(task_id=task_id).order_by("id")
    first, last = subtasks.first(), subtasks.last()
    middle = subtasks.exclude(pk__in=[first.pk, last.pk]).aggregate(
        start=Min("start_time"), end=Max("finish_time")
    )

    def ms(moment) -> str:
        return f"{1000 * (moment - task.create_time).total_seconds():7.1f}" if moment else "      -"

    print(f"    timeline (ms): first subtask {ms(first.start_time)} -> {ms(first.finish_time)}"
          f" | others {ms(middle['start'])} -> {ms(middle['end'])}"
          f" | last {ms(last.start_time)} -> {ms(last.finish_time)}"
          f" | task ended {ms(task.finish_time)} | seen {1000 * elapsed:7.1f}")  # fmt: skip


def measure(system: str, run, shapes: list[Shape], worker: Workers, args) -> dict[str, dict]:
    """--repeat runs of each shape, after a warm-up that also waits for the worker to be up.

    Each run records its wall time and the CPU time the worker processes and this process
    used (not the database server's or the broker's), which is less sensitive to other
    load on the machine. A worker that dies (kombu's filesystem transport can crash it)
    is restarted, warmed up again, and the run repeated; crashes are counted and reported.
    """
    warm_up = [Shape("fan-out", 2 * args.concurrency), Shape("chain", 5)]
    cold = True

    def run_with_restarts(shape: Shape) -> tuple[float, float]:
        nonlocal cold
        while True:
            try:
                if cold:
                    for warm in warm_up:
                        run(warm, worker, timeout=120)
                    cold = False
                cpu = worker.cpu_seconds() + time.process_time()
                machine = common.machine_cpu_seconds()
                database = common.command_cpu_seconds("postgres")
                if (
                    args.waits
                    and system == "taskcenter"
                    and args.database_url.startswith("postgres")
                ):
                    with common.WaitSampler(args.database_url) as sampler:
                        elapsed = run(shape, worker, args.timeout)
                    sampler.report(shape.subtasks)
                else:
                    elapsed = run(shape, worker, args.timeout)
                machine = common.machine_cpu_seconds() - machine
                measured["machine"].setdefault(shape.label, []).append(machine)
                database = common.command_cpu_seconds("postgres") - database
                measured["database"].setdefault(shape.label, []).append(database)
                return elapsed, worker.cpu_seconds() + time.process_time() - cpu
            except WorkerDied as died:
                crashes[system] = crashes.get(system, 0) + 1
                last = str(died).strip().splitlines()[-1]
                print(f"  {system} worker died ({last}); restarting it, run repeated", flush=True)
                if crashes[system] > args.max_crashes:
                    raise
                worker.stop()
                worker.start()
                cold = True

    measured: dict[str, dict[str, list[float]]] = {
        "wall": {},
        "cpu": {},
        "machine": {},
        "database": {},
    }
    for shape in shapes:
        walls = measured["wall"][shape.label] = []
        cpus = measured["cpu"][shape.label] = []
        for index in range(args.repeat):
            elapsed, cpu = run_with_restarts(shape)
            walls.append(elapsed)
            cpus.append(cpu)
            machine = measured["machine"][shape.label][-1]
            database = measured["database"][shape.label][-1]
            print(f"  {system:<12} {shape.label:<20} run {index + 1}: {elapsed:7.3f} s "
                  f"(CPU {cpu:6.2f} s, machine CPU {machine:6.2f} s, PostgreSQL CPU "
                  f"{database:5.2f} s, load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    return measured


# --- Inline profile: where taskcenter's time goes ----------------------------------------------


@dataclass
class Phase:
    calls: int = 0
    seconds: float = 0.0  # inclusive
    child_seconds: float = 0.0  # spent in the measured steps it called
    cpu: float = 0.0  # this process's CPU time, inclusive (robust to other load on SQLite)
    child_cpu: float = 0.0
    queries: int = 0  # its own, not its children's
    db_seconds: float = 0.0  # its own statements and commits


@dataclass
class Profile:
    phases: dict[str, Phase] = field(default_factory=lambda: defaultdict(Phase))
    statements: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    stack: list[str] = field(default_factory=list)
    cpu_total: float = 0.0
    # CPU of the PostgreSQL backend serving the run (None on SQLite or a remote server):
    # the database's side of each attempt, which other load on the machine does not move.
    backend_cpu: float | None = None
    work_before: dict = field(default_factory=dict)
    work_after: dict = field(default_factory=dict)

    def record_statement(self, sql: str, seconds: float) -> None:
        name = self.stack[-1] if self.stack else "(outside)"
        phase = self.phases[name]
        phase.queries += 1
        phase.db_seconds += seconds
        self.statements[(name, sql)].append(seconds)  # shaped when printed: keep this cheap

    def measured(self, name: str, func):
        """Wrap func so its calls, time and statements are counted under `name`."""

        def wrapper(*args, **kwargs):
            self.stack.append(name)
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                self.stack.pop()
                phase = self.phases[name]
                phase.calls += 1
                phase.seconds += elapsed
                phase.cpu += cpu
                if self.stack:
                    self.phases[self.stack[-1]].child_seconds += elapsed
                    self.phases[self.stack[-1]].child_cpu += cpu

        return wrapper


def _statement_shape(sql: str) -> str:
    sql = re.sub(r"IN \((%s(, )?)+\)", "IN (...)", sql)
    sql = re.sub(r'"tasks_[a-z]+"\."([a-z_]+)"', r"\1", sql)
    return re.sub(r"^SELECT .*? FROM", "SELECT ... FROM", sql)


class override_settings_in_worker:
    """Make engine.worker take this process for a worker while the block runs."""

    def __enter__(self):
        from taskcenter.engine import worker

        self._was, worker._in_worker = worker._in_worker, True

    def __exit__(self, *exc):
        from taskcenter.engine import worker

        worker._in_worker = self._was


TABLE_WORK = """
    SELECT s.relname, s.n_tup_upd, s.n_tup_hot_upd,
        io.heap_blks_hit + io.heap_blks_read, coalesce(io.idx_blks_hit + io.idx_blks_read, 0)
    FROM pg_stat_user_tables s JOIN pg_statio_user_tables io USING (relid)
    WHERE s.relname IN ('tasks_taskinstance', 'tasks_subtaskinstance', 'tasks_logchunk')
"""


def table_work(connection) -> dict[str, tuple[int, ...]]:
    """PostgreSQL's own counters for the engine's tables: rows updated, of which HOT (no
    index entry written), heap and index blocks touched. They count the database's work,
    whatever else the machine does, unlike its wall time."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
    time.sleep(1.1)  # a backend's counters reach the shared ones at most once a second
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(TABLE_WORK)
        return {name: tuple(values) for name, *values in cursor.fetchall()}


def print_table_work(before: dict, after: dict, attempts: int) -> None:
    if not after:
        return
    print("PostgreSQL's counters per attempt (updates, of which HOT; heap and index blocks):")
    for name in sorted(after):
        diff = [a - b for a, b in zip(after[name], before.get(name, (0, 0, 0, 0)), strict=True)]
        upd, hot, heap, idx = (value / attempts for value in diff)
        print(f"  {name:<24} updates {upd:5.2f} (HOT {hot:5.2f})  heap blocks {heap:6.1f}"
              f"  index blocks {idx:6.1f}")  # fmt: skip


def profile_inline(shape: Shape) -> tuple[Profile, float]:
    """Run every attempt of one task in this process, timing each engine step and its SQL.

    Like the Celery worker (CELERY_DB_REUSE_MAX keeps its connection for 1,000 tasks), every
    attempt reuses one database connection.
    Statements are timed with an execute wrapper, commits by wrapping the connection's
    commit, and each is counted under the innermost step that ran it.
    """
    from django.db import connections

    from taskcenter.engine import dispatch, runner
    from taskcenter.engine.worker import relax_commit_durability
    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import TaskInstance, TaskStatus

    connection = connections["default"]
    connection.ensure_connection()
    # The worker's connections commit without waiting for the disk (engine.worker): so do
    # this process's, or every statement would be timed with a disk flush the worker skips.
    with override_settings_in_worker():
        relax_commit_durability(sender=None, connection=connection)
    profile = Profile()
    profile.work_before = table_work(connection)
    pending: deque[tuple[int, int]] = deque()

    def timed_execute(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            profile.record_statement(sql, time.perf_counter() - started)

    real_commit = connection._commit

    def timed_commit():
        started = time.perf_counter()
        try:
            return real_commit()
        finally:
            profile.record_statement("COMMIT", time.perf_counter() - started)

    measured = profile.measured
    patched = {
        (dispatch, "_send"): lambda subtask_id, attempt, producer=None: pending.append(
            (subtask_id, attempt)
        ),
        (services, "attempt_claim"): measured("attempt_claim", services.attempt_claim),
        (services, "attempt_finish"): measured("attempt_finish", services.attempt_finish),
        (connection, "_commit"): timed_commit,
    }
    originals = {key: getattr(*key) for key in patched}
    for (target, name), value in patched.items():
        setattr(target, name, value)
    execute = measured("execute_attempt, own", runner.execute_attempt)

    try:
        with connection.execute_wrapper(timed_execute):
            name, params = (
                ("Benchmark fan-out", {"width": shape.size})
                if shape.kind == "fan-out"
                else ("Benchmark chain", {"length": shape.size})
            )
            backend = backend_pid(connection)
            backend_started = common.pid_cpu_seconds(backend) if backend else 0.0
            started, cpu_started = time.perf_counter(), time.process_time()
            task = measured("task_start", verbs.task_start)(definition_name=name, parameters=params)
            _created_tasks.append(task.pk)
            while pending:
                subtask_id, attempt = pending.popleft()
                execute(subtask_id=subtask_id, attempt=attempt)
            total = time.perf_counter() - started
            profile.cpu_total = time.process_time() - cpu_started
            if backend:
                profile.backend_cpu = common.pid_cpu_seconds(backend) - backend_started
    finally:
        for (target, name), value in originals.items():
            setattr(target, name, value)
    profile.work_after = table_work(connection)
    status = TaskInstance.objects.filter(pk=task.pk).values_list("status", flat=True).get()
    if status != TaskStatus.SUCCESSFUL:
        raise BenchError(f"inline run of {shape.label} ended {status}")
    return profile, total


def backend_pid(connection) -> int | None:
    """The pid of the connection's PostgreSQL backend, when it runs on this machine."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def print_profile(shape: Shape, profile: Profile, total: float) -> None:
    n = shape.subtasks
    print(f"\nInline profile of {shape.label} ({n} attempts, one process, no broker): "
          f"{total:.3f} s wall, {1000 * total / n:.2f} ms per subtask; "
          f"CPU {profile.cpu_total:.3f} s, {1000 * profile.cpu_total / n:.2f} ms per subtask")  # fmt: skip
    if profile.backend_cpu is not None:
        print(f"PostgreSQL backend CPU: {profile.backend_cpu:.3f} s, "
              f"{1000 * profile.backend_cpu / n:.3f} ms per subtask")  # fmt: skip
    rows = []
    order = ["task_start", "attempt_claim", "attempt_finish",
             "execute_attempt, own"]  # fmt: skip
    for name in order:
        phase = profile.phases[name]
        per = max(phase.calls, 1)
        own = phase.seconds - phase.child_seconds
        own_cpu = phase.cpu - phase.child_cpu
        rows.append([
            name, str(phase.calls), f"{phase.queries / per:.1f}", f"{1000 * own / per:.3f}",
            f"{1000 * own_cpu / per:.3f}", f"{1000 * phase.db_seconds / per:.3f}",
            f"{1000 * (own - phase.db_seconds) / per:.3f}", f"{own:.3f}",
        ])  # fmt: skip
    common.print_table(
        ["step (own time)", "calls", "stmts/call", "ms/call", "cpu ms/call", "db ms/call",
         "non-db ms/call", "total s"],
        rows,
    )  # fmt: skip
    shaped: dict[str, list[float]] = defaultdict(list)
    for (name, sql), times in profile.statements.items():
        shaped[f"{name}: {_statement_shape(sql)}"].extend(times)
    print_table_work(profile.work_before, profile.work_after, n)
    heaviest = sorted(shaped.items(), key=lambda kv: -sum(kv[1]))[:10]
    print("Heaviest statements (wall time of execute/commit, total over the run):")
    for statement, times in heaviest:
        print(f"  {sum(times):7.3f} s  {len(times):6d} x  {1000 * sum(times) / len(times):6.3f} ms"
              f"  {statement[:140]}")  # fmt: skip


# --- Cores: the services on one, the workers on the others ------------------------------------

SERVICES = ("postgres", "redis-server", "beam.smp", "epmd")


def _service_pids() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] in SERVICES:
            pids.append(int(stat.parent.name))
    return pids


def _pin(pids: list[int], cores: set[int]) -> None:
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):  # every thread (RabbitMQ's VM has many)
            try:
                os.sched_setaffinity(int(task.name), cores)
            except (ProcessLookupError, PermissionError):
                pass


def split_cores(services_core: int) -> None:
    """PostgreSQL (its postmaster, so new backends too), Redis and RabbitMQ on one core; this
    process, and so the workers it starts, on the others. Needs the right to set other
    processes' affinity (root)."""
    others = set(range(os.cpu_count() or 1)) - {services_core}
    if not others:
        raise BenchError("--services-core needs at least two CPUs")
    _pin(_service_pids(), {services_core})
    os.sched_setaffinity(0, others)
    print(f"  cores: services on CPU {services_core}, workers on {sorted(others)}", flush=True)


def unsplit_cores() -> None:
    every = set(range(os.cpu_count() or 1))
    _pin(_service_pids(), every)
    os.sched_setaffinity(0, every)


# --- Main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", help="redis | filesystem | amqp | a broker URL")
    parser.add_argument("--database", help="sqlite (temp file, default) | postgres | a URL")
    parser.add_argument("--result-backend", help="plain Celery's result backend URL")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4, help="processes per worker")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker nodes, each on a host name of its own"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--max-crashes", type=int, default=5, help="worker restarts allowed")
    parser.add_argument("--loglevel", default="warning", help="workers' -l (info logs tasks)")
    parser.add_argument("--only", choices=["plain", "taskcenter"], help="run one system")
    parser.add_argument("--profile", action="store_true", help="also profile inline")
    parser.add_argument(
        "--timeline", action="store_true", help="print where each taskcenter run's time went"
    )
    parser.add_argument(
        "--services-core",
        type=int,
        help="run PostgreSQL, Redis and RabbitMQ on this CPU alone and the workers and this "
        "script on the others, as where the database and the broker have machines of their own",
    )
    parser.add_argument("--profile-only", action="store_true", help="only the inline profile")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--waits", action="store_true", help="sample what PostgreSQL's backends wait on"
    )
    args = parser.parse_args()
    global _print_timeline
    _print_timeline = args.timeline

    common.exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="taskcenter-bench-"))
    database = args.database_url = common.database_url(args.database, tmp)
    broker = broker_url(args.broker, tmp)
    common.prepare_environment(tmp=tmp, database=database, broker=broker)
    # A queue of our own, so a developer's worker or a test run on the same broker never
    # takes the benchmark's messages (and the purge never drops theirs).
    os.environ["TASKCENTER_QUEUE"] = TASKCENTER_QUEUE
    common.setup_django(database)
    ensure_history(database)

    import celery
    from django.conf import settings

    backend = result_backend(args.result_backend, broker, tmp)
    taskcenter_queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    os.environ["BENCH_PLAIN_CONFIG"] = json.dumps(
        {
            "broker_url": settings.CELERY_BROKER_URL,
            "broker_transport_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "worker_prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
            "broker_transport": getattr(settings, "CELERY_BROKER_TRANSPORT", None),
            "result_backend": backend,
        }
    )
    shapes = [Shape("fan-out", args.width), Shape("chain", args.length)]
    print(
        f"engine_overhead on {socket.gethostname()} ({os.cpu_count()} CPUs), "
        f"celery {celery.__version__}\n"
        f"  broker:   {safe_url(broker)}\n"
        f"  database: {common.describe_database(database)}\n"
        f"  workers:  {args.workers} x prefork -c {args.concurrency}, prefetch x"
        f"{settings.CELERY_WORKER_PREFETCH_MULTIPLIER}, acks_late, -l {args.loglevel}\n"
        f"  plain Celery result backend: {safe_url(backend)}\n"
        f"  median of {args.repeat} run(s) after one warm-up; tmp {tmp}",
        flush=True,
    )
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    passed = True
    if args.services_core is not None:
        split_cores(args.services_core)
    try:
        if not args.profile_only:
            # Without DJANGO_SETTINGS_MODULE, Celery does not load its Django fix-up (which
            # would set Django up and close connections around every task) in the plain worker.
            systems = [
                ("plain", "plain_celery_app", "bench_plain", run_plain,
                 {"DJANGO_SETTINGS_MODULE": None}),
                ("taskcenter", "taskcenter",
                 taskcenter_queue, run_taskcenter, {}),
            ]  # fmt: skip
            for system, app, queue, run, env in systems:
                if args.only and args.only != system:
                    continue
                with Workers(system, args.workers, app, tmp, args.concurrency, queue,
                             args.loglevel, env) as worker:  # fmt: skip
                    results[system] = measure(system, run, shapes, worker, args)
            passed = report(shapes, results)
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
        if args.services_core is not None:
            unsplit_cores()
        cleanup_database(database)
        if args.keep_temp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if args.strict and not passed else 0


def report(shapes: list[Shape], results: dict[str, dict[str, dict[str, list[float]]]]) -> bool:
    """Print the table; True when every measured shape meets the target."""

    def median(system: str, what: str, shape: Shape) -> float | None:
        values = results.get(system, {}).get(what, {}).get(shape.label)
        return common.median(values) if values else None

    def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
        return "-" if value is None else pattern.format(value)

    rows, verdicts = [], []
    for shape in shapes:
        p, t = median("plain", "wall", shape), median("taskcenter", "wall", shape)
        pc, tc = median("plain", "cpu", shape), median("taskcenter", "cpu", shape)
        pm, tm = median("plain", "machine", shape), median("taskcenter", "machine", shape)
        td = median("taskcenter", "database", shape)
        ratio = t / p if p and t else None
        per = 1000 / shape.subtasks
        verdict = "-"
        target = TARGET_RATIO[shape.kind]
        if ratio:
            verdict = f"{common.verdict(ratio <= target)} (<= {target:g})"
            verdicts.append(ratio <= target)
        rows.append([
            shape.label, str(shape.subtasks), fmt(p), fmt(t), fmt(ratio, "{:.2f}"),
            fmt(p and p * per, "{:.2f}"), fmt(t and t * per, "{:.2f}"),
            fmt(p and t and (t - p) * per, "{:.2f}"),
            fmt(pc and pc * per, "{:.2f}"), fmt(tc and tc * per, "{:.2f}"),
            fmt(pc and tc and tc / pc, "{:.2f}"),
            fmt(pm and pm * per, "{:.2f}"), fmt(tm and tm * per, "{:.2f}"),
            fmt(td and td * per, "{:.2f}"), verdict,
        ])  # fmt: skip
    print()
    common.print_table(
        [
            "shape", "subtasks", "plain celery s", "taskcenter s", "ratio",
            "plain ms/subtask", "taskcenter ms/subtask", "overhead ms/subtask",
            "plain CPU ms/subtask", "taskcenter CPU ms/subtask", "CPU ratio",
            "plain machine CPU ms/subtask", "taskcenter machine CPU ms/subtask",
            "taskcenter PostgreSQL CPU ms/subtask",
            "target ratio",
        ],
        rows,
    )  # fmt: skip
    print(
        "(seconds: median wall time; CPU: worker processes + this process, not the DB server;"
        " machine CPU: every process of the machine, the database and the broker included)"
    )
    if crashes:
        print(f"\nWorker crashes (restarted, the run repeated): {crashes}")
    if verdicts:
        print(f"\nOverall: {common.verdict(all(verdicts))}")
    return all(verdicts)


# Finished tasks kept in a PostgreSQL benchmark database across runs, as a production
# database holds its history: with only the runs' own rows, which each run deletes at its
# end, the tables' statistics could say "empty" and PostgreSQL then joined the task row
# by a sequential scan per subtask (millions of them in a run; PostgreSQL's CPU per
# subtask three times its usual figure, run after run). The tables are also vacuumed and
# analyzed before every run, as autovacuum would have done (a server may run without it:
# one of the machines measured on did), so that every run starts from the same state.
HISTORY_TASKS = 20_000
HISTORY_SUBTASKS = 5
HISTORY_NAME = "Benchmark history"


def ensure_history(database: str) -> None:
    """HISTORY_TASKS finished tasks of HISTORY_SUBTASKS subtasks each (made once), then the
    engine's tables vacuumed and analyzed, so that every run starts from the same state."""
    if database.startswith("sqlite"):
        return
    from django.db import connection, transaction
    from django.utils import timezone

    from taskcenter.tasks.models import (
        NodeType,
        SubtaskInstance,
        SubtaskRunMode,
        SubtaskStatus,
        TaskInstance,
        TaskStatus,
    )

    have = TaskInstance.objects.filter(name=HISTORY_NAME).count()
    if have < HISTORY_TASKS:
        print(f"  adding {HISTORY_TASKS - have:,} finished tasks of history ...", flush=True)
        now = timezone.now()
        with transaction.atomic():
            tasks = TaskInstance.objects.bulk_create(
                TaskInstance(
                    name=HISTORY_NAME,
                    status=TaskStatus.SUCCESSFUL,
                    start_time=now,
                    finish_time=now,
                )
                for _ in range(HISTORY_TASKS - have)
            )
            SubtaskInstance.objects.bulk_create(
                (
                    SubtaskInstance(
                        task=task,
                        name=f"Step {step}",
                        key=f"step-{step}",
                        series_id=step,
                        status=SubtaskStatus.SUCCESSFUL,
                        operation=SubtaskRunMode.EXECUTE,
                        node_type=NodeType.PYTHON_TASK,
                        start_time=now,
                        finish_time=now,
                    )
                    for task in tasks
                    for step in range(HISTORY_SUBTASKS)
                ),
                batch_size=5000,
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tasks_taskinstance, tasks_subtaskinstance")


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
