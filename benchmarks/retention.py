"""Pruning a million finished tasks while the engine works and the list is polled.

Data (PostgreSQL, database `tc_retention` by default, seeded afresh on every run since
the run deletes it): --tasks finished tasks (default 1,000,000) ended in 2024, far past
the 90 days kept, each with 2 subtasks, one log chunk and one audit entry (the audit
outlives its task: its link is cleared); and --recent tasks (default 20,000) ended today,
which the list shows and the prune keeps. Rows are generated inside PostgreSQL with
INSERT ... SELECT FROM generate_series, then VACUUM ANALYZE.

Running: a web process (`python -m taskcenter.webserver`, 8 threads, as `serve` runs
it) and a Celery worker (-c 2) on Redis. --clients viewers poll the task list (the
results part of /tasks/, newest first) every --interval s, and the engine runs
"Benchmark fan-out" tasks (1 -> --width -> 1 no-op subtasks) one after another.

1. Without the prune, before it: --fanouts fan-outs, with the list polled throughout.
2. During the prune: `manage.py prune --kind tasks` (its default batches and pacing) in
   a process of its own, fan-outs one after another until it ends, the list polled.
3. Without the prune, after it: as 1. Before and after together are the baseline, so
   that a change of the machine's load over a long prune (it is shared) weighs on both
   sides; the load average of each phase is printed.

Printed side by side: the prune's time (and rows per second), the list's p50/p95 and the
fan-out's median time without and during the prune, and their ratio against the target
(within 1.5x).

Usage, from the project root:
    .venv/bin/python benchmarks/retention.py [--database URL] [--broker URL]
        [--tasks 1000000] [--recent 20000] [--width 200] [--fanouts 3]
        [--clients 5] [--interval 1] [--port N] [--waits]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/tc_retention"
DEFAULT_BROKER = "redis://127.0.0.1:6379/4"
QUEUE = f"bench-retention-{os.getpid()}"
TARGET = 1.5


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--fanouts", type=int, default=3)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=None, help="the web process's (default: free)")
    parser.add_argument(
        "--waits",
        action="store_true",
        help="sample PostgreSQL's wait events during the prune (pg_stat_activity, every 20 ms)",
    )
    return parser.parse_args()


# --- Seeding ---------------------------------------------------------------------------------------


def seed(cursor, old: int, recent: int) -> None:
    started = time.monotonic()
    cursor.execute(
        "TRUNCATE tasks_logchunk, tasks_auditentry, tasks_subtaskinstance, "
        "tasks_taskinstance_hosts, tasks_taskinstance, engine_pendingdispatch, "
        "schedules_fire CASCADE"
    )
    total = old + recent
    print(f"  inserting {old:,} old and {recent:,} recent tasks ...", flush=True)
    cursor.execute(
        f"""
        INSERT INTO tasks_taskinstance (id, name, status, type, operation, executor,
            prohibit_rollback, parameters, create_time, start_time, finish_time,
            subtask_total)
        SELECT g, 'Migrate tenant',
            CASE WHEN g % 10 < 8 THEN 'SUCCESSFUL' ELSE 'FAILED' END,
            'MANUAL', 'EXECUTE', '10.0.0.1', false, '{{"tenant": "t1"}}'::jsonb,
            t, t + interval '1 second', t + interval '20 seconds', 2
        FROM generate_series(1, {total}) g,
            LATERAL (SELECT CASE WHEN g <= {old}
                THEN timestamptz '2024-01-01' + g * interval '10 seconds'
                ELSE now() - interval '1 hour' + (g - {old}) * interval '100 ms' END AS t) s
        """
    )
    print(f"  inserting {2 * total:,} subtasks ...", flush=True)
    cursor.execute(
        """
        INSERT INTO tasks_subtaskinstance (id, task_id, name, series_id, description, timeout,
            status, operation, executor, run_time, retry_count, node_type, parallel_idx,
            prohibit_rollback, upstream_ids, downstream_ids, action, create_time, start_time,
            finish_time, attempt, rollback_pending, log_size, log_truncated, upstreams_left,
            key)
        SELECT 2 * (t.id - 1) + k + 1, t.id, 'Step ' || k, k, '', 600,
            CASE WHEN k = 0 OR t.id % 10 < 8 THEN 'SUCCESSFUL' ELSE 'FAILED' END,
            'EXECUTE', '10.0.0.1', 1, 0, 'PYTHON_TASK', -1, false,
            CASE WHEN k = 0 THEN '[]'::jsonb ELSE jsonb_build_array(2 * (t.id - 1) + 1) END,
            CASE WHEN k = 1 THEN '[]'::jsonb ELSE jsonb_build_array(2 * (t.id - 1) + 2) END,
            '{"callable": "demo.noop"}'::jsonb, t.create_time, t.start_time,
            t.finish_time, 1, false, 60, false, 0, 'step-' || k
        FROM tasks_taskinstance t CROSS JOIN generate_series(0, 1) k
        """
    )
    print(f"  inserting {total:,} log chunks and audit entries ...", flush=True)
    cursor.execute(
        f"""
        INSERT INTO tasks_logchunk (subtask_id, attempt, "offset", length, data, created_at)
        SELECT 2 * (g - 1) + 1, 1, 0, 60,
            convert_to(rpad('step 0 of task ' || g || ' done', 59, '.') || E'\\n', 'UTF8'),
            now()
        FROM generate_series(1, {total}) g
        """
    )
    cursor.execute(
        f"""
        INSERT INTO tasks_auditentry (actor_name, action, task_id, target, from_status,
            to_status, reason, trace_id, caller_trace_id, access_key_id, created_at)
        SELECT 'system', 'START', g, 'task ' || g, '', 'RUNNING', '', '-', '', '',
            CASE WHEN g <= {old} THEN now() - interval '100 days' ELSE now() END
        FROM generate_series(1, {total}) g
        """
    )
    for table in ("tasks_taskinstance", "tasks_subtaskinstance"):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    print(f"  seeded in {time.monotonic() - started:.0f} s; VACUUM ANALYZE ...", flush=True)
    for table in ("tasks_taskinstance", "tasks_subtaskinstance", "tasks_logchunk"):
        cursor.execute(f"VACUUM ANALYZE {table}")
    cursor.execute("VACUUM ANALYZE tasks_auditentry")


# --- The list's pollers ----------------------------------------------------------------------------


class Pollers:
    """`clients` open lists asking for the results part every `interval` seconds."""

    def __init__(self, port: int, cookie: str, clients: int, interval: float):
        self.port, self.cookie, self.clients, self.interval = port, cookie, clients, interval
        self.latencies: list[float] = []
        self.errors = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _one(self, index: int) -> None:
        headers = {"Cookie": self.cookie, "HX-Request": "true", "HX-Target": "task-results"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.stop.wait(self.interval * index / self.clients)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/tasks/", headers=headers)
                answer = conn.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                ok = False
            took = time.perf_counter() - started
            with self.lock:
                if ok:
                    self.latencies.append(took)
                else:
                    self.errors += 1
            self.stop.wait(max(0.0, self.interval - took))
        conn.close()

    def start(self) -> None:
        self.latencies, self.errors = [], 0
        self.stop.clear()
        self.threads = [
            threading.Thread(target=self._one, args=(i,), daemon=True) for i in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()

    def finish(self) -> list[float]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return list(self.latencies)


# --- Processes -------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(common.ROOT))


def start_process(argv: list[str], log: Path, tmp: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=tmp,
        env=_env(),
        stdout=open(log, "wb"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_http(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the web server did not start; see {log}")
        time.sleep(0.3)


def fan_out(width: int, timeout: float = 600) -> float:
    from taskcenter.tasks import verbs
    from taskcenter.tasks.models import TaskInstance, TaskStatus

    started = time.perf_counter()
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": width})
    rows = TaskInstance.objects.filter(pk=task.pk).values_list("status", flat=True)
    while rows.get() == TaskStatus.RUNNING:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"fan-out task {task.pk} did not end in {timeout:g} s")
        time.sleep(0.05)
    if rows.get() != TaskStatus.SUCCESSFUL:
        raise SystemExit(f"fan-out task {task.pk} ended {rows.get()}")
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> int:
    args = parse_args()
    common.exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="tc-retention-") as tmp_name:
        tmp = Path(tmp_name)
        common.prepare_environment(tmp=tmp, database=args.database, broker=args.broker)
        os.environ["TASKCENTER_QUEUE"] = QUEUE
        os.environ["TASKCENTER_RETENTION_EXPORT_DIR"] = ""
        common.setup_django(args.database)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db import connection
        from django.test import Client

        from taskcenter.accounts import roles
        from taskcenter.tasks.models import TaskInstance

        print(f"Retention benchmark on {common.describe_database(args.database)}", flush=True)
        with connection.cursor() as cursor:
            seed(cursor, args.tasks, args.recent)
        viewer, _ = get_user_model().objects.get_or_create(username="bench-viewer")
        viewer.groups.add(Group.objects.get(name=roles.VIEWER))
        client = Client()
        client.force_login(viewer)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        connection.close()

        port = args.port or common.free_port()
        web_log, worker_log = tmp / "web.log", tmp / "worker.log"
        web = start_process(
            [
                sys.executable,
                "-m",
                "taskcenter.webserver",
                f"--listen=127.0.0.1:{port}",
                "--threads=8",
            ],
            web_log,
            tmp,
        )
        worker = start_process(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "taskcenter",
                "worker",
                "-P",
                "prefork",
                "-c",
                "2",
                "-l",
                "WARNING",
                "-Q",
                QUEUE,
                "-n",
                f"bench-retention-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],  # fmt: skip
            worker_log,
            tmp,
        )
        pruner = sampler = None
        try:
            wait_http(port, web, web_log)
            fan_out(20)  # warm-up: the worker is up and its connections open
            pollers = Pollers(port, cookie, args.clients, args.interval)

            def baseline(label: str) -> tuple[list[float], list[float], float]:
                print(f"  {label} ...", flush=True)
                pollers.start()
                load = os.getloadavg()[0]
                fanouts = [fan_out(args.width) for _ in range(args.fanouts)]
                time.sleep(2 * args.interval)
                return fanouts, pollers.finish(), (load + os.getloadavg()[0]) / 2

            base_fanouts, base_list, load_before = baseline("1. without the prune, before")

            print("  2. during the prune ...", flush=True)
            prune_log = tmp / "prune.log"
            pollers.start()
            loads = [os.getloadavg()[0]]
            started = time.perf_counter()
            pruner = start_process(
                [sys.executable, str(common.ROOT / "manage.py"), "prune", "--kind", "tasks"],
                prune_log,
                tmp,
            )
            sampler = common.WaitSampler(args.database, 0.02) if args.waits else None
            with sampler or contextlib.nullcontext():
                during_fanouts: list[float] = []
                while pruner.poll() is None or not during_fanouts:
                    took = fan_out(args.width)
                    loads.append(os.getloadavg()[0])
                    if pruner.poll() is None or not during_fanouts:
                        during_fanouts.append(took)
                pruner.wait()
            wall = time.perf_counter() - started
            during_list = pollers.finish()
            after_fanouts, after_list, load_after = baseline("3. without the prune, after")
            base_fanouts += after_fanouts
            base_list += after_list
            output = prune_log.read_text()
            if pruner.returncode != 0:
                raise SystemExit(f"the prune failed:\n{output}")
            pruned = int(re.search(r"pruned (\d+)", output).group(1))
            left = TaskInstance.objects.count()
        finally:
            for proc in (pruner, worker, web):
                if proc is not None and proc.poll() is None:
                    common.stop_group(proc)

        print()
        print(
            f"{args.tasks:,} finished tasks past retention ({2 * args.tasks:,} subtasks, "
            f"{args.tasks:,} log chunks, {args.tasks:,} audit entries kept), "
            f"{args.recent:,} recent; list polled by {args.clients} viewers every "
            f"{args.interval:g} s; fan-out 1->{args.width}->1 on a worker of 2 processes"
        )
        print(
            f"prune: {pruned:,} tasks in {wall:.0f} s ({pruned / wall:,.0f} tasks/s); "
            f"{left:,} tasks left (recent and fan-outs)"
        )
        print()
        base_p95 = common.percentile(base_list, 95)
        during_p95 = common.percentile(during_list, 95)
        base_fan = statistics.median(base_fanouts)
        during_fan = statistics.median(during_fanouts)
        rows = [
            ["list p50", ms(statistics.median(base_list)), ms(statistics.median(during_list)),
             f"{statistics.median(during_list) / statistics.median(base_list):.2f}x", "", ""],
            ["list p95", ms(base_p95), ms(during_p95), f"{during_p95 / base_p95:.2f}x",
             f"<= {TARGET}x", common.verdict(during_p95 / base_p95 <= TARGET)],
            ["list polls answered", str(len(base_list)), str(len(during_list)), "", "", ""],
            ["fan-out (median)", f"{base_fan:.1f} s", f"{during_fan:.1f} s",
             f"{during_fan / base_fan:.2f}x", f"<= {TARGET}x",
             common.verdict(during_fan / base_fan <= TARGET)],
            ["fan-outs run", str(len(base_fanouts)), str(len(during_fanouts)), "", "", ""],
            ["load average", f"{load_before:.1f} / {load_after:.1f}",
             f"{statistics.mean(loads):.1f}", "", "", ""],
        ]  # fmt: skip
        common.print_table(
            ["", "without prune", "during prune", "ratio", "target", "verdict"], rows
        )
        if sampler is not None:
            print()
            print("PostgreSQL's active backends during the prune (sampled every 20 ms):")
            sampler.report(queries=12)
        print()
        print(output.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
