"""Scheduler throughput and idle cost: taskcenter's scheduler against django-celery-beat.

What is measured, both systems in one run, one after the other, on the same broker:

* throughput: N (default 1,000) cron schedules all due at the same minute T (a whole
  minute, both systems' crontabs say "at minute M of hour H"). taskcenter: N plans, each
  with one CRON_JOB item `0 M H * * ?` (UTC), and a real `manage.py run_scheduler`
  process; each fire inserts its Fire row, starts a task of the demo's NotebookJob and,
  on commit, sends the task's first subtask to Celery. django-celery-beat: N PeriodicTask
  rows on a crontab `M H * * *` (UTC) and a real `celery beat` process with its
  DatabaseScheduler, in a minimal Django project of its own (benchmarks/beat_peer.py,
  its own tables in a database of its own). No worker runs: the script polls the
  message count of each system's queue every 10 ms from T until N messages are there.
  Reported: seconds from T to the first message and to the Nth, the span between them
  (the enqueue rate), and the scheduler process's CPU time from T to the Nth. For
  taskcenter the Fire rows and tasks are counted afterwards (every one must be there).
  Aim: taskcenter enqueues the N due runs within 2 s of T.
* cron worst cases (in this process, no scheduler): how long the parser takes to answer
  for expressions that make it search far: a day that never exists, a year in the past,
  a fire time 75 years ahead. Aims: 2 s, 1 s and 0.5 s (the tests check the answers,
  not the time; a loaded test machine says nothing about speed).
* idle cost: 10,000 and 100 enabled plans with nothing due (a cron in the current hour
  on another day of the month). The CPU time (user + system, from /proc) of the
  scheduler process over --idle-seconds (default 30), after a warm-up, scaled to a
  minute. Aim: the same at 100 and at 10,000 plans. taskcenter's figure includes what
  `run_scheduler` does besides firing (the ended-runs look-up each second, the reaper
  every 5 s). Beat is measured with the same counts, at the same time as taskcenter
  (CPU time is per process, so running them side by side halves the wall time without
  mixing the figures). Since version 2.8, beat's DatabaseScheduler loads only the
  crontab entries within two hours of the current hour, which is why the idle entries
  are in the current hour: otherwise beat would hold none of them.

Each system's scheduler runs with its defaults (taskcenter: a tick each second; beat:
wake-ups at most 5 s apart and at each entry's due time). taskcenter's queue and beat's
queue are separate queues on the same broker, purged before each run; the plans, tasks
and beat rows this script writes are deleted at its start and end (beat's database is
taskcenter's name + "_beat" on PostgreSQL, a temp file on SQLite).

django-celery-beat is not a taskcenter dependency: when it is missing from the virtualenv
the script installs it with pip (`pip install django-celery-beat`) before it starts,
unless --no-install is given (then it stops and says so).

Usage, from the project root (about 4 minutes; waiting for two whole minutes is most of it):
    .venv/bin/python benchmarks/scheduler_throughput.py [--database sqlite|postgres|URL]
        [--broker redis://127.0.0.1:6379/N] [--plans 1000] [--idle-plans 10000,100]
        [--idle-seconds 30] [--only taskcenter|beat] [--skip-idle] [--no-install]
    .venv/bin/python benchmarks/scheduler_throughput.py --database ... --profile 200
        (no scheduler process: one tick in this process, its statements and a CPU profile)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

TASKCENTER_QUEUE = "bench_sched_taskcenter"
BEAT_QUEUE = "bench_sched_beat"
ENTITY_GROUP = "BENCH_SCHEDULER"
JOB_CLASS = "com.hengshi.nangaparbat.schedulejob.NotebookJob"  # demo: 2 steps, 1 first message
AIM_SECONDS = 2.0
POLL_INTERVAL = 0.01
LEAD_SECONDS = 20  # at least this long between setting up and the due minute


class BenchError(Exception):
    pass


# --- Processes -----------------------------------------------------------------------------------

_live: set[Scheduler] = set()


class Scheduler:
    """A scheduler subprocess in its own process group (its CPU time read from /proc)."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], tmp: Path):
        self.label = label
        self.log_path = tmp / f"{label}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen | None = subprocess.Popen(
            command, cwd=tmp, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        _live.add(self)

    def cpu(self) -> float:
        assert self.proc is not None
        return common.group_cpu_seconds(self.proc.pid)

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"the {self.label} scheduler died:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            common.stop_group(proc)
            self._log.close()
        _live.discard(self)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no log)"


def taskcenter_scheduler(tmp: Path) -> Scheduler:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, str(common.ROOT / "manage.py"), "run_scheduler"]
    return Scheduler("taskcenter", command, env, tmp)


