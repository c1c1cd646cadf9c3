"""Regenerate docs/screenshots/history-grid(-dark).png and timeline(-dark).png: a job's
history grid and a task's timeline.

The database is make_screenshots.py's (seed_demo's history in a temp dir), plus runs of
"Rolling upgrade of observers" played through the services with time-machine giving each
attempt its moment: observers that fail now and then, retried after an operator's wait,
one run rolled back, the last one still running. Headless Chromium takes the pictures at
1280x800, light and dark, with the keyboard's place on a cell and on a bar.

    .venv/bin/python docs/screenshots/make_history_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_screenshots import ARGS, CHROMIUM, PASSWORD, ROOT, prepare, running_server  # noqa: E402

JOB = "Rolling upgrade of observers"


def play(task, clock: datetime, rng: random.Random, *, fail=(), hold=()) -> datetime:
    """Run the task's READY attempts wave by wave at their moments; return the last one."""
    import time_machine

    from taskcenter.tasks import services
    from taskcenter.tasks.models import SubtaskInstance

    while True:
        ready = list(SubtaskInstance.objects.filter(task=task, status="READY").order_by("pk"))
        if not ready:
            return clock
        ends = []
        for sub in ready:
            began = max(clock, sub.ready_at) + timedelta(seconds=rng.uniform(0.5, 4))
            with time_machine.travel(began, tick=False):
                services.attempt_claim(
                    subtask_id=sub.pk, attempt=sub.attempt, executor="obs-node-2"
                )
            if sub.key in hold:
                continue
            seconds = (
                rng.uniform(20, 70) if sub.key[0] == "z" and "s" in sub.key else rng.uniform(5, 15)
            )
            ends.append((began + timedelta(seconds=seconds), sub))
        if not ends:
            return clock
        for ended, sub in sorted(ends, key=lambda pair: pair[0]):
            ok = sub.key not in fail or sub.attempt > 1
            with time_machine.travel(ended, tick=False):
                services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=ok)
            clock = ended


def build() -> tuple[str, str]:
    import time_machine
    from django.contrib.auth.models import User
    from django.utils import timezone

    from taskcenter.tasks import verbs
    from taskcenter.tasks.models import Tenant

    operator = User.objects.get(username="operator")
    tenants = list(Tenant.objects.order_by("pk")[:2])
    rng = random.Random(20)
    start = timezone.now() - timedelta(hours=2 * 28 + 1)
    last = None
    for index in range(28):
        at = start + timedelta(hours=2 * index)
        with time_machine.travel(at, tick=False):
            task = verbs.task_start(
                definition_name=JOB,
                parameters={"servers_per_zone": 3},
                creator=operator,
                tenant=tenants[index % len(tenants)],
            )
        failing = {f"z{rng.randint(1, 3)}s{rng.randint(1, 3)}"} if index % 3 == 1 else set()
        if index == 27:
            play(task, at, rng, hold={"z2s2", "z2s3"})
            last = task
            continue
        ended = play(task, at, rng, fail=failing)
        if failing and index % 2:
            # The operator looks after a while and retries the failed observer.
            failed = task.subtasks.get(key=next(iter(failing)))
            with time_machine.travel(ended + timedelta(minutes=6), tick=False):
                verbs.subtask_retry(task_id=task.pk, subtask_id=failed.pk, actor=operator)
            play(task, ended + timedelta(minutes=6), rng)
        elif failing and index == 22:
            with time_machine.travel(ended + timedelta(minutes=3), tick=False):
                verbs.task_rollback(task_id=task.pk, actor=operator, reason="give up")
            play(task, ended + timedelta(minutes=3), rng)
    # The timeline: a wider run, one observer failed, retried after the operator's wait.
    at = timezone.now() - timedelta(minutes=40)
    with time_machine.travel(at, tick=False):
        wide = verbs.task_start(
            definition_name=JOB, parameters={"servers_per_zone": 10}, creator=operator
        )
    ended = play(wide, at, rng, fail={"z2s4"})
    observer = wide.subtasks.get(key="z2s4")
    with time_machine.travel(ended + timedelta(minutes=5), tick=False):
        verbs.subtask_retry(task_id=wide.pk, subtask_id=observer.pk, actor=operator)
    play(wide, ended + timedelta(minutes=5), rng, hold={"z3s7"})
    assert last is not None
    first = wide.subtasks.get(key="z2s1")
    return (
        "/jobs/Rolling%20upgrade%20of%20observers/?runs=50#history",
        f"/tasks/{wide.pk}/?view=timeline&subtask={observer.pk}&expand={first.pk}",
    )


def shoot(urls: tuple[str, str], out: Path, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    grid_url, timeline_url = urls
    with running_server(tmp) as base:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for scheme, suffix in (("light", ""), ("dark", "-dark")):
                context = chromium.new_context(
                    viewport={"width": 1280, "height": 800}, color_scheme=scheme
                )
                page = context.new_page()
                page.goto(f"{base}/login/")
                page.fill("#id_username", "operator")
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/tasks/")
                page.goto(base + grid_url)
                page.wait_for_load_state("networkidle")
                page.locator("#history").scroll_into_view_if_needed()
                page.locator(".history-filters button[type=submit]").focus()
                for key in ("Tab", "ArrowDown", "ArrowDown", "ArrowDown", "ArrowDown"):
                    page.keyboard.press(key)
                page.evaluate(
                    "window.scrollTo(0, document.getElementById('history').offsetTop - 70)"
                )
                time.sleep(0.4)
                target = out / f"history-grid{suffix}.png"
                page.screenshot(path=str(target))
                print(f"wrote {target}")
                page.goto(base + timeline_url)
                page.wait_for_load_state("domcontentloaded")
                time.sleep(1.0)
                page.locator("#timeline-svg a.tl-bar.is-selected").first.focus()
                page.evaluate(
                    "window.scrollTo(0, document.querySelector('.view-bar').offsetTop - 70)"
                )
                time.sleep(0.4)
                target = out / f"timeline{suffix}.png"
                page.screenshot(path=str(target))
                print(f"wrote {target}")
                context.close()
            chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tc-history-shots-"))
    os.environ["TASKCENTER_DEMO"] = "true"
    try:
        prepare(tmp)
        shoot(build(), out, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
