"""What a waiting HENGSHI client costs the web server: CPU and SQL statements per request.

A HENGSHI client that waits for its runs asks, over and over, for the newest running
context of a plan (`GET /api/contexts?entityGroup=...&jobStatusList=PENDING,RUNNING&limit=1`)
and then waits on its logs (`GET /api/contexts/<id>/logs`, block=true). Behind `serve` the
wait is held by the web process's event loop (taskcenter.edge): it costs the process a
share of the watch's poll while it is held, and its answer when the run ends (the run's
answer rendered once for all its waits and each caller's access checked; on earlier code,
`answer_after_wait` once per wait). The script seeds seed_demo's history, a plan with `--contexts` runs of which the
newest still runs, and `--waiters` viewers with sessions of their own, then measures:

* the contexts list the clients poll, through Django's whole stack (middleware, session,
  authentication, view) called as the web server calls the WSGI application, database
  connections kept between requests as `serve` keeps them;
* the logs request a waiting client sends (what the thread does before handing the wait
  over);
* the watch's poll (one statement for every wait of a process) and the answers of
  `--waiters` waits on one run that ends (what the event loop's database threads do when
  a run that 100 clients wait on ends), per wait.

Printed for each: CPU of this process per request (time.process_time; the database
server's own CPU is not in it), wall time and SQL statements per request. `--explain`
also prints PostgreSQL's plan (EXPLAIN ANALYZE, BUFFERS) of the list's statements,
`--profile` cProfile's top functions of the list. `--json` writes the figures; with
`--baseline earlier.json` (the same command on earlier code) the two are printed side by
side.

Usage, from the project root:
    .venv/bin/python benchmarks/hengshi_wait_cost.py [--database sqlite|postgres|URL]
        [--history 2000] [--contexts 300] [--waiters 100] [--requests 500]
        [--explain] [--profile] [--json out.json] [--baseline before.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import common

LIST_URL = "/api/contexts?entityGroup=LOAD&jobStatusList=PENDING,RUNNING&limit=1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--broker", default=None)
    parser.add_argument("--history", type=int, default=2000, help="seed_demo --tasks")
    parser.add_argument("--contexts", type=int, default=300, help="runs of the waited plan")
    parser.add_argument("--waiters", type=int, default=100)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    if args.baseline:
        args.baseline = args.baseline.resolve()
    # Connections kept between requests, as `serve` keeps them (taskcenter.webserver).
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    with common.temporary_setup(args, "tc-hengshi-wait-") as (_tmp, database):
        from django.core.management import call_command

        call_command("seed_demo", tasks=args.history, seed=11, verbosity=0)
        running = _seed_plan_runs(args.contexts)
        cookies = _viewer_sessions(args.waiters)
        get = _wsgi_caller()
        cookie = cookies[0]
        cases = {
            "contexts list (running, limit=1)": lambda: get(LIST_URL, cookie),
            "contexts list (all, limit=10)": lambda: get("/api/contexts?limit=10", cookie),
            "logs, wait handed over": lambda: get(
                f"/api/contexts/{running}/logs", cookie, edge=True
            ),
        }
        figures: dict = {"database": common.describe_database(database)}
        for label, call in cases.items():
            figures[label] = _measure(call, args.requests)
        figures["watch poll (all waits)"] = _measure(lambda: _watch_poll([running]), args.requests)
        figures[f"answers after a wait, per wait ({args.waiters} waiters)"] = _answers_cost(
            running, args.waiters, max(1, args.requests // args.waiters)
        )
        figures["load average"] = os.getloadavg()[0]
        _print(figures, args)
        if args.explain:
            _explain(cookie)
        if args.profile:
            _profile(lambda: get(LIST_URL, cookie), args.requests)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _seed_plan_runs(count: int) -> int:
    """A plan (LOAD/waited) with `count` runs: all ended but the newest, which runs with its
    first step started. Returns the running context's id."""
    from django.utils import timezone

    from taskcenter.schedules import inputs, verbs
    from taskcenter.tasks.models import SubtaskInstance, TaskInstance, TaskStatus

    body = {
        "entityGroup": "LOAD",
        "entityKey": "waited",
        "planItems": [{"triggerType": "ONCE"}],
        "execDetail": {
            "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
            "jobParams": {"notebook": 1},
        },
    }
    context_ids = []
    for _ in range(count):
        submitted = verbs.plan_submit(actor=None, data=inputs.plan_input(body))
        context_ids.extend(submitted.context_ids)
    now = timezone.now()
    ended, newest = context_ids[:-1], context_ids[-1]
    SubtaskInstance.objects.filter(task_id__in=ended).update(
        status="SUCCESSFUL", start_time=now, finish_time=now
    )
    TaskInstance.objects.filter(pk__in=ended).update(
        status=TaskStatus.SUCCESSFUL, start_time=now, finish_time=now
    )
    first = SubtaskInstance.objects.filter(task_id=newest).order_by("pk").first()
    assert first is not None
    SubtaskInstance.objects.filter(pk=first.pk).update(status="RUNNING", start_time=now)
    return newest


