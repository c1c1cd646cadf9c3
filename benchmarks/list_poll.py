"""The live task list's poll on a million tasks, against re-rendering the list.

Data (PostgreSQL, database `taskcenter_bench_live`, created when missing and reused when
already seeded): the million tasks of benchmarks/api_list.py (its seed, --subtasks each),
stamped at seeding (updated_at's database default), then VACUUM ANALYZE.

Measured, as a viewer on /tasks/ (the default list, newest first, 20 rows):

1. Latency, in-process through Django's test client (middleware, session, the view, the
   template), --repeat polls after two warm-ups:
   * live poll, nothing changed: GET /tasks/live/?shown=...&c=<cursor> (answers 204);
   * live poll, 10 changes: 10 of the shown tasks change (their updated_at and status),
     then the poll, one every 2 s as the page does (the answer patches the changed rows,
     with those of the last few seconds: a cursor lags 5 s behind, see
     selectors.task_changes);
   * peer, the list re-rendered: GET /tasks/ for the results part (what the filter bar
     asks for, and what a list refreshed by re-rendering would cost each poll);
   * peer, the top bar's counts by status over every task (what each poll of the list
     computed before the change cursor).
2. Server CPU: a real server process (the web server, 8 threads, as `serve` runs it) and
   --clients simulated open lists (HTTP keep-alive, one poll each every 2 s) for
   --seconds: the server's CPU seconds (user + system, from /proc), per poll answered,
   the polls answered and their p95, first for the live poll with nothing changing, then with 10 changes
   every 2 s, then for the peer that re-renders the list each poll.

Usage, from the project root:
    .venv/bin/python benchmarks/list_poll.py [--database URL] [--tasks 1000000]
        [--subtasks 2] [--repeat 40] [--clients 200] [--seconds 60] [--reseed]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from html import unescape
from pathlib import Path

import common

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/taskcenter_bench_live"
HX = {"HTTP_HX_REQUEST": "true"}
POLL_SECONDS = 2.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--subtasks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reseed", action="store_true")
    return parser.parse_args()


def poller_url(html: str) -> str:
    found = re.search(r'id="list-poller" hidden(?: hx-swap-oob="true")? hx-get="([^"]+)"', html)
    if not found:
        raise SystemExit("no list poller in the page")
    return unescape(found.group(1))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def change_tasks(ids: list[int]) -> None:
    """What a worker's finish does to a task row: a new status and its stamp."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tasks_taskinstance SET updated_at = now(), status = CASE status"
            " WHEN 'RUNNING' THEN 'SUCCESSFUL' ELSE 'RUNNING' END WHERE id = ANY(%s)",
            [ids],
        )


# --- 1. Latency ------------------------------------------------------------------------------


def latency(client, repeat: int) -> tuple[list[list[str]], list[int]]:
    from taskcenter.tasks import selectors
    from taskcenter.tasks.models import TaskInstance

    # Nothing changed lately: the page's cursor is past the last stamps (CHANGE_LAG).
    time.sleep(selectors.CHANGE_LAG.total_seconds() + 1)
    page = client.get("/tasks/").content.decode()
    shown = [int(x) for x in re.findall(r'id="task-row-(\d+)"', page)]
    rows = []

    def timed(call, n):
        times = []
        for i in range(n + 2):
            started = time.perf_counter()
            call()
            if i >= 2:
                times.append(time.perf_counter() - started)
        return times

    # Nothing changed since the page's cursor (its last changes are minutes old).
    url = poller_url(page)
    assert client.get(url, **HX).status_code == 204
    quiet = timed(lambda: client.get(url, **HX), repeat)

    # 10 changes before each poll, one poll every 2 s as the page polls.
    state = {"url": url}
    sizes = []

    def changed_poll():
        change_tasks(shown[:10])
        started = time.perf_counter()
        answer = client.get(state["url"], **HX)
        took = time.perf_counter() - started
        body = answer.content.decode()
        sizes.append(body.count("<template>"))
        state["url"] = poller_url(body)
        time.sleep(max(0.0, POLL_SECONDS - took))
        return took

    changed = [changed_poll() for _ in range(min(repeat, 20) + 2)][2:]

    results_headers = {**HX, "HTTP_HX_TARGET": "task-results"}
    rerender = timed(lambda: client.get("/tasks/", **results_headers), repeat)
    everything = TaskInstance.objects.all()
    counts = timed(lambda: selectors.task_counts_by_status(visible=everything), repeat)

    def row(name, values, note):
        return [name, ms(common.percentile(values, 50)), ms(common.percentile(values, 95)), note]

    rows.append(row("live poll, nothing changed", quiet, "204, no body"))
    rows.append(row("live poll, 10 changes / 2 s", changed, f"{max(sizes)} rows patched at most"))
    rows.append(row("peer: list re-rendered", rerender, "results part, 20 rows + count"))
    rows.append(row("peer: counts by status", counts, "today's top bar, every poll"))
    return rows, shown


