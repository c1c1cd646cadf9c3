"""What each kind of request of the load run costs the web server: CPU and statements.

`benchmarks/load_locust.py --waiters 100` saturates the 2-core machine it shares with its
server, so what decides its times is the CPU each request takes. This script seeds what
the load run seeds (seed_demo's history, an operator and a viewer with sessions, a live
task whose log grows, a HENGSHI plan whose newest run is running) and sends each kind of
request the run sends, one at a time, in two ways:

* **wsgi**: in this process, as the web server calls Django's WSGI application
  (connections kept 60 s, as `serve` keeps them): CPU of the process per request
  (time.process_time; the database server's own CPU is not in it) and SQL statements per
  request. `--profile KIND` prints cProfile's top functions of one kind.
* **server**: through a real web process (`python -m taskcenter.webserver --listen`:
  uvicorn, the edge, its thread pool) on one kept-alive connection: the CPU the web
  process used per request (psutil), so what uvicorn and the edge add is in it too.

Then the load run's mix (the rates below, from the locustfile: 200 tails a second, 50
operators' actions every 1-3 s, the contexts list as often as the last run's waiters
asked for it) turned into the web processes' CPU a second: what the run asks of them.

Usage, from the project root:
    .venv/bin/python benchmarks/load_request_cost.py [--database sqlite|postgres|URL]
        [--history 500] [--requests 300] [--port 8610] [--mode both|wsgi|server]
        [--profile KIND] [--json out.json] [--baseline before.json]
A PostgreSQL database named ..._cost is dropped and made again at the start of each run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import common

LOG_LINE = b"2026-12-07 12:00:00 copying block 0000 of 9999 ........................\n"
CONTEXTS_URL = "/api/contexts?entityGroup=LOAD&jobStatusList=PENDING,RUNNING&limit=1"
# Requests a second the load run sends of each kind (load_locust.py): 200 tails poll every
# second, almost always with a new line (a live log gets one a second); 50 operators act
# every 2 s on average (weights 4 list, 3 detail + its live poll, 1 audit, 2 API list,
# 2 API detail, 1 retry with its API list); the contexts list as often as the 100 waiters
# asked in the last measured run (1,645 in 2 minutes).
RATES = {
    "log poll, new line (shortcut)": 200.0,
    "page: task list": 25 * 4 / 13,
    "page: task detail": 25 * 3 / 13,
    "page: detail live poll": 25 * 3 / 13,
    "page: audit": 25 * 1 / 13,
    "api: task list": 25 * 3 / 13,
    "api: task detail": 25 * 2 / 13,
    "api: hengshi running contexts": 1645 / 120,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--broker", default=None)
    parser.add_argument("--history", type=int, default=500, help="seed_demo --tasks")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--port", type=int, default=8610, help="the web process's port")
    parser.add_argument("--mode", choices=("both", "wsgi", "server"), default="both")
    parser.add_argument("--profile", help="a request kind to profile (wsgi)")
    parser.add_argument("--only", help="measure only the kinds whose label contains this")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    if args.baseline:
        args.baseline = args.baseline.resolve()
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    if args.database not in (None, "sqlite"):
        # Each run seeds from nothing; only a database whose name ends in "_cost" is dropped.
        url = common.database_url(args.database, Path("."))
        common.drop_postgres_database(url, only_if_named="_cost")
    with common.temporary_setup(args, "tc-load-cost-") as (tmp, database):
        cases, cookies = _seed(args.history)
        if args.only:
            cases = {label: urls for label, urls in cases.items() if args.only in label}
        figures: dict = {"database": common.describe_database(database)}
        if args.mode in ("both", "wsgi"):
            call = _wsgi_caller(cookies)
            for label, urls in cases.items():
                figures.setdefault(label, {}).update(_measure_wsgi(call, urls, args.requests))
            if args.profile:
                _profile(call, cases[args.profile], args.requests)
        if args.mode in ("both", "server"):
            with _web_process(tmp, args.port) as (pid, connect):
                for label, urls in cases.items():
                    measured = _measure_server(pid, connect, cookies, urls, args.requests)
                    figures.setdefault(label, {}).update(measured)
        figures["mix"] = _mix(figures)
        figures["load average"] = os.getloadavg()[0]
        _print(figures, args)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")


# --- What the load run seeds ------------------------------------------------------------------


def _seed(history: int) -> tuple[dict, dict]:
    """The cases (label -> [(who, URL)], sent in turn) and the cookies by who."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from taskcenter.accounts import roles
    from taskcenter.tasks.models import TaskInstance

    call_command("seed_demo", tasks=history, seed=11, verbosity=0)
    cookies = {}
    for who, role in (("operator", roles.MANAGER), ("viewer", roles.VIEWER)):
        user = User.objects.create(username=f"cost-{who}")
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        cookies[who] = client.cookies["sessionid"].value
    task_id, subtask_id, size = _live_log()
    _waited_plan()
    tasks = list(TaskInstance.objects.order_by("-id").values_list("pk", flat=True)[:500:25])
    log = f"/tasks/{task_id}/subtasks/{subtask_id}/log/"
    lists = ["", "?status=FAILED", "?status=SUCCESSFUL&size=50", "?name=Migrate", "?page=3"]
    statuses = ["FAILED", "RUNNING", "SUCCESSFUL"]
    op = "operator"
    cases = {
        "log poll, new line (shortcut)": [(op, f"{log}?offset={size - len(LOG_LINE)}")],
        "log poll, nothing new (shortcut)": [(op, f"{log}?offset={size}")],
        "page: task list": [(op, f"/tasks/{query}") for query in lists],
        "page: task detail": [(op, f"/tasks/{pk}/") for pk in tasks],
        "page: detail live poll": [(op, f"/tasks/{pk}/live/") for pk in tasks],
        "page: audit": [(op, "/audit/")],
        "api: task list": [
            (op, f"/api/v2/tasks/instances?status={status}&pageSize=10") for status in statuses
        ],
        "api: task detail": [(op, f"/api/v2/tasks/instances/{pk}") for pk in tasks],
        "api: hengshi running contexts": [("viewer", CONTEXTS_URL)],
    }
    return cases, cookies


