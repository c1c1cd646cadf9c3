"""Notifications: from a task's failure to its webhook arriving, and what events cost the
engine's finish path.

1. Latency. A real `manage.py run_scheduler` process (its outbox loop beside the tick)
   and a local HTTP receiver that checks every signature with the Standard Webhooks
   verification; one team rule sends task.failed to the receiver. This process fails
   --events tasks one after the other through the engine's own services (claim, then
   finish as failed, as a worker does), at random gaps of 0.05 to 0.3 s so that the
   failures fall anywhere in the loop's cycle, and notes the wall-clock time each
   failure committed; the receiver notes when its webhook arrived. Printed: p50 / p95 /
   worst of (arrived - failed), for the outbox loop's default interval (0.2 s) and a
   longer one (0.5 s), beside the goal (p95 under 2 s).

2. Finish-path cost. A fan-out of --width subtasks, each with one automatic retry, all
   failing: every subtask's last failure emits subtask.retries_exhausted and the task's
   end task.failed (rules play no part in this path: the insert is the whole cost; one
   rule matching every failure is on). Timed in this process through the same services
   with the event recorder on and off, interleaved, median of 3; goal: within 5 %.

Usage, from the project root:
    .venv/bin/python benchmarks/notify_latency.py [--database sqlite|postgres|URL]
        [--events 200] [--width 1000] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import common

GOAL_P95 = 2.0
GOAL_FINISH_RATIO = 1.05


class Receiver:
    """Verifies each webhook and notes its arrival by the failed task's id."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrived: dict[int, float] = {}
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                from standardwebhooks import Webhook, WebhookVerificationError

                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                now = time.time()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = Webhook(receiver.secret).verify(raw, headers)
                except WebhookVerificationError:
                    receiver.rejected += 1
                    self.send_response(401)
                else:
                    receiver.arrived.setdefault(body["data"].get("id"), now)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = common.free_port(18850, 18899)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _one_step_definition() -> str:
    from taskcenter.tasks import services
    from taskcenter.tasks.models import TaskDefinition

    name = "Notify latency probe"
    if not TaskDefinition.objects.filter(name=name).exists():
        step = {"key": "s0", "name": "probe", "kind": "SHELL_TASK", "action": {"command": "false"}}
        services.definition_create_from_data(name=name, spec={"subtasks": [step]})
    return name


def _fail_one(definition: str) -> tuple[int, float]:
    """Start a one-step task and fail its attempt as a worker would; (task id, committed)."""
    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import SubtaskInstance

    task = verbs.task_start(definition_name=definition)
    subtask = SubtaskInstance.objects.get(task=task)
    claimed = services.attempt_claim(subtask_id=subtask.pk, attempt=subtask.attempt, executor="b")
    assert claimed is not None
    services.attempt_finish(
        subtask_id=subtask.pk, attempt=subtask.attempt, task_id=task.pk, succeeded=False
    )
    return task.pk, time.time()


