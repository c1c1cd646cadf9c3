"""Bulk retry of 10,000 failed tasks, against retrying them one API call at a time.

What runs: `manage.py serve` (its web server, one worker of --concurrency processes and
the scheduler) on PostgreSQL + Redis, as an installation runs. Its database holds
--tasks (default 10,000) FAILED tasks of one step on the cluster `bench-bulk` (started
by the run verb, failed by hand: an UPDATE leaves the state the engine's failure path
leaves), among --others (default 20,000) finished tasks of other clusters, so the filter
selects from a larger list. Their retried attempts are routed (TASKCENTER_QUEUE_ROUTES)
to a queue no worker reads: what is measured is the bulk operation making every task
RUNNING again, not the steps themselves.

Measured, over HTTP with Basic credentials:

* dry run: POST .../bulk/retry {"filter": {"status": "FAILED", "clusterId": C},
  "dryRun": true}: seconds to answer (every task judged);
* accept: the same without dryRun: seconds to answer 202 with the bulk id (judged again,
  the operation and its 10,000 items written, its runs sent);
* running again: seconds from the POST until GET .../bulk/{id} says finished, every task
  retried by the single verb (RUNNING again, its attempt sent);
* the list meanwhile: GET /api/v2/tasks/instances?size=20 in a loop from a second
  client while the bulk works: p50 / p95, against the same loop before the bulk started
  (the baseline);
* one by one (the baseline of the operation): POST .../{id}/retry for --single tasks
  (default 300) of a second batch of failed tasks, one after the other; per task, and
  the time 10,000 would take at that rate.

Usage, from the project root (about 3 minutes at 10,000 tasks, most of it seeding):
    .venv/bin/python benchmarks/bulk_retry.py [--database URL] [--broker redis://...]
        [--tasks 10000] [--others 20000] [--single 300] [--concurrency 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import common

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/taskcenter_bench_bulk"
DEFAULT_BROKER = "redis://127.0.0.1:6379/5"
CLUSTER = "bench-bulk"
SINGLE_CLUSTER = "bench-single"
PARKED_QUEUE = "bench_bulk_parked"
ONE_STEP = "Bench: one step"
USER, PASSWORD = "bench-admin", "bench-Pa55word!"
LIST_URL = "/api/v2/tasks/instances?size=20"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument(
        "--ports",
        type=lambda text: tuple(int(p) for p in text.split("-")),
        default=(18400, 18499),
        help="The port range the server may take (default 18400-18499).",
    )
    return parser.parse_args()


def seed(tasks: int, others: int, single: int) -> tuple[int, int]:
    """The failed tasks (bulk and one by one) and the others; returns the clusters' ids."""
    from django.contrib.auth.models import User

    from taskcenter.demo.history import attempts_not_sent
    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import (
        Cluster,
        SubtaskInstance,
        TaskDefinition,
        TaskInstance,
    )

    if not User.objects.filter(username=USER).exists():
        User.objects.create_superuser(USER, password=PASSWORD)
    TaskInstance.objects.all().delete()
    if not TaskDefinition.objects.filter(name=ONE_STEP).exists():
        step = {"key": "a", "name": "only", "kind": "SHELL_TASK", "action": {"command": "true"}}
        services.definition_create_from_data(name=ONE_STEP, spec={"subtasks": [step]})
    bulk_cluster, _ = Cluster.objects.get_or_create(name=CLUSTER, defaults={"ob_cluster_id": 1})
    single_cluster, _ = Cluster.objects.get_or_create(
        name=SINGLE_CLUSTER, defaults={"ob_cluster_id": 2}
    )
    other_cluster, _ = Cluster.objects.get_or_create(
        name="bench-other", defaults={"ob_cluster_id": 3}
    )
    with attempts_not_sent():
        for cluster, count, status in (
            (other_cluster, others, "SUCCESSFUL"),
            (single_cluster, single, "FAILED"),
            (bulk_cluster, tasks, "FAILED"),
        ):
            for start in range(0, count, 1_000):
                batch = min(1_000, count - start)
                started = verbs.task_start_many(
                    starts=[
                        verbs.TaskStart(definition_name=ONE_STEP, cluster=cluster)
                        for _ in range(batch)
                    ]
                )
                ids = [task.pk for task in started]
                SubtaskInstance.objects.filter(task_id__in=ids).update(status=status)
                TaskInstance.objects.filter(pk__in=ids).update(status=status)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return bulk_cluster.pk, single_cluster.pk


class Client:
    def __init__(self, base: str):
        self.base = base
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


class ListLoop(threading.Thread):
    """GET the list again and again until stopped; keeps each call's seconds."""

    def __init__(self, client: Client):
        super().__init__(daemon=True)
        self.client = client
        self.times: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set() and len(self.times) < 100_000:
            started = time.monotonic()
            status, _ = self.client.call("GET", LIST_URL)
            if status == 200:
                self.times.append(time.monotonic() - started)

    def stop(self) -> list[float]:
        self.halt.set()
        self.join(timeout=60)
        return self.times


def ms(values: list[float], pct: float) -> str:
    return f"{common.percentile(values, pct) * 1000:.0f}" if values else "-"