# --- 2. Server CPU ----------------------------------------------------------------------------


class Clients:
    """`n` open pages polling one URL each every 2 s over keep-alive connections."""

    def __init__(self, port: int, cookie: str, urls: list[str], follow_cursor: bool):
        self.port, self.cookie, self.urls = port, cookie, urls
        self.follow = follow_cursor
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}

    def run_one(self, index: int) -> None:
        url = self.urls[index]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": self.cookie, "HX-Request": "true", "HX-Target": "task-results"}
        if self.follow:
            headers.pop("HX-Target")
        # Spread the clients over the interval, as pages opened at different moments are.
        self.stop.wait(POLL_SECONDS * index / len(self.urls))
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", url, headers=headers)
                answer = conn.getresponse()
                body = answer.read().decode()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                continue
            took = time.perf_counter() - started
            if self.follow and answer.status == 200 and "list-poller" in body:
                url = poller_url(body)
            with self.lock:
                self.latencies.append(took)
                self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
            self.stop.wait(max(0.0, POLL_SECONDS - took))
        conn.close()


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_run(port, pid, cookie, urls, follow, seconds, changes_of: list[int] | None) -> list:
    clients = Clients(port, cookie, urls, follow)
    threads = [
        threading.Thread(target=clients.run_one, args=(i,), daemon=True) for i in range(len(urls))
    ]
    before = process_cpu(pid)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < seconds:
        time.sleep(POLL_SECONDS)
        if changes_of:
            change_tasks(changes_of)
    clients.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    cpu = process_cpu(pid) - before
    elapsed = time.monotonic() - started
    answered = len(clients.latencies)
    statuses = ", ".join(f"{n}x{code}" for code, n in sorted(clients.statuses.items()))
    return [
        f"{cpu:.1f} s",
        f"{cpu / elapsed * 100:.0f}%",
        f"{cpu / max(answered, 1) * 1000:.1f} ms",
        f"{answered / elapsed:.0f}/s",
        ms(common.percentile(clients.latencies, 95)) if answered else "-",
        statuses,
    ]


def server_cpu(args, tmp: Path, shown: list[int]) -> list[list[str]]:
    from django.conf import settings
    from django.test import Client

    port = common.free_port()
    log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        # One of the web processes `serve` starts, binding the port itself.
        [sys.executable, "-m", "taskcenter.webserver", f"--listen=127.0.0.1:{port}", "--threads=8"],
        cwd=tmp,
        env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(common.ROOT)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if web.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the web server did not start; see {tmp / 'web.log'}")
            time.sleep(0.3)
        client = Client()
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.get(username="bench-viewer"))
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        page = client.get("/tasks/").content.decode()
        live = [poller_url(page)] * args.clients
        peer = ["/tasks/"] * args.clients
        rows = [
            [
                "live poll, nothing changes",
                *cpu_run(port, web.pid, cookie, live, True, args.seconds, None),
            ],
            [
                "live poll, 10 changes / 2 s",
                *cpu_run(port, web.pid, cookie, live, True, args.seconds, shown[:10]),
            ],
            [
                "peer: list re-rendered",
                *cpu_run(port, web.pid, cookie, peer, False, args.seconds, None),
            ],
        ]
        return rows
    finally:
        common.stop_group(web)
        log.close()


def main() -> int:
    args = parse_args()
    common.exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="tc-list-poll-") as tmp_name:
        tmp = Path(tmp_name)
        common.prepare_environment(tmp=tmp, database=args.database)
        os.environ["TASKCENTER_SLOW_COUNT_CACHE_SECONDS"] = "0"  # the peer counts every time
        common.setup_django(args.database)
        import api_list
        from django.db import connection

        from taskcenter.accounts import roles

        with connection.cursor() as cursor:
            if args.reseed or not api_list.seeded(cursor, args.tasks, args.subtasks):
                api_list.seed(cursor, args.tasks, args.subtasks)
                cursor.execute("VACUUM ANALYZE tasks_taskinstance")
                cursor.execute("VACUUM ANALYZE tasks_subtaskinstance")
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.test import Client

        user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
        user.groups.set([Group.objects.get(name=roles.VIEWER)])
        client = Client()
        client.force_login(user)

        print(f"Live list poll, {args.tasks:,} tasks on {common.describe_database(args.database)}")
        print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
        print()
        rows, shown = latency(client, args.repeat)
        common.print_table(["one request (in-process)", "p50", "p95", "what"], rows)
        print()
        cpu_rows = server_cpu(args, tmp, shown)
        print(
            f"{args.clients} open lists polling every 2 s for {args.seconds:.0f} s, one server process:"
        )
        common.print_table(
            ["load", "server CPU", "of one core", "CPU / poll", "answered", "p95", "statuses"],
            cpu_rows,
        )
        print("load average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