def beat_env(beat_database: str, broker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCENTER_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="beat_peer",
        PYTHONPATH=str(common.BENCH_DIR),
        PYTHONUNBUFFERED="1",
        BENCH_BEAT_CONFIG=json.dumps(
            {"database": beat_database, "broker_url": broker, "queue": BEAT_QUEUE}
        ),
    )
    return env


def beat_setup(env: dict[str, str], tmp: Path, *, count: int, minute: int, hour: int,
               day_of_month: str = "*") -> None:  # fmt: skip
    command = [
        sys.executable, str(common.BENCH_DIR / "beat_peer.py"), "setup", "--count", str(count),
        "--minute", str(minute), "--hour", str(hour), "--day-of-month", day_of_month,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode:
        raise BenchError(f"setting up beat's periodic tasks failed:\n{done.stderr[-3000:]}")


def beat_scheduler(env: dict[str, str], tmp: Path) -> Scheduler:
    command = [
        sys.executable, "-m", "celery", "-A", "beat_peer", "beat",
        "-S", "django_celery_beat.schedulers:DatabaseScheduler", "-l", "warning",
        "--pidfile=", "-s", str(tmp / "beat-schedule"),
    ]  # fmt: skip
    return Scheduler("beat", command, env, tmp)


def ensure_beat_installed(no_install: bool) -> str:
    """django-celery-beat's version, installing it into this virtualenv when missing."""
    if importlib.util.find_spec("django_celery_beat") is None:
        if no_install:
            raise BenchError("django-celery-beat is missing: pip install django-celery-beat")
        print("installing django-celery-beat into this virtualenv (benchmark only) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "django-celery-beat"],
                       check=True)  # fmt: skip
        importlib.invalidate_caches()
    from importlib.metadata import version

    return version("django-celery-beat")


# --- The broker ----------------------------------------------------------------------------------


class Queues:
    """Message counts and purges on the broker, over one connection."""

    def __init__(self):
        from taskcenter.celery import app

        self.conn = app.connection_for_write()
        self.channel = self.conn.default_channel

    def size(self, queue: str) -> int:
        try:
            return self.channel.queue_declare(queue=queue, passive=True).message_count
        except Exception:  # noqa: BLE001 - a queue that does not exist yet holds nothing
            return 0

    def purge(self, *queues: str) -> None:
        for queue in queues:
            try:
                self.channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - nothing to purge
                pass

    def close(self) -> None:
        self.conn.release()


# --- taskcenter's plans --------------------------------------------------------------------------


def create_plans(count: int, cron_desc: str, now: datetime) -> datetime:
    """`count` enabled plans with one CRON_JOB item each; their (common) next fire time.

    bulk_create writes the rows verbs.plan_submit would (next_fire_at from the same
    cron code): going through the verb would make 10,000 plans take minutes.
    """
    from taskcenter.schedules import cron
    from taskcenter.schedules.models import CronType, Plan, PlanItem, TriggerType

    next_fire = cron.parse(cron_desc).next_fire_time(now, "UTC")
    assert next_fire is not None
    plans = Plan.objects.bulk_create(
        (
            Plan(
                entity_group=ENTITY_GROUP,
                entity_key=str(i),
                title=f"notebook{i}",
                job_class=JOB_CLASS,
                job_params={"notebook": str(i)},
            )  # fmt: skip
            for i in range(count)
        ),
        batch_size=1000,
    )
    PlanItem.objects.bulk_create(
        (
            PlanItem(
                plan=plan,
                trigger_type=TriggerType.CRON_JOB,
                cron_desc=cron_desc,
                cron_type=CronType.CRON,
                time_zone="UTC",
                next_fire_at=next_fire,
            )  # fmt: skip
            for plan in plans
        ),
        batch_size=1000,
    )
    return next_fire


def delete_plans() -> None:
    """The benchmark's plans, their fires and the tasks they started."""
    from taskcenter.schedules.models import Fire, Plan
    from taskcenter.tasks.models import TaskInstance

    fires = Fire.objects.filter(entity_group=ENTITY_GROUP)
    TaskInstance.objects.filter(pk__in=fires.exclude(task=None).values("task")).delete()
    fires.delete()
    Plan.objects.filter(entity_group=ENTITY_GROUP).delete()


def fired(due: datetime) -> dict:
    """What taskcenter's fires left behind: counts and when the first and last were written."""
    from django.db.models import Count, Max, Min, Q

    from taskcenter.schedules.models import Fire, FireOutcome

    return Fire.objects.filter(entity_group=ENTITY_GROUP, fire_time=due).aggregate(
        fires=Count("pk"),
        started=Count("pk", filter=Q(outcome=FireOutcome.STARTED, task__isnull=False)),
        first=Min("created_at"),
        last=Max("created_at"),
    )


# --- Throughput ----------------------------------------------------------------------------------


def next_minute(lead: float) -> datetime:
    """The first whole minute at least `lead` seconds from now (UTC)."""
    soon = datetime.now(UTC) + timedelta(seconds=lead)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def wait_until(moment: datetime, scheduler: Scheduler) -> None:
    while (left := moment.timestamp() - time.time()) > 0:
        scheduler.check_alive()
        time.sleep(min(left, 0.5))


def count_messages(queues: Queues, queue: str, count: int, due: datetime,
                   scheduler: Scheduler, timeout: float) -> dict:  # fmt: skip
    """From `due`, poll the queue until it holds `count` messages."""
    wait_until(due, scheduler)
    cpu_at_due = scheduler.cpu()
    first = None
    while True:
        size = queues.size(queue)
        now = time.time() - due.timestamp()
        if size and first is None:
            first = now
        if size >= count:
            return {"first": first, "all": now, "cpu": scheduler.cpu() - cpu_at_due}
        if now > timeout:
            raise BenchError(
                f"{scheduler.label}: {size} of {count} messages after {timeout:g} s:\n"
                f"{scheduler.log_tail()}"
            )
        scheduler.check_alive()
        time.sleep(POLL_INTERVAL)


def throughput_taskcenter(args, tmp: Path, queues: Queues) -> dict:
    delete_plans()
    queues.purge(TASKCENTER_QUEUE)
    due = next_minute(LEAD_SECONDS)
    cron_desc = f"0 {due.minute} {due.hour} * * ?"
    if create_plans(args.plans, cron_desc, datetime.now(UTC)) != due:
        raise BenchError(f"{cron_desc} does not fire at {due.isoformat()}")
    print(f"taskcenter: {args.plans} plans `{cron_desc}` (UTC) due at {due:%H:%M:%S}", flush=True)
    scheduler = taskcenter_scheduler(tmp)
    try:
        result = count_messages(queues, TASKCENTER_QUEUE, args.plans, due, scheduler,
                                args.timeout)  # fmt: skip
    finally:
        scheduler.stop()
    rows = fired(due)
    if rows["started"] != args.plans or rows["fires"] != args.plans:
        raise BenchError(f"taskcenter: {rows['fires']} fires, {rows['started']} started, "
                         f"expected {args.plans} of each")  # fmt: skip
    result["fires_first"] = (rows["first"] - due).total_seconds()
    result["fires_last"] = (rows["last"] - due).total_seconds()
    result["messages"] = queues.size(TASKCENTER_QUEUE)
    delete_plans()
    queues.purge(TASKCENTER_QUEUE)
    return result


def throughput_beat(args, tmp: Path, queues: Queues, env: dict[str, str]) -> dict:
    queues.purge(BEAT_QUEUE)
    due = next_minute(LEAD_SECONDS)
    beat_setup(env, tmp, count=args.plans, minute=due.minute, hour=due.hour)
    print(f"beat: {args.plans} periodic tasks `{due.minute} {due.hour} * * *` (UTC) due at "
          f"{due:%H:%M:%S}", flush=True)  # fmt: skip
    scheduler = beat_scheduler(env, tmp)
    try:
        result = count_messages(queues, BEAT_QUEUE, args.plans, due, scheduler, args.timeout)
    finally:
        scheduler.stop()
    result["messages"] = queues.size(BEAT_QUEUE)
    queues.purge(BEAT_QUEUE)
    return result


# --- Idle cost -----------------------------------------------------------------------------------


def idle(args, tmp: Path, count: int, env: dict[str, str] | None) -> dict[str, float]:
    """CPU seconds per minute of each scheduler holding `count` plans, none due."""
    now = datetime.now(UTC)
    day = (now.day + 14) % 28 + 1  # never today: nothing fires during the window
    schedulers = []
    if env is not None:
        beat_setup(env, tmp, count=count, minute=0, hour=now.hour, day_of_month=str(day))
        schedulers.append(beat_scheduler(env, tmp))
    if args.only != "beat":
        delete_plans()
        create_plans(count, f"0 0 {now.hour} {day} * ?", now)
        schedulers.append(taskcenter_scheduler(tmp))
    print(f"idle: {count} plans, {args.idle_warmup:g} s warm-up, then {args.idle_seconds:g} s",
          flush=True)  # fmt: skip
    try:
        time.sleep(args.idle_warmup)
        for scheduler in schedulers:
            scheduler.check_alive()
        before = [s.cpu() for s in schedulers]
        time.sleep(args.idle_seconds)
        for scheduler in schedulers:
            scheduler.check_alive()
        after = [s.cpu() for s in schedulers]
    finally:
        for scheduler in schedulers:
            scheduler.stop()
    if args.only != "beat":
        delete_plans()
    scale = 60 / args.idle_seconds
    return {s.label: (a - b) * scale for s, a, b in zip(schedulers, after, before, strict=True)}


# --- Inline profile ------------------------------------------------------------------------------


def profile_tick(count: int, queues: Queues) -> None:
    """One tick of `count` due plans in this process: statements per fire and where the
    CPU goes (cProfile, CPU clock), the heaviest taskcenter functions first."""
    import cProfile
    import pstats

    from django.db import connection

    from taskcenter.schedules import scheduler
    from taskcenter.schedules.models import PlanItem

    delete_plans()
    now = datetime.now(UTC)
    create_plans(count, "0 0 0 1 1 ?", now)
    PlanItem.objects.filter(plan__entity_group=ENTITY_GROUP).update(next_fire_at=now)
    statements: dict[str, list[float]] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r'"s\d+_x\d+"', "", " ".join(sql.split()[:4]))[:70]  # savepoints
            statements.setdefault(shape, []).append(time.perf_counter() - started)

    profiler = cProfile.Profile(time.process_time)
    started, cpu_started = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(timed):
        profiler.enable()
        ticked = scheduler.tick(now=now + timedelta(seconds=1))
        profiler.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    total = sum(len(times) for times in statements.values())
    print(f"\nInline tick of {count} due plans: {len(ticked.started)} started, {wall:.2f} s "
          f"wall, {cpu:.2f} s CPU (with cProfile), {total / count:.1f} statements per fire, "
          f"{sum(map(sum, statements.values())):.2f} s in them; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    for shape, times in sorted(statements.items(), key=lambda kv: -sum(kv[1]))[:14]:
        print(f"  {sum(times):6.2f} s {len(times) / count:5.1f}/fire  {shape}")
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(r"taskcenter/|celery/app/base|kombu/messaging", 25)
    delete_plans()
    queues.purge(TASKCENTER_QUEUE)


# --- Cron worst cases ----------------------------------------------------------------------------

# (expression, zone, after, count, what it must answer, aim in seconds)
CRON_WORST_CASES = [
    ("0 0 10 L-30W * ?", "UTC", datetime(2024, 1, 15, tzinfo=UTC), 3, [], 2.0),
    ("0 0 0 30 2 ?", "UTC", None, 5, [], 1.0),
    ("0 0 0 1 1 ? 2020", "Europe/Berlin", None, 5, [], 1.0),
    ("0 0 0 31 4,6 ?", "UTC", None, 5, [], 1.0),
    ("59 59 23 31 12 ? 2099", "UTC", datetime(2024, 1, 1, tzinfo=UTC), 2,
     [datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)], 0.5),
]  # fmt: skip


