"""Load with locust: operators browsing and retrying, and live log tails, on a real server.

Run as a script, it is the runner: it seeds a database (seed_demo's history plus a few
long-running tasks whose logs grow), signs in the users (session cookies made the way
login does, so the run does not start with 250 password hashes), starts the one-command
server (`manage.py serve`, web server + worker + scheduler) and runs locust headless
with this same file as the locustfile:

* 50 operators (`Operator`): the task list with filters, task detail, its live poll, the
  audit page, the list and detail through the API, and now and then a retry of a failed
  task through the API (a refusal because a colleague retried it first, 400 with code
  20003, counts as an answer, not an error); 1 to 3 s between actions.
* 200 live log tails (`LogTail`): the log page's poll (/tasks/<id>/subtasks/<id>/log/
  ?offset=N) every second on the log of a live task (one per worker process, each writing
  a line a second for 15 minutes), following the offset the server hands back: either
  "nothing new" (204) or the line written since the last poll (200); another live log
  when one has ended (htmx's stop-polling status 286). The share of each is printed.
* `--waiters` HENGSHI clients (`Waiter`, 0 unless asked): viewers with sessions of their
  own, each client asking for the newest context still running of a plan that fires every 5 s
  (`GET /api/contexts?...&jobStatusList=PENDING,RUNNING&limit=1`, an API call like the
  others) and then waiting on its logs (`GET /api/contexts/<id>/logs`, block=true: until
  the run ends, at most TASKCENTER_CONTEXT_WAIT_SECONDS). The waits' own durations are
  the runs' and are printed apart from the p95 targets; their errors count.

Printed: requests, error rate, p50/p95 of pages and of API calls (and per request kind),
and the server's CPU and memory (psutil over serve's process tree, sampled every 2 s;
CPU in % of one core, memory as the sum of RSS; the web server alone on its own line).
Targets: error rate < 0.1 %, p95 < 300 ms for pages, for API calls, and for each kind of
request on its own.

Usage, from the project root (locust and psutil are the benchmark's own needs, not the
project's: `.venv/bin/pip install locust psutil`):
    .venv/bin/python benchmarks/load_locust.py [--minutes 5] [--database postgres|URL]
        [--broker URL] [--operators 50] [--tails 200] [--history 2000]
        [--web-processes N] [--waiters 100] [--port N] [--json out.json]
"""

from __future__ import annotations

import collections
import json
import os
import random
import re

POSTGRES_LOADBENCH = "postgres://postgres@127.0.0.1:5432/taskcenter_loadbench"
PASSWORD = "bench-Pa55word!long"
# Set by the runner for the locust process: the seeded ids and the session cookies.
SEED_FILE_VARIABLE = "TC_LOAD_SEED"
SAMPLES_FILE_VARIABLE = "TC_LOAD_SAMPLES"
TARGET_ERROR_RATE, TARGET_P95_MS = 0.001, 300.0
REFUSED_CODE = 20003


# --- The locustfile ---------------------------------------------------------------------------

