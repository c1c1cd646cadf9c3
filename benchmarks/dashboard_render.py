"""Dashboard render times: the server's, and the browser's time to a usable detail page.

What is measured:

* server: wall time of django.test.Client GETs by a signed-in operator (the whole Django
  stack: middleware, session, access checks, selectors, templates), after one unmeasured
  warm-up request, --repeat times each:
    - the task list, 50 rows (?size=50), plain and filtered (?status=FAILED&size=50),
      over --history finished tasks from seed_demo (default 2,000);
    - the detail page (flow view, log view) of tasks of 100, 1,000 and 5,000 subtasks
      ("Benchmark fan-out" DAGs, partly run: some subtasks successful, some failed);
    - the detail page's live poll when nothing changed (204) and when something did.
* browser: headless Chromium (Playwright, Debian's chromium) against `runserver` on the
  same database: from navigation start to the DAG being drawn, sized and clickable
  (dag.js's ready mark, then a trial click on a node), median of --browser-repeat loads,
  for 1,000 and 5,000 subtasks; and the time from clicking a node to its panel.

Targets: list p95 <= 100 ms; 1,000-subtask detail p95 <= 300 ms on the server and
< 1 s to usable in Chromium; 5,000 still usable (reported).

Usage, from the project root:
    .venv/bin/python benchmarks/dashboard_render.py [--database sqlite|postgres|URL]
        [--repeat 30] [--history 2000] [--sizes 100,1000,5000] [--no-browser]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import common

POSTGRES_DASHBENCH = "postgres://postgres@127.0.0.1:5432/taskcenter_dashbench"
PASSWORD = "bench-Pa55word!"
LIST_TARGET_MS, DETAIL_TARGET_MS, BROWSER_TARGET_MS = 100.0, 300.0, 1000.0


def timed(client, url: str, repeat: int, **headers) -> tuple[list[float], int, int]:
    response = client.get(url, **headers)  # warm-up, unmeasured
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, **headers)
        if response.streaming:
            b"".join(response.streaming_content)
        times.append((time.perf_counter() - started) * 1000)
    return times, response.status_code, len(response.content) if not response.streaming else 0


def drive(task, *, fail_every: int = 0, limit: int | None = None) -> None:
    """Run READY attempts in-process with the engine-facing services (no worker)."""
    from taskcenter.tasks import services
    from taskcenter.tasks.models import SubtaskInstance

    done = 0
    while limit is None or done < limit:
        ready = list(
            SubtaskInstance.objects.filter(task=task, status="READY")
            .order_by("pk")
            .values_list("pk", "attempt", "series_id")[: (limit - done) if limit else None]
        )
        if not ready:
            return
        for pk, attempt, series in ready:
            services.attempt_claim(subtask_id=pk, attempt=attempt, executor="bench-host")
            ok = not (fail_every and series and series % fail_every == 0)
            services.attempt_finish(
                subtask_id=pk,
                attempt=attempt,
                succeeded=ok,
                log=f"step {series}: {'done' if ok else 'failed on purpose'}\n".encode(),
            )
            done += 1


def build_data(history: int, sizes: list[int]) -> dict[int, int]:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from taskcenter.accounts import roles
    from taskcenter.tasks import verbs

    started = time.perf_counter()
    call_command("seed_demo", tasks=history, verbosity=0)
    print(f"  seed_demo: {history} history tasks in {time.perf_counter() - started:.1f} s")
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    tasks: dict[int, int] = {}
    for size in sizes:
        started = time.perf_counter()
        task = verbs.task_start(
            definition_name="Benchmark fan-out",
            parameters={"width": size - 2},
            creator=user,
            name=f"Benchmark fan-out ({size} subtasks)",
        )
        # Partly run: the root, then part of the fan-out (60%, at most 800: the engine's
        # bookkeeping per finished subtask grows with the task), one in 97 failing.
        drive(task, fail_every=97, limit=1 + min(int((size - 2) * 0.6), 800))
        tasks[size] = task.pk
        print(f"  task #{task.pk}: {size} subtasks in {time.perf_counter() - started:.1f} s")
    return tasks


def server_times(tasks: dict[int, int], repeat: int) -> list[list[str]]:
    from django.test import Client

    from taskcenter.tasks import selectors

    client = Client()
    assert client.login(username="bench-operator", password=PASSWORD)
    rows: list[list[str]] = []

    def add(label, url, target, reps=repeat, **headers):
        times, status, size = timed(client, url, reps, **headers)
        p95 = common.percentile(times, 95)
        rows.append(
            [
                label,
                str(status),
                f"{size / 1024:.0f} KB" if size else "-",
                f"{common.median(times):.1f}",
                f"{p95:.1f}",
                f"{max(times):.1f}",
                f"<= {target:.0f}" if target else "",
                common.verdict(p95 <= target) if target else "",
            ]
        )

    add("list, 50 rows", "/tasks/?size=50", LIST_TARGET_MS)
    add("list, 50 rows, status=FAILED", "/tasks/?status=FAILED&size=50", LIST_TARGET_MS)
    add(
        "list, htmx partial",
        "/tasks/?size=50&sort=startTime,desc",
        LIST_TARGET_MS,
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="task-results",
    )
    add("audit, 50 rows", "/audit/", LIST_TARGET_MS)
    for size, pk in tasks.items():
        target = DETAIL_TARGET_MS if size <= 1000 else 0
        reps = repeat if size <= 1000 else max(5, repeat // 3)
        add(f"detail {size}, flow view", f"/tasks/{pk}/", target, reps)
        add(f"detail {size}, log view", f"/tasks/{pk}/?view=log", target, reps)
        task = selectors.task_get(task_id=pk)
        digest = _digest_for(task)
        add(
            f"detail {size}, live poll (no change)",
            f"/tasks/{pk}/live/?v={digest}",
            0,
            reps,
            HTTP_HX_REQUEST="true",
        )
        add(
            f"detail {size}, live poll (changed)",
            f"/tasks/{pk}/live/?v=stale",
            0,
            reps,
            HTTP_HX_REQUEST="true",
        )
    return rows


def _digest_for(task) -> str:
    from taskcenter.dashboard.presenters import digest
    from taskcenter.tasks import selectors

    return digest(task, selectors.task_subtask_states(task_id=task.pk))


def browser_times(tasks: dict[int, int], repeat: int, tmp: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    port = common.free_port()
    with common.signed_in_chromium(
        tmp, port=port, username="bench-operator", password=PASSWORD
    ) as (page, base):
        for size, pk in tasks.items():
            if size < 1000:
                continue
            ready, clickable, dcl, panel = [], [], [], []
            for attempt in range(repeat + 1):
                page.goto(f"{base}/tasks/{pk}/", wait_until="commit")
                page.wait_for_function("() => window.taskcenterDagReadyAt !== undefined")
                node = page.locator("#dag-svg [data-sid]").nth(size // 2)
                node.click(trial=True)
                now = page.evaluate("() => performance.now()")
                nav = page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                at = page.evaluate("() => window.taskcenterDagReadyAt")
                started = time.perf_counter()
                node.click()
                page.wait_for_function(
                    "(sid) => document.querySelector('#subtask-panel')?.dataset.sid === sid",
                    arg=node.get_attribute("data-sid"),
                )
                if attempt == 0:
                    continue  # warm-up
                panel.append((time.perf_counter() - started) * 1000)
                ready.append(at)
                clickable.append(now)
                dcl.append(nav)
            target = BROWSER_TARGET_MS if size <= 1000 else 0
            rows.append(
                [
                    f"detail {size}: DOMContentLoaded",
                    f"{common.median(dcl):.0f}",
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    f"detail {size}: DAG drawn and ready",
                    f"{common.median(ready):.0f}",
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    f"detail {size}: a node clickable",
                    f"{common.median(clickable):.0f}",
                    f"< {target:.0f}" if target else "",
                    common.verdict(common.median(clickable) < target) if target else "",
                ]
            )
            rows.append(
                [
                    f"detail {size}: click -> subtask panel",
                    f"{common.median(panel):.0f}",
                    "",
                    "",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--browser-repeat", type=int, default=5)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="dashbench-"))
    database = POSTGRES_DASHBENCH if args.database in ("postgres", "postgresql") else None
    database = database or common.database_url(args.database, tmp)
    if database.startswith("postgres"):
        common.drop_postgres_database(database, only_if_named="dashbench")
    common.prepare_environment(tmp=tmp, database=database)
    os.environ["TASKCENTER_DEMO_PASSWORD"] = PASSWORD
    (tmp / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise's root
    common.exit_on_sigterm()
    try:
        common.setup_django(database)
        print(f"dashboard render benchmark on {common.describe_database(database)}")
        tasks = build_data(args.history, sizes)
        print()
        print("Server render (django.test.Client, signed in as an operator), ms")
        common.print_table(
            ["request", "status", "size", "p50", "p95", "max", "target", "verdict"],
            server_times(tasks, args.repeat),
        )
        if not args.no_browser:
            print()
            print(
                f"Browser (headless Chromium, runserver, 1280x800), ms from navigation start, "
                f"median of {args.browser_repeat}"
            )
            common.print_table(
                ["measure", "ms", "target", "verdict"],
                browser_times(tasks, args.browser_repeat, tmp),
            )
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(tmp, ignore_errors=True)
        if database.startswith("postgres"):
            common.drop_postgres_database(database, only_if_named="dashbench")


if __name__ == "__main__":
    main()