def cron_worst_cases() -> list[tuple[str, float, float]]:
    """Seconds each worst-case expression takes to answer (the best of three runs)."""
    from taskcenter.schedules import cron

    timings = []
    for expression, zone, after, count, expected, aim in CRON_WORST_CASES:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            fires = cron.parse(expression).next_fire_times(after or datetime.now(UTC), zone, count)
            best = min(best, time.perf_counter() - started)
            if fires != expected:
                raise BenchError(f"cron {expression!r} answered {fires}, not {expected}")
        timings.append((expression, best, aim))
    return timings


def report_cron(timings: list[tuple[str, float, float]]) -> bool:
    print("\nCron worst cases: seconds to answer (best of 3)")
    common.print_table(
        ["expression", "seconds", "aim", "within"],
        [[e, f"{t:.4f}", f"{a:g}", common.verdict(t <= a)] for e, t, a in timings],
    )
    return all(t <= a for _, t, a in timings)


# --- Report --------------------------------------------------------------------------------------


def report(args, throughput: dict[str, dict], idle_cpu: dict[int, dict[str, float]]) -> bool:
    def sec(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    passed = True
    if throughput:
        rows = []
        for label, r in throughput.items():
            span = r["all"] - (r["first"] or 0)
            verdict = "-"
            if label == "taskcenter":
                passed = r["all"] <= AIM_SECONDS
                verdict = common.verdict(passed)
            rows.append([
                label, str(args.plans), sec(r["first"]), sec(r["all"]), sec(span),
                f"{args.plans / span:.0f}" if span > 0 else "-", sec(r["cpu"]),
                sec(r.get("fires_first")), sec(r.get("fires_last")), verdict,
            ])  # fmt: skip
        print(f"\nThroughput: {args.plans} schedules due at the same minute, seconds after it")
        common.print_table(
            ["scheduler", "due", "first message", "all enqueued", "first->last", "runs/s",
             "scheduler CPU s", "first Fire row", "last Fire row",
             f"all within {AIM_SECONDS:g} s"],
            rows,
        )  # fmt: skip
    if idle_cpu:
        counts = sorted(idle_cpu)
        labels = [label for label in ("taskcenter", "beat") if label in idle_cpu[counts[0]]]
        rows = [
            [label] + [f"{idle_cpu[n][label]:.3f}" for n in counts] + _ratio(idle_cpu, counts, label)
            for label in labels
        ]  # fmt: skip
        headers = ["scheduler"] + [f"{n:,} plans" for n in counts]
        if len(counts) > 1:
            headers.append(f"{counts[-1]:,} / {counts[0]:,}")
        print(f"\nIdle: scheduler CPU seconds per minute, nothing due "
              f"(measured over {args.idle_seconds:g} s)")  # fmt: skip
        common.print_table(headers, rows)
    return passed


def _ratio(idle_cpu: dict, counts: list[int], label: str) -> list[str]:
    """The most plans' idle CPU over the fewest's, or "-" when the fewest used none (a
    process idle below the clock's tick): every row has the table's last column."""
    if len(counts) < 2:
        return []
    fewest = idle_cpu[counts[0]][label]
    return [f"{idle_cpu[counts[-1]][label] / fewest:.2f}" if fewest else "-"]


# --- Main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="sqlite (temp file, default) | postgres | a URL")
    parser.add_argument("--broker", default=common.REDIS_DEFAULT, help="a Redis broker URL")
    parser.add_argument("--plans", type=int, default=1000, help="schedules due at once")
    parser.add_argument("--idle-plans", default="10000,100", help="plan counts for idle cost")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--idle-warmup", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds after due")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the aim is missed")
    parser.add_argument("--only", choices=["taskcenter", "beat"], help="run one system")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="only profile one inline tick of N due plans")  # fmt: skip
    parser.add_argument("--no-install", action="store_true", help="never pip install beat")
    args = parser.parse_args()

    common.exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="taskcenter-bench-sched-"))
    try:
        beat_version = None if args.only == "taskcenter" or args.profile else ensure_beat_installed(
            args.no_install
        )  # fmt: skip
        database = common.database_url(args.database, tmp)
        common.prepare_environment(tmp=tmp, database=database, broker=args.broker)
        os.environ["TASKCENTER_QUEUE"] = TASKCENTER_QUEUE
        common.setup_django(database)
        beat_database = f"sqlite:///{tmp / 'beat.sqlite3'}"
        if not database.startswith("sqlite"):
            beat_database = f"{database}_beat"
            common.ensure_postgres_database(beat_database)
        env = beat_env(beat_database, args.broker) if beat_version else None

        import celery

        print(
            f"scheduler_throughput on {socket.gethostname()} ({os.cpu_count()} CPUs), "
            f"celery {celery.__version__}, django-celery-beat {beat_version or '-'}\n"
            f"  broker:   {args.broker}\n"
            f"  database: {common.describe_database(database)}; beat's: "
            f"{common.describe_database(beat_database)}\n  tmp {tmp}",
            flush=True,
        )
        cron_timings = cron_worst_cases()
        queues = Queues()
        throughput: dict[str, dict] = {}
        idle_cpu: dict[int, dict[str, float]] = {}
        try:
            if args.profile:
                profile_tick(args.profile, queues)
                return 0
            if not args.skip_throughput:
                if args.only != "beat":
                    throughput["taskcenter"] = throughput_taskcenter(args, tmp, queues)
                if env is not None:
                    throughput["beat"] = throughput_beat(args, tmp, queues, env)
            if not args.skip_idle:
                for count in (int(n) for n in args.idle_plans.split(",")):
                    idle_cpu[count] = idle(args, tmp, count, env)
        finally:
            queues.close()
        passed = report_cron(cron_timings)
        passed = report(args, throughput, idle_cpu) and passed
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; schedulers stopped", file=sys.stderr)
        return 130
    finally:
        for scheduler in list(_live):
            scheduler.stop()
        if "django" in sys.modules and args.only != "beat":
            try:
                delete_plans()
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
                print(f"(could not delete the benchmark plans: {exc})", file=sys.stderr)
        if args.keep_temp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