if os.environ.get(SEED_FILE_VARIABLE):
    import secrets
    import string

    from locust import between, constant, events, task
    from locust.contrib.fasthttp import FastHttpUser

    SEED = json.loads(open(os.environ[SEED_FILE_VARIABLE]).read())  # noqa: SIM115
    # (kind, name, ms, why it failed or "", HTTP status)
    SAMPLES: list[tuple[str, str, float, str, int]] = []
    _cookies = iter(SEED["cookies"])
    _viewer_cookies = iter(SEED.get("viewer_cookies", []))

    @events.request.add_listener
    def _record(request_type, name, response_time, exception, response=None, **kwargs):
        kind = "wait" if name.startswith("wait") else "api" if name.startswith("api") else "page"
        why = "" if exception is None else str(exception)[:120]
        status = getattr(response, "status_code", 0) or 0
        SAMPLES.append((kind, name, response_time, why, status))

    @events.quitting.add_listener
    def _write_samples(environment, **kwargs):
        with open(os.environ[SAMPLES_FILE_VARIABLE], "w") as out:
            json.dump(SAMPLES, out)

    class SignedIn(FastHttpUser):
        """A signed-in browser: its session cookie, and a CSRF cookie it also sends back in
        X-CSRFToken on unsafe requests, as the pages' JavaScript does (Django accepts the
        cookie's secret itself as the token). geventhttpclient's client (FastHttpUser)
        rather than requests': the load generator shares the server's machine, and it
        spends several times less CPU per request."""

        abstract = True

        def on_start(self) -> None:
            alphabet = string.ascii_letters + string.digits
            self.csrf = "".join(secrets.choice(alphabet) for _ in range(32))
            self.headers = {"Cookie": f"sessionid={next(_cookies)}; csrftoken={self.csrf}"}

        def get(self, url: str, name: str):
            """GET; any status below 400 is an answer (204 nothing new, htmx's 286)."""
            with self.client.get(
                url, name=name, headers=self.headers, catch_response=True
            ) as answer:
                if 0 < answer.status_code < 400:
                    answer.success()
                else:
                    answer.failure(f"{answer.status_code} {_message(answer)}")
            return answer

    class Operator(SignedIn):
        fixed_count = int(os.environ.get("TC_LOAD_OPERATORS", "50"))
        wait_time = between(1, 3)

        @task(4)
        def task_list(self) -> None:
            query = random.choice(
                ["", "?status=FAILED", "?status=SUCCESSFUL&size=50", "?name=Migrate", "?page=3"]
            )
            self.get(f"/tasks/{query}", name="page: task list")

        @task(3)
        def task_detail(self) -> None:
            task_id = random.choice(SEED["tasks"])
            self.get(f"/tasks/{task_id}/", name="page: task detail")
            self.get(f"/tasks/{task_id}/live/", name="page: detail live poll")

        @task(1)
        def audit(self) -> None:
            self.get("/audit/", name="page: audit")

        @task(2)
        def api_list(self) -> None:
            status = random.choice(["FAILED", "RUNNING", "SUCCESSFUL"])
            self.get(f"/api/v2/tasks/instances?status={status}&pageSize=10", name="api: task list")

        @task(2)
        def api_detail(self) -> None:
            task_id = random.choice(SEED["tasks"])
            self.get(f"/api/v2/tasks/instances/{task_id}", name="api: task detail")

        @task(1)
        def retry_failed(self) -> None:
            listed = self.get("/api/v2/tasks/instances?status=FAILED&pageSize=20", "api: task list")
            if listed.status_code != 200:
                return
            failed = [row["id"] for row in listed.json()["data"]["contents"]]
            if not failed:
                return
            with self.client.post(
                f"/api/v2/tasks/instances/{random.choice(failed)}/retry",
                headers={**self.headers, "X-CSRFToken": self.csrf, "Referer": self.host},
                name="api: retry",
                catch_response=True,
            ) as answer:
                # Operators retry tasks from the same list of failed ones; whoever comes
                # second is told the task is not FAILED any more (400, code 20003).
                refused = answer.status_code == 400 and _code(answer) == REFUSED_CODE
                if refused:  # a correct answer, reported under a name of its own
                    answer.request_meta["name"] = "api: retry refused, already retried"
                    answer.success()
                elif answer.status_code == 200:
                    answer.success()
                else:  # name the answer, so that a refusal of another kind can be examined
                    answer.failure(f"{answer.status_code} {_code(answer)} {_message(answer)}")

    class LogTail(SignedIn):
        fixed_count = int(os.environ.get("TC_LOAD_TAILS", "200"))
        wait_time = constant(1)  # the log page polls every second

        def on_start(self) -> None:
            super().on_start()
            self._follow()

        def _follow(self) -> None:
            # A live log, from its start as the log page opens it (another one once it ends).
            self.task_id, self.subtask_id = random.choice(SEED["live"] or SEED["logs"])
            self.offset = 0

        @task
        def poll(self) -> None:
            url = f"/tasks/{self.task_id}/subtasks/{self.subtask_id}/log/?offset={self.offset}"
            answer = self.get(url, name="page: log poll")
            if answer.status_code == 286:  # the log ended (htmx's stop-polling status)
                self._follow()
            elif answer.status_code == 200:  # new text; the next offset is in the poller
                found = re.search(r"offset=(\d+)", answer.text or "")
                if found:
                    self.offset = int(found.group(1))

    class Waiter(FastHttpUser):
        """A HENGSHI client waiting for its runs (network timeout above the waits' bound)."""

        fixed_count = int(os.environ.get("TC_LOAD_WAITERS", "0"))
        wait_time = constant(0.5)
        network_timeout = 90.0
        connection_timeout = 90.0

        def on_start(self) -> None:
            self.headers = {"Cookie": f"sessionid={next(_viewer_cookies)}"}

        @task
        def wait(self) -> None:
            newest = "/api/contexts?entityGroup=LOAD&jobStatusList=PENDING,RUNNING&limit=1"
            with self.client.get(
                newest,
                name="api: hengshi running contexts",
                headers=self.headers,
                catch_response=True,
            ) as listed:
                if listed.status_code != 200:
                    listed.failure(f"{listed.status_code} {(listed.text or '')[:100]}")
                    return
                rows = listed.json()["data"]
            if not rows:
                return
            with self.client.get(
                f"/api/contexts/{rows[0]['id']}/logs",
                name="wait: hengshi logs",
                headers=self.headers,
                catch_response=True,
            ) as waited:
                if waited.status_code == 200 and waited.json().get("code") == 0:
                    waited.success()
                else:
                    waited.failure(f"{waited.status_code} {(waited.text or '')[:100]}")

    def _error(answer) -> dict:
        """The API envelope's error object ({"error": {"code": ..., "message": ...}})."""
        try:
            return answer.json().get("error") or {}
        except (ValueError, AttributeError, TypeError):
            return {}

    def _code(answer) -> int | None:
        return _error(answer).get("code")

    def _message(answer) -> str:
        return str(_error(answer).get("message") or (answer.text or "")[:100])


