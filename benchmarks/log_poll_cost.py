"""What one live log poll costs the web server: CPU and SQL statements per request.

The log page polls `/tasks/<id>/subtasks/<id>/log/?offset=N` every second for every open
tail, so under load this request is most of the traffic (200 of the load run's 250
virtual users do nothing else). The script signs a user in, starts a task whose subtask
is RUNNING with a log, and sends the poll through Django's whole stack (middleware,
session, authentication, view, template) by calling the WSGI application as the web
server does (database connections kept between requests, as `serve` keeps them):

* idle:  offset at the end of the log (nothing new: most polls of a quiet log);
* new:   offset 4 KB before the end (new text to render).

Each case is measured twice: through the whole view (the session forgotten before each
request, as for a session's first poll of a log) and through the shortcut that a session
already let in to the log takes (taskcenter.dashboard.log_poll).

Printed for each: CPU of this process per request (time.process_time; the database
server's own CPU is not in it), wall time, and SQL statements per request. `--profile`
also prints cProfile's top functions for the idle poll.

Usage, from the project root:
    .venv/bin/python benchmarks/log_poll_cost.py [--database sqlite|postgres|URL]
        [--requests 2000] [--profile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--broker", default=None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # Connections kept between requests, as `serve` keeps them (taskcenter.webserver).
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    with common.temporary_setup(args, "tc-log-poll-") as (_tmp, database):
        task_id, subtask_id, size = _running_subtask_with_log()
        get = _signed_in_client()
        from taskcenter.dashboard import log_poll

        base = f"/tasks/{task_id}/subtasks/{subtask_id}/log/"
        urls = {"idle": f"{base}?offset={size}", "new": f"{base}?offset={size - 4096}"}
        cases = {}
        for label, url in urls.items():
            cases[f"{label}, whole view"] = (url, log_poll.forget_all)
            cases[f"{label}, shortcut"] = (url, lambda: None)
        figures: dict = {"database": common.describe_database(database)}
        rows = []
        for label, (url, before) in cases.items():
            status, cpu_ms, wall_ms, queries = _measure(get, url, args.requests, before)
            figures[label] = {
                "status": status,
                "cpu_ms": round(cpu_ms, 3),
                "wall_ms": round(wall_ms, 3),
                "queries": queries,
            }
            rows.append([label, str(status), f"{cpu_ms:.2f}", f"{wall_ms:.2f}", f"{queries:g}"])
        print(f"database: {figures['database']}; {args.requests} requests per case")
        common.print_table(
            ["log poll", "status", "CPU ms/request", "wall ms/request", "SQL/request"], rows
        )
        if args.profile:
            _profile(get, urls["idle"], args.requests)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _running_subtask_with_log() -> tuple[int, int, int]:
    """A started task's first subtask, claimed as a worker would, with 64 KB of log."""
    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import SubtaskInstance

    task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 600})
    subtask = SubtaskInstance.objects.filter(task=task).order_by("pk").first()
    assert subtask is not None
    services.attempt_claim(subtask_id=subtask.pk, attempt=subtask.attempt, executor="bench")
    line = b"2026-11-30 12:00:00 copying block 0000 of 9999 ........................\n"
    for _ in range(64):
        services.log_append(subtask_id=subtask.pk, attempt=subtask.attempt, data=line * 14)
    subtask.refresh_from_db()
    return task.pk, subtask.pk, subtask.log_size


def _signed_in_client():
    """A WSGI caller with a signed-in operator's session cookie and htmx's header."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from taskcenter.accounts import roles

    user, created = User.objects.get_or_create(username="log-poll-bench")
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=roles.MANAGER))
    signed_in = Client()
    signed_in.force_login(user)
    cookie = f"sessionid={signed_in.cookies['sessionid'].value}"

    def get(url: str) -> int:
        return common.wsgi_get(url, HTTP_COOKIE=cookie, HTTP_HX_REQUEST="true")

    return get


def _measure(get, url: str, count: int, before) -> tuple[int, float, float, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(50):  # warm-up: templates compiled, caches filled
        before()
        get(url)
    before()
    with CaptureQueriesContext(connection) as captured:
        status = get(url)
    queries = len(captured)
    if os.environ.get("TC_SHOW_SQL"):
        for query in captured.captured_queries:
            print("   ", query["sql"][:160])
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        before()
        get(url)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return status, cpu * 1000 / count, wall * 1000 / count, queries


def _profile(get, url: str, count: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
