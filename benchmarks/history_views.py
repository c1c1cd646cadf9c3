"""The history grid and the timeline: server time and time to interactive in Chromium.

What is measured:

* server: wall time of django.test.Client GETs by a signed-in operator, after one
  unmeasured warm-up, --repeat times each:
    - a job's page with its history grid of 100 runs x 65 steps ("Rolling upgrade of
      observers", 20 observers per zone; runs partly failed, retried and rolled back),
      and the grid alone (its two queries and the table's string), each with the grid's
      cells as they are and, as the baseline, as they were drawn before they were made
      light (previous_render), in turns in the same run; and the HTML bytes of both;
    - the task page's timeline of a 1,000-subtask task ("Benchmark fan-out", one shard in
      50 failed, then retried: every attempt drawn), folded and with the fan-out expanded
      to 1,000 rows, and its live poll while the task runs;
    - the baselines beside them: the same job page at its default 25 runs, and the flow
      view of the same 1,000-subtask task (dashboard_render.py's page).
* browser: headless Chromium against `runserver` on the same database, median of
  --browser-repeat loads: from navigation start to the grid (the timeline) answering the
  keyboard (its tab stop set, focused, one arrow key moved the focus), and the time that
  first arrow key took (it measures every cell's place once).

Target: the grid at 100 x 65 renders in at most 300 ms on the server; the timeline at
1,000 subtasks too; both interactive in under a second in Chromium.

Usage, from the project root:
    .venv/bin/python benchmarks/history_views.py [--database sqlite|postgres|URL]
        [--repeat 20] [--browser-repeat 5] [--no-browser] [--ports 18700-18799]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import common

POSTGRES_GRIDBENCH = "postgres://postgres@127.0.0.1:5432/taskcenter_gridbench"
PASSWORD = "bench-Pa55word!"
JOB = "Rolling upgrade of observers"
SERVER_TARGET_MS, BROWSER_TARGET_MS = 300.0, 1000.0


def drive(task, *, fail_every: int = 0) -> None:
    """Run READY attempts in-process with the engine-facing services (no worker)."""
    from taskcenter.tasks import services
    from taskcenter.tasks.models import SubtaskInstance

    while True:
        ready = list(
            SubtaskInstance.objects.filter(task=task, status="READY")
            .order_by("pk")
            .values_list("pk", "attempt", "series_id")
        )
        if not ready:
            return
        for pk, attempt, series in ready:
            services.attempt_claim(subtask_id=pk, attempt=attempt, executor="bench-host")
            ok = attempt > 1 or not (fail_every and series and series % fail_every == 0)
            services.attempt_finish(subtask_id=pk, attempt=attempt, succeeded=ok)


def build_data() -> tuple[int, int]:
    """100 runs of the 65-step job, and a 1,000-subtask task with retried shards."""
    from django.contrib.auth.models import Group, User

    from taskcenter.accounts import roles
    from taskcenter.demo.history import attempts_not_sent
    from taskcenter.tasks import verbs

    user, _ = User.objects.get_or_create(username="bench-operator")
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    started = time.perf_counter()
    with attempts_not_sent():
        for index in range(100):
            task = verbs.task_start(definition_name=JOB, creator=user)
            drive(task, fail_every=17 + index % 40 if index % 3 == 0 else 0)
            if index % 6 == 0:
                verbs.task_retry(task_id=task.pk, actor=user)
                drive(task)
            elif index % 9 == 3:
                verbs.task_rollback(task_id=task.pk, actor=user)
                drive(task)
        print(f"  100 runs of {JOB!r} (65 steps) in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        wide = verbs.task_start(
            definition_name="Benchmark fan-out", parameters={"width": 998}, creator=user
        )
        drive(wide, fail_every=50)
        verbs.task_retry(task_id=wide.pk, actor=user)
        drive(wide)
    print(f"  task #{wide.pk}: 1,000 subtasks in {time.perf_counter() - started:.1f} s")
    return wide.pk, user.pk


def previous_render(runs, cells, *, task_prefix: str, job: str):
    """The baseline: the grid's cells as they were drawn before they were made light (a
    full tone class, a data-sid per cell for the keyboard, auto table layout), so both
    are measured in the same run on the same data."""
    from html import escape

    from django.utils import timezone
    from django.utils.safestring import mark_safe

    from taskcenter.dashboard import history_grid as grid
    from taskcenter.dashboard.presenters import task_label, task_tone

    tone_of = {letter: tone for tone, letter in grid.CELL_CLASS.items()}
    zone, now = timezone.get_current_timezone(), timezone.now()
    rows = grid.steps(runs, cells)
    out = [
        f'<table class="hgrid" id="history-grid" data-hgrid'
        f' aria-label="{escape(job)}: {len(rows)} steps by {len(runs)} runs">'
        '<thead><tr><th scope="col" class="hg-corner">Step</th>'
    ]
    for run in runs:
        label = task_label(run.status, run.operation)
        when = run.create_time.astimezone(zone).strftime("%m-%d %H:%M")
        title = f"#{run.pk} {label} · {run.cluster_name} · v{run.version} · {when}"
        out.append(
            f'<th scope="col" class="hg-run"><a class="tone-{task_tone(run.status, run.operation)}"'
            f' href="{task_prefix}{run.pk}/" data-sid="r{run.pk}" title="{escape(title)}">'
            f'<span class="hg-run-dot" aria-hidden="true"></span>'
            f'<span class="hg-run-id">#{run.pk}</span><span class="vh"> {escape(label)}</span></a></th>'
        )
    out.append("</tr></thead><tbody>")
    labels: dict = {}
    heads = [f"{task_prefix}{run.pk}/?view=log&amp;subtask=" for run in runs]
    for step in rows:
        out.append(f'<tr><th scope="row" class="hg-step" title="{escape(step.key)}">')
        out.append(escape(step.name))
        out.append("</th>")
        for run, head in zip(runs, heads, strict=True):
            cell = step.cells.get(run.pk)
            if cell is None:
                out.append('<td class="hg-none" title="Not in this run">')
                continue
            letter, text = grid._cell_text(cell, labels, now)
            out.append(
                f'<td><a class="tone-{tone_of[letter]}" href="{head}{cell.pk}"'
                f' data-sid="{cell.pk}" title="{text}"></a>'
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    return mark_safe("".join(out))


def timed(client, url: str, repeat: int) -> tuple[list[float], int]:
    response = client.get(url)  # warm-up, unmeasured
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return times, response.status_code


def server_times(wide: int, user_id: int, repeat: int, sizes: list[list[str]]) -> list[list[str]]:
    """Each request's times; the grid's HTML sizes, before and now, appended to `sizes`."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from taskcenter.accounts import access
    from taskcenter.dashboard import history_grid, jobs
    from taskcenter.tasks.models import SubtaskInstance, TaskInstance

    user = User.objects.get(pk=user_id)
    client = Client()
    client.force_login(user)
    job_url = reverse("dashboard:job_detail", args=[JOB])
    first = SubtaskInstance.objects.filter(task_id=wide, series_id=1).values_list("pk", flat=True)[
        0
    ]
    TaskInstance.objects.filter(pk=wide).update(status="RUNNING")  # the live poll redraws
    rows: list[list[str]] = []

    def add(label: str, times: list[float], status: int | str, target: float | None) -> None:
        p95 = common.percentile(times, 95)
        rows.append(
            [
                label,
                str(status),
                f"{common.median(times):.0f}",
                f"{p95:.0f}",
                f"<= {target:.0f}" if target else "baseline",
                common.verdict(p95 <= target) if target else "",
            ]
        )

    add("job page, grid 25 runs (default)", *timed(client, job_url, repeat), None)
    access.require_view(user)
    # The cells as drawn before they were made light, and as they are now, measured in
    # turns, request by request (the machine is shared: only figures of one run compare).
    lightened = history_grid.render
    renderers = {"previous cells": previous_render, "light cells": lightened}
    page_times: dict[str, list[float]] = {name: [] for name in renderers}
    grid_times: dict[str, list[float]] = {name: [] for name in renderers}
    tables, pages, count = {}, {}, 0
    try:
        for turn in range(repeat + 1):  # the first turn warms up, unmeasured
            for name, renderer in renderers.items():
                history_grid.render = renderer
                started = time.perf_counter()
                response = client.get(job_url + "?runs=100")
                took = (time.perf_counter() - started) * 1000
                pages[name] = len(response.content)
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    tables[name] = jobs._history(user, JOB, {"runs": "100"})["table"]
                    grid_took = (time.perf_counter() - started) * 1000
                count = len(queries)
                if turn:
                    page_times[name].append(took)
                    grid_times[name].append(grid_took)
    finally:
        history_grid.render = lightened
    for name, renderer in renderers.items():
        target = SERVER_TARGET_MS if renderer is lightened else None
        add(f"job page, grid 100 x 65, {name}", page_times[name], 200, target)
        add(f"grid alone 100 x 65 ({count} queries), {name}", grid_times[name], 200, target)
        table = len(tables[name])
        sizes.append([name, f"{pages[name]:,}", f"{table:,}", f"{table / 6500:.0f}"])
    detail = reverse("dashboard:task_detail", args=[wide])
    add("task page, flow view, 1,000", *timed(client, detail + "?view=flow", repeat), None)
    add(
        "task page, timeline, 1,000",
        *timed(client, detail + "?view=timeline", repeat),
        SERVER_TARGET_MS,
    )
    add(
        "timeline, fan-out expanded (1,000 rows)",
        *timed(client, f"{detail}?view=timeline&expand={first}", repeat),
        None,
    )
    live = reverse("dashboard:task_live", args=[wide])
    add("timeline's live poll, running", *timed(client, live + "?view=timeline", repeat), None)
    return rows


