"""HTTP Basic against session authentication: 20 concurrent API calls each, one run.

What is measured: against a real server (`manage.py serve`, the one-command setup, on
the chosen database and broker), --clients threads (default 20) each GET the task list
(/api/v2/tasks/instances?pageSize=10) at the same moment, released by a barrier; once
with HTTP Basic credentials (one user, as obdiag and the Terraform provider use it), once
with a signed-in session cookie. The two kinds alternate round by round (--rounds, default
5), so both see the same machine; one unmeasured warm-up round of each comes first.
Printed: p50 / p95 / worst per kind over all measured calls (answers other than 200, such
as the sign-in throttle's 429, are timed too and counted), and their p95 ratio.

Target: Basic p95 at most 2x session p95.

Usage, from the project root:
    .venv/bin/python benchmarks/auth_concurrency.py [--database sqlite|postgres|URL]
        [--broker URL] [--clients 20] [--rounds 5] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import common

USERNAME, PASSWORD = "bench-basic", "bench-Pa55word!long"
PATH = "/api/v2/tasks/instances?pageSize=10"
TARGET_RATIO = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--broker", default=None, help="default: a filesystem broker in tmp")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    with common.temporary_setup(args, "tc-auth-bench-") as (tmp, database):
        session_cookie = _seed_user()
        server = common.Server(tmp)
        try:
            server.wait_ready()
            times = _measure(server.base, session_cookie, args.clients, args.rounds)
        finally:
            server.stop()
    _report(times, args, database)


def _seed_user() -> str:
    """The benchmark's operator, and a session cookie of theirs made the way login does."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from taskcenter.accounts import roles

    User.objects.filter(username=USERNAME).delete()
    user = User.objects.create_user(username=USERNAME, password=PASSWORD)
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _round(base: str, clients: int, headers: dict[str, str], auth) -> list[tuple[float, int]]:
    """`clients` threads, one request each, released together: (wall time ms, status)."""
    import httpx

    barrier = threading.Barrier(clients)
    calls: list[tuple[float, int]] = []

    def call() -> None:
        with httpx.Client(base_url=base, headers=headers, auth=auth, timeout=300) as http:
            http.get("/healthz")  # the connection is open before the clock starts
            barrier.wait()
            started = time.perf_counter()
            answer = http.get(PATH)
            calls.append(((time.perf_counter() - started) * 1000, answer.status_code))

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return calls


def _measure(base: str, session_cookie: str, clients: int, rounds: int) -> dict[str, list]:
    kinds = {
        "Basic": ({}, (USERNAME, PASSWORD)),
        "session": ({"Cookie": f"sessionid={session_cookie}"}, None),
    }
    calls: dict[str, list[tuple[float, int]]] = {kind: [] for kind in kinds}
    for round_number in range(rounds + 1):
        for kind, (headers, auth) in kinds.items():
            measured = _round(base, clients, headers, auth)
            if round_number:  # round 0 warms both up
                calls[kind] += measured
    return calls


def _report(times: dict[str, list[tuple[float, int]]], args, database: str) -> None:
    load = os.getloadavg()
    print(f"database: {common.describe_database(database)}")
    print(f"{args.clients} concurrent GET {PATH}, {args.rounds} rounds per kind, alternating")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    # Every answer counts, a refusal too (a 429 after seconds of waiting is what a client
    # sees); answers other than 200 are counted on their own.
    figures = {
        kind: {
            "p50_ms": round(common.percentile([ms for ms, _ in calls], 50), 1),
            "p95_ms": round(common.percentile([ms for ms, _ in calls], 95), 1),
            "max_ms": round(max(ms for ms, _ in calls), 1),
            "calls": len(calls),
            "not_200": sum(1 for _, status in calls if status != 200),
        }
        for kind, calls in times.items()
    }
    rows = [
        [kind, *(f"{f[k]:.0f}" for k in ("p50_ms", "p95_ms", "max_ms", "calls", "not_200"))]
        for kind, f in figures.items()
    ]
    common.print_table(["auth", "p50 ms", "p95 ms", "worst ms", "calls", "not 200"], rows)
    ratio = figures["Basic"]["p95_ms"] / figures["session"]["p95_ms"]
    print(
        f"Basic p95 / session p95 = {ratio:.2f} (target <= {TARGET_RATIO:g}): "
        f"{common.verdict(ratio <= TARGET_RATIO)}"
    )
    if args.json:
        figures["ratio_p95"] = round(ratio, 2)  # type: ignore[assignment]
        figures["load_average"] = round(load[0], 2)  # type: ignore[assignment]
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
