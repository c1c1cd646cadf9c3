"""Regenerate docs/screenshots/{list,flow,log,audit}.png (and the dark and narrow variants).

A throw-away database (SQLite in a temp dir) gets seed_demo's history plus a few tasks put
in telling states through the services: a rolling upgrade half way through with a failed
observer (flow view), a backup writing its log (log view), a skip and a rollback with
reasons (audit). The engine-facing services play the worker's part, so no worker is needed
and the pictures are the same on every run. Then `runserver` serves it and headless Chromium
(Playwright, Debian's chromium) takes the pictures at 1280x800.

    .venv/bin/python docs/screenshots/make_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "screenshot-Pa55!"


def prepare(tmp: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "taskcenter.settings"
    os.environ["TASKCENTER_VAR_DIR"] = str(tmp / "var")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'shots.sqlite3'}"
    os.environ["TASKCENTER_DEMO_PASSWORD"] = PASSWORD
    os.environ["TASKCENTER_DEMO"] = "true"  # seed_demo is the demo app's command
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    os.chdir(tmp)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", tasks=300, verbosity=0)
    # The worker these pictures pretend to be (the script plays its part): seen now, and
    # online for the whole shoot (TASKCENTER_NO_WORKER_AFTER below), so no banner shows.
    from django.utils import timezone

    from taskcenter.engine.models import WorkerPresence

    now = timezone.now()
    WorkerPresence.objects.create(
        name="celery@obs-node-2",
        hostname="obs-node-2",
        pid=4242,
        concurrency=4,
        queues=["taskcenter"],
        started_at=now,
        last_seen=now,
    )
    os.environ["TASKCENTER_NO_WORKER_AFTER"] = "86400"


def run(task, *, fail=(), hold=(), only=None):
    """Play the worker: finish READY attempts (fail some, leave some running)."""
    from taskcenter.tasks import services
    from taskcenter.tasks.models import SubtaskInstance

    while True:
        ready = list(SubtaskInstance.objects.filter(task=task, status="READY").order_by("pk"))
        if only is not None:
            ready = [s for s in ready if s.name in only or s.name in hold or s.name in fail]
        if not ready:
            return
        for sub in ready:
            services.attempt_claim(subtask_id=sub.pk, attempt=sub.attempt, executor="obs-node-2")
            services.log_append(
                subtask_id=sub.pk,
                attempt=sub.attempt,
                data=f"start run {sub.run_time} of '{sub.name}' on obs-node-2\n".encode(),
            )
            if sub.name in hold:
                continue
            ok = sub.name not in fail
            message = "upgrade done" if ok else "observer did not come back within 300 s"
            services.attempt_finish(
                subtask_id=sub.pk, attempt=sub.attempt, succeeded=ok, log=f"{message}\n".encode()
            )
        if all(s.name in hold for s in ready):
            return


def build_states() -> dict[str, str]:
    from django.contrib.auth.models import User

    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import Tenant

    operator = User.objects.get(username="operator")
    admin = User.objects.get(username="admin")
    tenant = Tenant.objects.order_by("pk").first()

    # Audit: a skip and a rollback, with reasons.
    skipped = verbs.task_start(definition_name="Migrate tenant", creator=operator, tenant=tenant)
    run(skipped, fail={"Copy tenant data"})
    copy = skipped.subtasks.get(name="Copy tenant data")
    verbs.subtask_skip(
        task_id=skipped.pk,
        subtask_id=copy.pk,
        actor=operator,
        reason="Rows copied with the bulk loader; counts verified against the source",
    )
    run(skipped)
    undone = verbs.task_start(definition_name="Migrate tenant", creator=admin, tenant=tenant)
    run(undone, fail={"Verify row counts"})
    verbs.task_rollback(
        task_id=undone.pk,
        actor=admin,
        reason="Checksum mismatch on 2 tables; retry after the window",
    )
    run(undone)

    # Flow: a rolling upgrade half way, zone 2 running with one observer failed.
    upgrade = verbs.task_start(
        definition_name="Rolling upgrade of observers",
        parameters={"servers_per_zone": 8},
        creator=operator,
        tenant=tenant,
    )
    zone1 = {"Pre-check upgrade", "Verify zone1"} | {
        f"Upgrade observer zone1-{n:02d}" for n in range(1, 9)
    }
    run(upgrade, only=zone1)
    run(
        upgrade,
        fail={"Upgrade observer zone2-03"},
        hold={"Upgrade observer zone2-06", "Upgrade observer zone2-07"},
        only={f"Upgrade observer zone2-{n:02d}" for n in (1, 2, 4, 5, 8)},
    )

    # Log: a backup writing its progress.
    backup = verbs.task_start(
        definition_name="Back up cluster",
        parameters={"seconds": 600},
        creator=operator,
        tenant=tenant,
    )
    run(backup, hold={"Back up data files"})
    data_files = backup.subtasks.get(name="Back up data files")
    data_files.refresh_from_db()
    lines = "".join(
        f"2026-05-04 10:{12 + i // 60:02d}:{i % 60:02d}.{(i * 37) % 1000:03d} [obs-node-2] "
        f"copied block {i} of 600 ({i * 256} MB, {24 + i % 7} MB/s)\n"
        for i in range(1, 58)
    )
    services.log_append(subtask_id=data_files.pk, attempt=data_files.attempt, data=lines.encode())

    failed_node = upgrade.subtasks.get(name="Upgrade observer zone2-03")
    return {
        "list": "/tasks/",
        "flow": f"/tasks/{upgrade.pk}/?subtask={failed_node.pk}",
        "log": f"/tasks/{backup.pk}/?view=log&subtask={data_files.pk}",
        "audit": "/audit/",
    }


@contextlib.contextmanager
def running_server(tmp: Path):
    """`runserver` on a free port over the prepared database; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=tmp,
        env=dict(os.environ, DEBUG="false"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def shoot(pages: dict[str, str], out: Path, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    with running_server(tmp) as base:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for scheme, width, height, suffix in (
                ("light", 1280, 800, ""),
                ("dark", 1280, 800, "-dark"),
                ("light", 420, 860, "-narrow"),
            ):
                context = chromium.new_context(
                    viewport={"width": width, "height": height}, color_scheme=scheme
                )
                page = context.new_page()
                page.goto(f"{base}/login/")
                page.fill("#id_username", "operator")
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/tasks/")
                for name, url in pages.items():
                    if suffix and name not in ("list", "flow"):
                        continue
                    page.goto(base + url)
                    page.wait_for_load_state("networkidle")
                    time.sleep(0.6)
                    target = out / f"{name}{suffix}.png"
                    page.screenshot(path=str(target))
                    print(
                        f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
                    )
                context.close()
            chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tc-shots-"))
    try:
        prepare(tmp)
        shoot(build_states(), out, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