def _live_log() -> tuple[int, int, int]:
    """A running task's first subtask, claimed as a worker would, with 64 lines of log."""
    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import SubtaskInstance

    task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 600})
    subtask = SubtaskInstance.objects.filter(task=task).order_by("pk").first()
    assert subtask is not None
    services.attempt_claim(subtask_id=subtask.pk, attempt=subtask.attempt, executor="bench")
    for _ in range(64):
        services.log_append(subtask_id=subtask.pk, attempt=subtask.attempt, data=LOG_LINE)
    subtask.refresh_from_db()
    return task.pk, subtask.pk, subtask.log_size


def _waited_plan() -> None:
    """The HENGSHI plan the waiters poll, with 50 runs of which the newest runs."""
    import hengshi_wait_cost

    hengshi_wait_cost._seed_plan_runs(50)


# --- In process ----------------------------------------------------------------------------------


def _wsgi_caller(cookies: dict):
    def call(who: str, url: str) -> int:
        return common.wsgi_get(url, HTTP_COOKIE=f"sessionid={cookies[who]}")

    return call


def _measure_wsgi(call, urls: list, count: int) -> dict:
    for who, url in urls * max(1, 20 // len(urls)):  # warm-up: caches, connections, shortcut
        call(who, url)
    with _counted() as statements:
        outcomes = {call(who, url) for who, url in urls}
    cpu = time.process_time()
    for number in range(count):
        call(*urls[number % len(urls)])
    cpu = time.process_time() - cpu
    return {
        "status": ",".join(str(s) for s in sorted(outcomes)),
        "wsgi_cpu_ms": round(cpu * 1000 / count, 3),
        "queries": round(len(statements) / len(urls), 2),
    }


@contextlib.contextmanager
def _counted():
    from django.db import connection

    sent: list[str] = []

    def note(execute, sql, params, many, context):
        sent.append(sql)
        if os.environ.get("TC_SHOW_SQL"):
            print("   ", sql[:200])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        yield sent


def _profile(call, urls: list, count: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on the database
    profiler.enable()
    for number in range(count):
        call(*urls[number % len(urls)])
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


# --- Through a web process -----------------------------------------------------------------------


@contextlib.contextmanager
def _web_process(tmp: Path, port: int):
    """A web process on this database, as `serve` starts one: (its pid, a connector)."""
    import psutil
    from django.db import connections

    connections.close_all()
    log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcenter.webserver", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp,
        env=dict(os.environ, PYTHONPATH=str(common.ROOT)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    probe.close()
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the web process did not answer; see {tmp / 'web.log'}")
            time.sleep(0.3)
        yield psutil.Process(process.pid), lambda: http.client.HTTPConnection("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _measure_server(process, connect, cookies: dict, urls: list, count: int) -> dict:
    connection = connect()

    def call(who: str, url: str) -> int:
        connection.request("GET", url, headers={"Cookie": f"sessionid={cookies[who]}"})
        answer = connection.getresponse()
        answer.read()
        return answer.status

    for who, url in urls * max(1, 20 // len(urls)):
        call(who, url)
    before = process.cpu_times()
    for number in range(count):
        call(*urls[number % len(urls)])
    after = process.cpu_times()
    connection.close()
    used = (after.user - before.user) + (after.system - before.system)
    return {"server_cpu_ms": round(used * 1000 / count, 3)}


# --- The load run's mix --------------------------------------------------------------------------


def _mix(figures: dict) -> dict:
    """The web processes' CPU a second (ms) that the load run's rates ask for."""
    mix = {}
    for key in ("wsgi_cpu_ms", "server_cpu_ms"):
        if all(key in figures.get(label, {}) for label in RATES):
            mix[key] = round(sum(rate * figures[label][key] for label, rate in RATES.items()))
    return mix


def _print(figures: dict, args) -> None:
    before = json.loads(args.baseline.read_text()) if args.baseline else None
    print(
        f"database: {figures['database']}; history {args.history} tasks; {args.requests} "
        f"requests per kind; load average {figures['load average']:.2f}"
        + (f" (before: {before['load average']:.2f})" if before else "")
    )
    headers = ["request", "answer", "per s in the run"]
    columns = [("wsgi_cpu_ms", "CPU ms (wsgi)"), ("server_cpu_ms", "CPU ms (server)")]
    columns.append(("queries", "SQL"))
    for _key, name in columns:
        headers += [f"{name} before", f"{name} now"] if before else [name]
    rows = []
    for label, now in figures.items():
        if not isinstance(now, dict) or label == "mix":
            continue
        row = [label, now.get("status", ""), f"{RATES.get(label, 0):.1f}"]
        for key, _name in columns:
            if before:
                row.append(_cell((before.get(label) or {}).get(key)))
            row.append(_cell(now.get(key)))
        rows.append(row)
    common.print_table(headers, rows)
    for key, name in (("wsgi_cpu_ms", "in process"), ("server_cpu_ms", "through a web process")):
        if key in figures["mix"]:
            was = f" (before: {before['mix'][key]} ms)" if before and key in before["mix"] else ""
            print(f"the load run's mix, {name}: {figures['mix'][key]} ms of CPU a second{was}")


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, int) else f"{value:.2f}"


if __name__ == "__main__":
    main()
