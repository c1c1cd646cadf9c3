"""Log latency: from a line written by a subtask to that line shown in an open log panel.

What is measured: against a real server (`manage.py serve`: web server, worker and
scheduler, on the chosen database and broker), a shell subtask prints --lines lines
(default 100), each carrying the wall-clock time it was printed, at random gaps of 0.2 to
0.6 s (so that the lines fall anywhere in the poll's cycle). Headless Chromium, signed in
as an operator, has the subtask's log panel open from before the first line; a
MutationObserver notes the wall-clock time each line appears in the panel. Both clocks are
this machine's. Printed: p50 / p95 / worst of (shown - printed) over the lines, beside
their reference: the panel's poll interval (1 s), plus the worker's log flush interval.

Target: p95 at most 1.5 s.

Usage, from the project root (Debian's chromium; CHROMIUM overrides its path):
    .venv/bin/python benchmarks/log_latency.py [--database sqlite|postgres|URL]
        [--broker URL] [--lines 100] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import common

USERNAME, PASSWORD = "bench-log", "bench-Pa55word!long"
DEFINITION = "Log latency probe"
TARGET_P95 = 1.5
POLL_SECONDS = 1.0  # templates/dashboard/_log_poller.html: hx-trigger="every 1s"
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"

# Each line: "LAT <n> <seconds since the epoch when printed>".
SCRIPT = (
    'sleep 4; i=0; while [ "$i" -lt {lines} ]; do i=$((i+1)); '
    'echo "LAT $i $(date +%s.%N)"; sleep 0.$((RANDOM % 5 + 2)); done'
)

# Installed before the page's own scripts: notes when each LAT line first appears.
OBSERVER = """
window.__shown = {};
window.__watchStart = Date.now();
new MutationObserver(() => {
  const el = document.getElementById('log-text');
  if (!el) return;
  const now = Date.now();
  const found = el.textContent.matchAll(/LAT (\\d+) ([\\d.]+)/g);
  for (const m of found) if (!(m[1] in window.__shown)) window.__shown[m[1]] = [Number(m[2]), now];
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--broker", default=None, help="default: a filesystem broker in tmp")
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    # The server collects its static files here: this checkout's own, not another's.
    os.environ.setdefault("STATIC_ROOT", str(common.ROOT / "var" / "bench-static"))

    with common.temporary_setup(args, "tc-log-latency-") as (tmp, database):
        _seed()
        server = common.Server(tmp)
        try:
            server.wait_ready()
            latencies, missing = _measure(server.base, args.lines)
        finally:
            server.stop()
    _report(latencies, missing, args, database)


def _seed() -> None:
    from django.contrib.auth.models import Group, User

    from taskcenter.accounts import roles

    User.objects.filter(username=USERNAME).delete()
    user = User.objects.create_user(username=USERNAME, password=PASSWORD)
    user.groups.add(Group.objects.get(name=roles.MANAGER))


def _start_probe(lines: int):
    from taskcenter.tasks import services, verbs

    name = f"{DEFINITION} {time.time():.0f}"  # a database kept between runs has the older ones
    services.definition_create_from_data(
        name=name,
        spec={
            "subtasks": [
                {
                    "key": "print",
                    "name": "Print timed lines",
                    "kind": "SHELL_TASK",
                    "action": {"command": SCRIPT.format(lines=lines)},
                    "timeout": 600,
                }
            ]
        },
    )
    task = verbs.task_start(definition_name=name)
    return task, task.subtasks.get()


def _measure(base: str, lines: int) -> tuple[list[float], int]:
    from playwright.sync_api import sync_playwright

    from taskcenter.tasks.models import SubtaskInstance

    # Playwright's sync API keeps an event loop in this thread; the ORM calls below are
    # synchronous all the same (set after the server started, which does not inherit it).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/login/?next=/tasks/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/tasks/$"))
            task, subtask = _start_probe(lines)
            deadline = time.monotonic() + 60
            while SubtaskInstance.objects.get(pk=subtask.pk).status != "RUNNING":
                if time.monotonic() > deadline:
                    raise SystemExit("the probe subtask did not start within 60 s")
                time.sleep(0.2)
            page.add_init_script(OBSERVER)
            page.goto(f"{base}/tasks/{task.pk}/?view=log&subtask={subtask.pk}")
            page.wait_for_selector("#log-text")
            watch_start = page.evaluate("window.__watchStart") / 1000
            page.wait_for_function(
                f"() => Object.keys(window.__shown).length >= {lines}",
                timeout=(lines * 0.6 + 60) * 1000,
                polling=500,
            )
            shown = page.evaluate("window.__shown")
        finally:
            browser.close()
    latencies = [
        shown_ms / 1000 - printed
        for printed, shown_ms in shown.values()
        if printed > watch_start  # printed while the panel was open
    ]
    return latencies, lines - len(shown)


def _report(latencies: list[float], missing: int, args, database: str) -> None:
    p50 = common.percentile(latencies, 50)
    p95 = common.percentile(latencies, 95)
    worst = max(latencies)
    from django.conf import settings

    from taskcenter.engine.runner import LOG_FLUSH_INTERVAL

    load = os.getloadavg()[0]
    print(
        f"log_latency: database {common.describe_database(database)}, {len(latencies)} lines "
        f"timed, load average {load:.1f}"
    )
    common.print_table(
        ["", "p50", "p95", "worst", "target p95", "verdict"],
        [
            [
                "line printed -> shown in the panel",
                f"{p50:.2f} s",
                f"{p95:.2f} s",
                f"{worst:.2f} s",
                f"{TARGET_P95:.1f} s",
                common.verdict(p95 <= TARGET_P95),
            ],
            ["reference: the panel's poll interval", f"{POLL_SECONDS:.2f} s", "", "", "", ""],
            [
                "reference: poll + the worker's log flush",
                f"{POLL_SECONDS + LOG_FLUSH_INTERVAL:.2f} s",
                "",
                "",
                "",
                "",
            ],
        ],
    )
    if missing:
        print(f"{missing} lines were never shown")
    if args.json:
        figures = json.loads(args.json.read_text()) if args.json.exists() else {}
        figures["log_latency"] = {
            "database": common.describe_database(database),
            "broker": settings.CELERY_BROKER_URL.split("://")[0],
            "lines": len(latencies),
            "p50_s": round(p50, 3),
            "p95_s": round(p95, 3),
            "worst_s": round(worst, 3),
            "poll_s": POLL_SECONDS,
            "flush_s": LOG_FLUSH_INTERVAL,
            "load": round(load, 1),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
