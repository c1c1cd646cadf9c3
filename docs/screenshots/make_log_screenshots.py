"""Regenerate docs/screenshots/log-attempts.png and log-attempts-dark.png: the log panel
with its attempt picker, terminal colours and a search.

The database is make_screenshots.py's (seed_demo's history in a temp dir), plus a
migration whose copy step failed and was retried, played through the services; its log
holds coloured output. Headless Chromium picks the attempt, types a search and takes the
pictures at 1280x800, light (the latest attempt) and dark (the failed first attempt).

    .venv/bin/python docs/screenshots/make_log_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_screenshots import ARGS, CHROMIUM, PASSWORD, ROOT, prepare, running_server  # noqa: E402

FIRST = (
    "start run 1 of 'Copy tenant data' on obs-node-2\n"
    "\x1b[1mcopy: 14 tables, 2.1 GB\x1b[0m\n"
    "copy: table orders ........ \x1b[32mOK\x1b[0m (412 MB)\n"
    "copy: table order_items ... \x1b[32mOK\x1b[0m (1.2 GB)\n"
    "copy: table customers ..... \x1b[33mslow\x1b[0m (38 MB/s)\n"
    "copy: table payments ...... \x1b[31mFAILED\x1b[0m\n"
    "\x1b[31mERROR 4012 (HY000): timeout waiting for the target's log sync\x1b[0m\n"
    "copy failed on purpose (fail_step=copy, run 1)\n"
)
SECOND = (
    "start run 2 of 'Copy tenant data' on obs-node-2\n"
    "\x1b[1mcopy: 14 tables, 2.1 GB (resuming after table customers)\x1b[0m\n"
    "copy: table payments ...... \x1b[32mOK\x1b[0m (96 MB)\n"
    "copy: table refunds ....... \x1b[32mOK\x1b[0m (12 MB)\n"
    "copy: table invoices ...... \x1b[32mOK\x1b[0m (240 MB)\n"
    "copy: table shipments ..... \x1b[36mcopying\x1b[0m 61 %\n"
)


def build() -> str:
    from django.contrib.auth.models import User

    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import SubtaskInstance, Tenant

    operator = User.objects.get(username="operator")
    tenant = Tenant.objects.order_by("pk").first()
    task = verbs.task_start(definition_name="Migrate tenant", creator=operator, tenant=tenant)

    def play(*, fail: bool = False, hold: bool = False) -> None:
        for sub in SubtaskInstance.objects.filter(task=task, status="READY").order_by("pk"):
            services.attempt_claim(subtask_id=sub.pk, attempt=sub.attempt, executor="obs-node-2")
            if sub.name == "Copy tenant data":
                data = FIRST if sub.attempt == 1 else SECOND
                services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=data.encode())
                if hold:
                    continue
                services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=not fail)
                continue
            services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=b"step done\n")
            services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True)

    for _ in range(2):
        play()  # pre-check, snapshot
    play(fail=True)
    copy = task.subtasks.get(name="Copy tenant data")
    verbs.subtask_retry(task_id=task.pk, subtask_id=copy.pk, actor=operator)
    play(hold=True)
    return f"/tasks/{task.pk}/?view=log&subtask={copy.pk}"


def shoot(url: str, out: Path, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    with running_server(tmp) as base:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for scheme, attempt, query, suffix in (
                ("light", None, "table", ""),
                ("dark", "1", "failed", "-dark"),
            ):
                context = chromium.new_context(
                    viewport={"width": 1280, "height": 800}, color_scheme=scheme
                )
                page = context.new_page()
                page.goto(f"{base}/login/")
                page.fill("#id_username", "operator")
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/tasks/")
                page.goto(base + url)
                if attempt:
                    page.get_by_label("Attempt", exact=True).select_option(attempt)
                    page.wait_for_url(f"**attempt={attempt}")
                page.get_by_role("searchbox", name="Search this log").fill(query)
                page.keyboard.press("Enter")
                time.sleep(0.8)
                target = out / f"log-attempts{suffix}.png"
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
    tmp = Path(tempfile.mkdtemp(prefix="tc-log-shots-"))
    os.environ["TASKCENTER_DEMO"] = "true"  # seed_demo and the demo definitions
    try:
        prepare(tmp)
        shoot(build(), out, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