def main() -> None:
    args = parse_args()
    os.environ["TASKCENTER_QUEUE_ROUTES"] = (
        f"cluster:{CLUSTER}={PARKED_QUEUE},cluster:{SINGLE_CLUSTER}={PARKED_QUEUE}"
    )
    os.environ["TASKCENTER_QUEUE"] = "bench_bulk"
    with common.temporary_setup(args, prefix="bench-bulk-") as (tmp, database):
        print(f"database: {common.describe_database(database)}; broker: {args.broker}")
        seeded = time.monotonic()
        bulk_cluster, single_cluster = seed(args.tasks, args.others, args.single)
        print(f"seeded {args.tasks:,} + {args.single:,} failed tasks and {args.others:,} others "
              f"in {time.monotonic() - seeded:.0f} s")  # fmt: skip
        from taskcenter.celery import app

        with app.connection_for_write() as conn:
            for queue in ("bench_bulk", PARKED_QUEUE):
                try:
                    conn.default_channel.queue_purge(queue)
                except Exception:  # noqa: BLE001 - the queue may not exist yet
                    pass
        server = common.Server(tmp, concurrency=args.concurrency, ports=args.ports)
        try:
            server.wait_ready()
            figures = measure(Client(server.base), args, bulk_cluster, single_cluster)
        finally:
            server.stop()
    figures["load_average"] = os.getloadavg()[0]
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def measure(client: Client, args, bulk_cluster: int, single_cluster: int) -> dict:
    # The list at rest: the baseline of the list's p95.
    client.call("GET", LIST_URL)
    at_rest = ListLoop(client)
    at_rest.start()
    time.sleep(10)
    rest_times = at_rest.stop()

    # One by one: the baseline of the operation.
    status, page = client.call(
        "GET", f"/api/v2/tasks/instances?clusterId={single_cluster}&size=2000"
    )
    single_ids = [task["id"] for task in page["data"]["contents"]]
    started = time.monotonic()
    for task_id in single_ids:
        status, _ = client.call("POST", f"/api/v2/tasks/instances/{task_id}/retry", {})
        assert status == 200, status
    single_seconds = (time.monotonic() - started) / max(1, len(single_ids))

    body = {"filter": {"status": "FAILED", "clusterId": bulk_cluster}}
    started = time.monotonic()
    status, dry = client.call(
        "POST", "/api/v2/tasks/instances/bulk/retry", {**body, "dryRun": True}
    )
    dry_seconds = time.monotonic() - started
    assert status == 200 and len(dry["data"]["accepted"]) == args.tasks, (status, dry.get("error"))

    during = ListLoop(client)
    during.start()
    started = time.monotonic()
    status, answer = client.call("POST", "/api/v2/tasks/instances/bulk/retry", body)
    accept_seconds = time.monotonic() - started
    assert status == 202, (status, answer.get("error"))
    bulk_id = answer["data"]["bulkId"]
    while True:
        status, progress = client.call("GET", f"/api/v2/tasks/instances/bulk/{bulk_id}")
        if progress["data"]["finished"]:
            break
        if time.monotonic() - started > 1800:
            raise SystemExit(f"not finished after 30 minutes: {progress['data']}")
        time.sleep(0.2)
    running_seconds = time.monotonic() - started
    during_times = during.stop()
    data = progress["data"]
    return {
        "tasks": args.tasks,
        "dry_run_s": round(dry_seconds, 2),
        "accept_s": round(accept_seconds, 2),
        "running_again_s": round(running_seconds, 2),
        "per_task_ms": round(running_seconds / args.tasks * 1000, 2),
        "done": data["done"],
        "refused": data["refused"],
        "failed": data["failed"],
        "single_per_task_ms": round(single_seconds * 1000, 1),
        "single_extrapolated_s": round(single_seconds * args.tasks, 1),
        "list_rest_p50_ms": float(ms(rest_times, 50)),
        "list_rest_p95_ms": float(ms(rest_times, 95)),
        "list_during_p50_ms": float(ms(during_times, 50)),
        "list_during_p95_ms": float(ms(during_times, 95)),
        "list_calls_during": len(during_times),
    }


def report(f: dict, args) -> None:
    print()
    print(f"bulk retry of {f['tasks']:,} failed tasks (worker concurrency {args.concurrency}), "
          f"load average {f['load_average']:.1f}")  # fmt: skip
    common.print_table(
        ["", "bulk (one request)", f"one by one ({args.single} calls, scaled)"],
        [
            ["dry run (every task judged)", f"{f['dry_run_s']:.2f} s", "-"],
            ["accepted (202 with bulkId)", f"{f['accept_s']:.2f} s", "-"],
            ["every task running again", f"{f['running_again_s']:.1f} s",
             f"{f['single_extrapolated_s']:.1f} s"],
            ["per task", f"{f['per_task_ms']:.2f} ms", f"{f['single_per_task_ms']:.1f} ms"],
            ["done / refused / failed", f"{f['done']} / {f['refused']} / {f['failed']}", "-"],
        ],
    )  # fmt: skip
    print()
    common.print_table(
        ["list GET size=20", "at rest (baseline)", "during the bulk"],
        [
            ["p50", f"{f['list_rest_p50_ms']:.0f} ms", f"{f['list_during_p50_ms']:.0f} ms"],
            ["p95", f"{f['list_rest_p95_ms']:.0f} ms", f"{f['list_during_p95_ms']:.0f} ms"],
        ],
    )


if __name__ == "__main__":
    main()