def browser_times(wide: int, repeat: int, tmp: Path, ports: str) -> list[list[str]]:
    first, last = (int(part) for part in ports.split("-"))
    port = common.free_port(first, last)
    pages = {
        "grid 25 runs (default)": (f"/jobs/{JOB}/", ".hgrid-wrap", False),
        "grid 100 x 65": (f"/jobs/{JOB}/?runs=100", ".hgrid-wrap", True),
        "flow view 1,000 (baseline)": (f"/tasks/{wide}/?view=flow", "#dag-canvas", False),
        "timeline 1,000": (f"/tasks/{wide}/?view=timeline", "#timeline-canvas", True),
    }
    rows: list[list[str]] = []
    with common.signed_in_chromium(
        tmp, port=port, username="bench-operator", password=PASSWORD
    ) as (page, base):
        for label, (url, group, judged) in pages.items():
            interactive, first_key, loaded = [], [], []
            for attempt in range(repeat + 1):
                page.goto(base + url, wait_until="commit")
                # The roving items: [data-sid], and the history grid's links.
                stop = f"{group} :is([data-sid], .hgrid a)[tabindex='0']"
                page.wait_for_selector(stop, state="attached", timeout=60_000)
                key_ms = page.evaluate(
                    """(stop) => {
                        const from = document.querySelector(stop);
                        from.focus();
                        const t0 = performance.now();
                        for (const key of ["ArrowRight", "ArrowDown", "ArrowLeft"]) {
                            from.dispatchEvent(new KeyboardEvent("keydown",
                                {key: key, bubbles: true, cancelable: true}));
                            if (document.activeElement !== from) break;
                        }
                        if (document.activeElement === from) return -1;
                        return performance.now() - t0;
                    }""",
                    stop,
                )
                now = page.evaluate("() => performance.now()")
                dcl = page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                if key_ms < 0:
                    raise SystemExit(f"{label}: the arrow key did not move the focus")
                if attempt == 0:
                    continue  # warm-up
                interactive.append(now)
                first_key.append(key_ms)
                loaded.append(dcl)
            ok = common.median(interactive) < BROWSER_TARGET_MS
            rows.append([f"{label}: DOMContentLoaded", f"{common.median(loaded):.0f}", "", ""])
            rows.append(
                [
                    f"{label}: keyboard moves (interactive)",
                    f"{common.median(interactive):.0f}",
                    f"< {BROWSER_TARGET_MS:.0f}" if judged else "baseline",
                    common.verdict(ok) if judged else "",
                ]
            )
            rows.append([f"{label}: first arrow key", f"{common.median(first_key):.1f}", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--browser-repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--ports", default="18700-18799", help="runserver's port range")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gridbench-"))
    database = POSTGRES_GRIDBENCH if args.database in ("postgres", "postgresql") else None
    database = database or common.database_url(args.database, tmp)
    if database.startswith("postgres"):
        common.drop_postgres_database(database, only_if_named="gridbench")
    common.prepare_environment(tmp=tmp, database=database)
    (tmp / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise's root
    common.exit_on_sigterm()
    try:
        common.setup_django(database)
        print(f"history grid and timeline benchmark on {common.describe_database(database)}")
        wide, user_id = build_data()
        print()
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"Server render (django.test.Client, signed in as an operator), ms; load {load}")
        sizes: list[list[str]] = []
        common.print_table(
            ["request", "status", "p50", "p95", "target", "verdict"],
            server_times(wide, user_id, args.repeat, sizes),
        )
        print()
        print("HTML of the grid at 100 x 65, bytes")
        common.print_table(["cells", "job page", "grid table", "per cell (table / 6,500)"], sizes)
        if not args.no_browser:
            print()
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                "Browser (headless Chromium, runserver, 1280x800), ms from navigation start, "
                f"median of {args.browser_repeat}; load {load}"
            )
            common.print_table(
                ["measure", "ms", "target", "verdict"],
                browser_times(wide, args.browser_repeat, tmp, args.ports),
            )
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(tmp, ignore_errors=True)
        if database.startswith("postgres"):
            common.drop_postgres_database(database, only_if_named="gridbench")


if __name__ == "__main__":
    main()