def latency(database: str, tmp: Path, events: int, interval: float) -> dict:
    from django.contrib.auth.models import User

    from taskcenter.notifications import verbs
    from taskcenter.notifications.inputs import parse_channel, parse_rule
    from taskcenter.notifications.models import Channel, Rule

    receiver = Receiver()
    # A superuser: a rule sends only what its owner may see.
    admin, _ = User.objects.update_or_create(
        username="bench-notify", defaults={"is_superuser": True}
    )
    Rule.objects.all().delete()
    Channel.objects.all().delete()
    created = verbs.channel_create(
        actor=admin,
        data=parse_channel(
            {"name": "bench", "kind": "webhook", "url": f"http://127.0.0.1:{receiver.port}/"}
        ),
    )
    receiver.secret = created.secret or ""
    verbs.rule_create(
        actor=admin,
        owner=admin,
        personal=False,
        data=parse_rule(
            {"channelId": created.channel.pk, "events": ["task.failed"]}, Channel.objects.all()
        ),
    )
    env = {
        **os.environ,
        "TASKCENTER_NOTIFY_INTERVAL": str(interval),
        # Every event goes out on its own: a benchmark of latency, not of the folding.
        "TASKCENTER_NOTIFY_FLOOD_LIMIT": str(events * 2),
        "TASKCENTER_REAPER_INTERVAL": "3600",
    }
    scheduler = subprocess.Popen(
        [sys.executable, str(common.ROOT / "manage.py"), "run_scheduler"],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "scheduler.log", "ab"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    try:
        definition = _one_step_definition()
        # Wait until the scheduler's loop runs: a test message arrives (it has no task id).
        verbs.channel_test(actor=admin, channel=created.channel)
        deadline = time.time() + 120
        while None not in receiver.arrived and time.time() < deadline:
            time.sleep(0.1)
        failed: dict[int, float] = {}
        for _ in range(events):
            task_id, at = _fail_one(definition)
            failed[task_id] = at
            time.sleep(random.uniform(0.05, 0.3))
        deadline = time.time() + 60
        while len(receiver.arrived.keys() & failed.keys()) < events and time.time() < deadline:
            time.sleep(0.1)
    finally:
        common.stop_group(scheduler)
        receiver.server.shutdown()
    waits = [receiver.arrived[t] - at for t, at in failed.items() if t in receiver.arrived]
    if len(waits) < events:
        print((tmp / "scheduler.log").read_text()[-3000:], file=sys.stderr)
    return {
        "interval": interval,
        "arrived": len(waits),
        "events": events,
        "p50": common.percentile(waits, 50) if waits else None,
        "p95": common.percentile(waits, 95) if waits else None,
        "max": max(waits) if waits else None,
        "rejected": receiver.rejected,
    }


def finish_cost(width: int) -> dict:
    """Seconds to fail every subtask of a 1 -> width fan-out twice (one retry each)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from taskcenter.tasks import events, services, verbs
    from taskcenter.tasks.models import SubtaskInstance, SubtaskStatus

    def one_run() -> float:
        task = verbs.task_start(
            definition_name="Benchmark fan-out", parameters={"width": width}, retry_count=1
        )
        elapsed = 0.0
        while True:
            ready = list(
                SubtaskInstance.objects.filter(task=task, status=SubtaskStatus.READY).values_list(
                    "pk", "attempt", "name"
                )
            )
            if not ready:
                return elapsed
            for pk, attempt, name in ready:
                started = time.perf_counter()
                services.attempt_claim(subtask_id=pk, attempt=attempt, executor="b")
                # The root succeeds (so that the fan-out runs); every leaf fails.
                services.attempt_finish(
                    subtask_id=pk, attempt=attempt, task_id=task.pk, succeeded=name == "start"
                )
                elapsed += time.perf_counter() - started

    from django.contrib.auth.models import User

    from taskcenter.notifications.models import Rule

    owner, _ = User.objects.update_or_create(
        username="bench-notify", defaults={"is_superuser": True}
    )
    Rule.objects.create(owner=owner, personal=False, events=[])  # every event, to the bell
    # Interleaved, so that a machine whose load drifts weighs on both alike.
    recorder = events.register_recorder(None)
    off: list[float] = []
    on: list[float] = []
    try:
        for _ in range(3):
            events.register_recorder(None)
            off.append(one_run())
            events.register_recorder(recorder)
            on.append(one_run())
        # Statements, which the machine's load does not move: one more run of each, counted.
        statements = {}
        for name, active in (("off", None), ("on", recorder)):
            events.register_recorder(active)
            with CaptureQueriesContext(connection) as queries:
                one_run()
            statements[name] = len(queries)
    finally:
        events.register_recorder(recorder)
    return {
        "width": width,
        "off": common.median(off),
        "on": common.median(on),
        "statements_off": statements["off"],
        "statements_on": statements["on"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database")
    parser.add_argument("--broker", default="memory://")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--only", choices=["latency", "finish"], help="run one part only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with common.temporary_setup(args, "tc-notify-") as (tmp, database):
        from taskcenter.tasks import enqueue

        enqueue.register_attempt_sender(lambda attempts: None)  # this process plays the worker
        print(f"database: {common.describe_database(database)}; load {os.getloadavg()[0]:.1f}")
        if args.only != "finish":
            report_latency([latency(database, tmp, args.events, i) for i in (0.2, 0.5)], args)
        if args.only != "latency":
            report_finish(finish_cost(args.width), args)


def _save(args, name: str, figures) -> None:
    if args.json:
        saved = json.loads(args.json.read_text()) if args.json.exists() else {}
        saved.setdefault("notify_latency", {})[name] = figures
        args.json.write_text(json.dumps(saved, indent=2) + "\n")


def report_latency(runs: list[dict], args) -> None:
    print("\nFrom a task's failure to its webhook arriving (seconds)")
    common.print_table(
        ["outbox interval", "arrived", "p50", "p95", "worst", "goal p95", "verdict"],
        [
            [
                f"{run['interval']:g} s",
                f"{run['arrived']}/{run['events']}",
                f"{run['p50']:.3f}",
                f"{run['p95']:.3f}",
                f"{run['max']:.3f}",
                f"{GOAL_P95:g}",
                common.verdict(run["p95"] is not None and run["p95"] < GOAL_P95),
            ]
            for run in runs
        ],
    )
    _save(args, "latency", runs)


def report_finish(cost: dict, args) -> None:
    ratio = cost["on"] / cost["off"]
    print(f"\nFailing a 1 -> {cost['width']} fan-out (two attempts per subtask), median of 3")
    common.print_table(
        ["events", "seconds", "statements", "ratio", "goal", "verdict"],
        [
            [
                "off (no recorder)",
                f"{cost['off']:.2f}",
                str(cost["statements_off"]),
                "1.00",
                "",
                "",
            ],
            [
                "on (one rule, every failure)",
                f"{cost['on']:.2f}",
                str(cost["statements_on"]),
                f"{ratio:.3f}",
                f"<= {GOAL_FINISH_RATIO:g}",
                common.verdict(ratio <= GOAL_FINISH_RATIO),
            ],
        ],
    )
    _save(args, "finish", {**cost, "ratio": ratio})


if __name__ == "__main__":
    main()