def _viewer_sessions(count: int) -> list[str]:
    """A viewer with a session of their own per waiting client: their session cookies."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from taskcenter.accounts import roles

    viewers = Group.objects.get(name=roles.VIEWER)
    cookies = []
    for number in range(count):
        viewer = User.objects.create(username=f"bench-viewer-{number}")
        viewer.set_unusable_password()
        viewer.save()
        viewer.groups.add(viewers)
        client = Client()
        client.force_login(viewer)
        cookies.append(client.cookies["sessionid"].value)
    return cookies


def _wsgi_caller():
    """A caller through the WSGI application (common.wsgi_get) with a session's cookie."""
    from taskcenter.api import waits

    def get(url: str, cookie: str, *, edge: bool = False) -> int:
        # Behind the edge, which holds the wait, the view answers at once.
        extra = {waits.EDGE_KEY: True} if edge else {}
        return common.wsgi_get(url, HTTP_COOKIE=f"sessionid={cookie}", **extra)

    return get


def _watch_poll(context_ids: list[int]) -> int:
    from taskcenter.edge import _still_running

    return len(_still_running(context_ids))


def _measure(call, count: int) -> dict:
    for _ in range(20):  # warm-up: caches filled, connections open
        call()
    with _counted() as statements:
        outcome = call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "outcome": outcome,
        "cpu_ms": round(cpu * 1000 / count, 3),
        "wall_ms": round(wall * 1000 / count, 3),
        "queries": len(statements),
    }


@contextlib.contextmanager
def _counted():
    """The statements sent on this thread's connection meanwhile (a list, filled as they go;
    Django's own query log is emptied at each request's start, so it cannot count them)."""
    from django.db import connection

    sent: list[str] = []

    def note(execute, sql, params, many, context):
        sent.append(sql)
        if os.environ.get("TC_SHOW_SQL"):
            print("   ", sql[:200])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        yield sent


def _answers_cost(context_id: int, waiters: int, rounds: int) -> dict:
    """The answers the event loop gives when a run `waiters` clients wait on ends, as the
    edge asks for them (taskcenter.edge.Edge._answer), per wait."""
    from django.contrib.auth.models import User

    from taskcenter import edge
    from taskcenter.api import waits

    users = User.objects.filter(username__startswith="bench-viewer-").order_by("pk")
    held = [waits.Wait(user.pk, context_id, "logs") for user in users[:waiters]]
    shared = getattr(edge, "_render_run", None)

    def answer_all() -> int:
        if shared is None:  # earlier code: each wait rendered on its own
            return len([edge._render(wait) for wait in held])
        # As the edge does: the run's answer rendered once, each caller's access checked.
        body = shared(held[0])
        return len([body for wait in held if edge._may_still_see(wait)])

    answer_all()
    with _counted() as statements:
        answered = answer_all()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        answer_all()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per = rounds * len(held)
    return {
        "outcome": answered,
        "cpu_ms": round(cpu * 1000 / per, 3),
        "wall_ms": round(wall * 1000 / per, 3),
        "queries": round(len(statements) / len(held), 2),
    }


def _print(figures: dict, args) -> None:
    before = json.loads(args.baseline.read_text()) if args.baseline else None
    print(
        f"database: {figures['database']}; history {args.history} tasks, {args.contexts} "
        f"contexts of the waited plan; {args.requests} requests per case; load average "
        f"{figures['load average']:.2f}"
        + (f" (before: {before['load average']:.2f})" if before else "")
    )
    rows = []
    for label, now in figures.items():
        if not isinstance(now, dict):
            continue
        row = [label, str(now["outcome"])]
        if before is not None:
            was = before.get(label) or {"cpu_ms": 0, "wall_ms": 0, "queries": 0}
            row += [f"{was['cpu_ms']:.2f}", f"{now['cpu_ms']:.2f}"]
            row += [f"{was['wall_ms']:.2f}", f"{now['wall_ms']:.2f}"]
            row += [f"{was['queries']:g}", f"{now['queries']:g}"]
        else:
            row += [f"{now['cpu_ms']:.2f}", f"{now['wall_ms']:.2f}", f"{now['queries']:g}"]
        rows.append(row)
    if before is not None:
        headers = ["request", "answer", "CPU ms before", "CPU ms now"]
        headers += ["wall ms before", "wall ms now", "SQL before", "SQL now"]
    else:
        headers = ["request", "answer", "CPU ms", "wall ms", "SQL"]
    common.print_table(headers, rows)


def _explain(cookie: str) -> None:
    """PostgreSQL's plans of the list's statements (page and count), as the view sends them."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies["sessionid"] = cookie
    with CaptureQueriesContext(connection) as captured:
        client.get(LIST_URL)
    if connection.vendor != "postgresql":
        print("EXPLAIN: PostgreSQL only")
        return
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            if "schedules_fire" not in query["sql"]:
                continue
            print("\n" + query["sql"][:300] + " ...")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print("   ", line)


def _profile(call, count: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