# --- The runner --------------------------------------------------------------------------------


def main() -> None:
    import argparse
    import subprocess
    import sys
    import time
    from pathlib import Path

    import common

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--database", default=POSTGRES_LOADBENCH, help="postgres or a URL")
    parser.add_argument("--broker", default=None, help="default: a filesystem broker in tmp")
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--tails", type=int, default=200)
    parser.add_argument("--history", type=int, default=2000, help="seed_demo --tasks")
    parser.add_argument("--concurrency", type=int, default=2, help="serve's worker processes")
    parser.add_argument(
        "--web-processes", type=int, default=None, help="serve's web processes (its default)"
    )
    parser.add_argument(
        "--waiters", type=int, default=0, help="HENGSHI clients waiting on runs (default 0)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="the web server's port (default: a free one of 18400-18499 or TASKCENTER_BENCH_PORTS)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--baseline", type=Path, help="an earlier run's --json, printed side by side"
    )
    args = parser.parse_args()

    if args.database not in (None, "sqlite"):
        # A new database every run: the tasks an earlier run retried would otherwise be
        # re-sent at start and queue in front of the live logs the tails follow.
        common.drop_postgres_database(common.database_url(args.database, Path(".")))
    with common.temporary_setup(args, "tc-load-bench-") as (tmp, database):
        _empty_the_queue()
        seed = _seed(args.history, args.operators + args.tails)
        if args.waiters:
            seed["viewer_cookies"] = _seed_waited_plan(args.waiters)
        (tmp / "seed.json").write_text(json.dumps(seed))
        extra = () if args.web_processes is None else ("--web-processes", str(args.web_processes))
        # The waited-for plan's runs get a worker process of their own beside the live tasks.
        concurrency = args.concurrency + (1 if args.waiters else 0)
        ports = {} if args.port is None else {"ports": (args.port, args.port)}
        server = common.Server(tmp, concurrency=concurrency, extra=extra, **ports)
        sampler = None
        try:
            server.wait_ready()
            # One live task per worker process, so every live log grows while the run lasts.
            seed["live"] = _start_live_tasks(args.concurrency)
            _wait_until_logging(seed["live"])
            (tmp / "seed.json").write_text(json.dumps(seed))
            sampler = _Sampler(server.proc.pid)
            sampler.start()
            args.load_before = os.getloadavg()[0]
            env = dict(
                os.environ,
                **{SEED_FILE_VARIABLE: str(tmp / "seed.json")},
                **{SAMPLES_FILE_VARIABLE: str(tmp / "samples.json")},
                TC_LOAD_OPERATORS=str(args.operators),
                TC_LOAD_TAILS=str(args.tails),
                TC_LOAD_WAITERS=str(args.waiters),
            )
            users = args.operators + args.tails + args.waiters
            locust = [sys.executable, "-m", "locust", "-f", __file__, "--headless"]
            locust += ["--host", server.base, "-u", str(users), "-r", str(max(1, users // 20))]
            locust += ["-t", f"{int(args.minutes * 60)}s", "--only-summary", "--stop-timeout", "5"]
            before, started = _children_cpu(), time.monotonic()
            with open(tmp / "locust.log", "wb") as log:
                subprocess.run(locust, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
            # locust shares the machine with the server: what it used is not the server's.
            args.locust_cpu = (_children_cpu() - before) / (time.monotonic() - started) * 100
            samples = json.loads((tmp / "samples.json").read_text())
        finally:
            if sampler is not None:
                sampler.stop()
            server.stop()
    _report(samples, sampler, args, database)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child processes waited for so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seed(history: int, users: int) -> dict:
    """seed_demo's history, one operator per virtual user, and the ids the users visit."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from taskcenter.accounts import roles
    from taskcenter.tasks.models import SubtaskInstance, TaskInstance

    if TaskInstance.objects.count() < history:
        call_command("seed_demo", tasks=history, seed=11, verbosity=0)
    operators = Group.objects.get(name=roles.MANAGER)
    cookies = []
    for number in range(users):
        user, created = User.objects.get_or_create(username=f"load-operator-{number}")
        if created:
            user.set_unusable_password()  # they never sign in with a password here
            user.save()
            user.groups.add(operators)
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    task_ids = list(TaskInstance.objects.order_by("-id").values_list("pk", flat=True)[:500])
    logs = list(
        SubtaskInstance.objects.filter(log_size__gt=0)
        .order_by("-id")
        .values_list("task_id", "pk")[:500]
    )
    return {"cookies": cookies, "tasks": task_ids, "logs": [list(pair) for pair in logs]}


def _seed_waited_plan(waiters: int) -> list[str]:
    """A plan firing every 5 s (HENGSHI's notebook job: two short steps), and a viewer per
    waiting client; their session cookies."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from taskcenter.accounts import roles
    from taskcenter.schedules import inputs, verbs

    viewers = Group.objects.get(name=roles.VIEWER)
    cookies = []
    for number in range(waiters):
        viewer, created = User.objects.get_or_create(username=f"load-viewer-{number}")
        if created:
            viewer.set_unusable_password()
            viewer.save()
            viewer.groups.add(viewers)
        client = Client()
        client.force_login(viewer)
        cookies.append(client.cookies["sessionid"].value)
    body = {
        "entityGroup": "LOAD",
        "entityKey": "waited",
        "planItems": [{"triggerType": "CRON_JOB", "cronDesc": "*/5 * * * * ?", "cronType": "CRON"}],
        "execDetail": {
            "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
            "jobParams": {"notebook": 1},
        },
    }
    verbs.plan_submit(actor=None, data=inputs.plan_input(body))
    return cookies


def _start_live_tasks(count: int) -> list[list[int]]:
    """Tasks whose shell step writes a line a second for the whole run: the live logs the
    tails follow, as (task id, subtask id) of each one's backup step."""
    from taskcenter.tasks import verbs
    from taskcenter.tasks.models import SubtaskInstance

    live = []
    for _ in range(count):
        task = verbs.task_start(definition_name="Back up cluster", parameters={"seconds": 900})
        backup = SubtaskInstance.objects.get(task=task, name="Back up data files")
        live.append([task.pk, backup.pk])
    return live


def _empty_the_queue() -> None:
    """Drop the messages an earlier run left in the broker (a temp folder's is new)."""
    from taskcenter.celery import app

    app.control.purge()


def _wait_until_logging(live: list[list[int]], timeout: float = 120.0) -> None:
    """Every live log has started before the tails come, or the run stops and says so:
    tails of logs that never started would measure nothing but the end-of-log answer."""
    import time

    from taskcenter.tasks.models import SubtaskInstance

    ids = [subtask_id for _task_id, subtask_id in live]
    deadline = time.monotonic() + timeout
    while SubtaskInstance.objects.filter(pk__in=ids, log_size__gt=0).count() < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"the live logs did not start within {timeout:.0f} s")
        time.sleep(0.5)


class _Sampler:
    """CPU and memory of a process tree, sampled every 2 s in a thread."""

    def __init__(self, root_pid: int):
        import threading

        import psutil

        self.root = psutil.Process(root_pid)
        self.samples: list[tuple[float, float, float, float]] = []  # cpu, rss, web cpu, web rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[int, object] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _tree(self):
        import psutil

        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        # cpu_percent needs the same Process object between two calls.
        return [self._seen.setdefault(p.pid, p) for p in processes]

    def _run(self) -> None:
        import psutil

        for process in self._tree():
            process.cpu_percent(None)
        while not self._stop.wait(2.0):
            total = [0.0, 0.0, 0.0, 0.0]
            for process in self._tree():
                try:
                    cpu, rss = process.cpu_percent(None), process.memory_info().rss / 2**20
                    web = (
                        not any(
                            word in " ".join(process.cmdline())
                            for word in ("celery", "run_scheduler")
                        )
                        and process.pid != self.root.pid
                    )
                except psutil.Error:
                    continue
                total[0] += cpu
                total[1] += rss
                if web:
                    total[2] += cpu
                    total[3] += rss
            self.samples.append(tuple(total))  # type: ignore[arg-type]


def _report(samples: list, sampler, args, database: str) -> None:
    import common

    load = os.getloadavg()
    print(f"database: {common.describe_database(database)}")
    print(
        f"{args.operators} operators + {args.tails} log tails + {args.waiters} waiting "
        f"HENGSHI clients for {args.minutes:g} min "
        f"(load average at the start: {args.load_before:.2f}; at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs)"
    )
    figures: dict = {
        "waiters": args.waiters,
        "load_average": round(load[0], 2),
        "load_average_start": round(args.load_before, 2),
        "minutes": args.minutes,
        "web_processes": args.web_processes,
    }
    rows = []
    for label, keep in (
        ("all", lambda s: s[0] != "wait"),  # the waits' durations are the runs'; apart
        ("pages", lambda s: s[0] == "page"),
        ("API", lambda s: s[0] == "api"),
        *[(name, (lambda s, n=name: s[1] == n)) for name in sorted({s[1] for s in samples})],
    ):
        chosen = [s for s in samples if keep(s)]
        if not chosen:
            continue
        times = [s[2] for s in chosen]
        errors = sum(1 for s in chosen if s[3])
        p50, p95 = common.percentile(times, 50), common.percentile(times, 95)
        rows.append(
            [label, str(len(chosen)), f"{errors / len(chosen):.3%}", f"{p50:.0f}", f"{p95:.0f}"]
        )
        figures[label if label != "wait: hengshi logs" else "waits"] = {
            "requests": len(chosen),
            "errors": errors,
            "p50_ms": round(p50),
            "p95_ms": round(p95),
        }
    headers = ["requests", "count", "errors", "p50 ms", "p95 ms"]
    if args.baseline:
        baseline = json.loads(args.baseline.read_text())
        headers += ["baseline count", "baseline errors", "baseline p50 / p95 ms"]
        for row in rows:
            label = row[0] if row[0] != "wait: hengshi logs" else "waits"
            before = baseline.get(label)
            if isinstance(before, dict) and "requests" in before:
                share = before["errors"] / max(1, before["requests"])
                row += [str(before["requests"]), f"{share:.3%}"]
                row += [f"{before['p50_ms']} / {before['p95_ms']}"]
            else:
                row += ["-", "-", "-"]
    common.print_table(headers, rows)
    reasons = collections.Counter(f"{s[1]}: {s[3]}" for s in samples if s[3])
    for reason, count in reasons.most_common(8):
        print(f"  {count:5d} x {reason}")
    figures["failures"] = dict(reasons.most_common(8))
    # What the tails were answered: new text (200), nothing new (204), the log ended (286).
    tails = collections.Counter(s[4] for s in samples if s[1] == "page: log poll")
    if tails:
        shares = ", ".join(
            f"{status} {count / sum(tails.values()):.1%}" for status, count in sorted(tails.items())
        )
        print(f"log poll answers by status: {shares}")
        figures["log_poll_statuses"] = {str(k): v for k, v in sorted(tails.items())}
    if sampler is not None and sampler.samples:
        cpu, rss, web_cpu, web_rss = zip(*sampler.samples, strict=True)
        for label, c, r in (
            ("server (serve's tree)", cpu, rss),
            ("web server alone", web_cpu, web_rss),
        ):
            print(
                f"{label}: CPU mean {sum(c) / len(c):.0f} % max {max(c):.0f} % of one core; "
                f"memory max {max(r):.0f} MB"
            )
        figures["cpu_mean_pct"] = round(sum(cpu) / len(cpu))
        figures["cpu_max_pct"] = round(max(cpu))
        figures["rss_max_mb"] = round(max(rss))
        figures["web_cpu_mean_pct"] = round(sum(web_cpu) / len(web_cpu))
        figures["web_rss_max_mb"] = round(max(web_rss))
    print(f"locust itself (same machine): CPU mean {args.locust_cpu:.0f} % of one core")
    figures["locust_cpu_mean_pct"] = round(args.locust_cpu)
    error_rate = sum(1 for s in samples if s[3]) / max(1, len(samples))  # the waits' included
    # The target is read strictly: pages, API calls and also every kind of request on its
    # own, so that the many cheap log polls cannot hide a slow page.
    # A wait lasts as long as the run it waits for: its duration is printed, not judged.
    worst_p95, worst = max(
        (value["p95_ms"], label)
        for label, value in figures.items()
        if isinstance(value, dict) and "p95_ms" in value and label != "waits"
    )
    figures["worst_p95_ms"], figures["worst_p95_of"] = worst_p95, worst
    print(
        f"error rate {error_rate:.3%} (target < {TARGET_ERROR_RATE:.1%}): "
        f"{common.verdict(error_rate < TARGET_ERROR_RATE)}; worst p95 {worst_p95:.0f} ms, "
        f"{worst} (target < {TARGET_P95_MS:.0f} for pages, API calls and each kind): "
        f"{common.verdict(worst_p95 < TARGET_P95_MS)}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
