"""The failure drill with real processes: the receiver is down while the outbox's drainer
(a real `run_scheduler`, which runs the notifications loop) is killed with SIGKILL in the
middle of its retries, and more events happen while nothing drains. When both are back,
every event is delivered and none twice, counted by the receiver by webhook id.

The drainer runs with short retry settings (environment variables), so the drill takes
seconds; every wait is on a condition."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from taskcenter.notifications.models import Delivery
from tests.conftest import ROOT, _database_url, end_process_group, wait_for
from tests.factories import failed_task
from tests.notifications.receivers import WebhookReceiver
from tests.notifications.test_outbox import team_rule, webhook_channel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Retries after 0.2 s, 0.5 s, then every second; a claim held by a killed drainer is
# taken again 3.5 s later (3 timeouts and the grace); no folding into digests.
SHORT_RETRIES = {
    "TASKCENTER_NOTIFY_INTERVAL": "0.05",
    "TASKCENTER_NOTIFY_TIMEOUT": "1",
    "TASKCENTER_NOTIFY_RETRY_DELAYS": "0.2,0.5,1",
    "TASKCENTER_NOTIFY_LEASE_GRACE": "0.5",
    "TASKCENTER_NOTIFY_FLOOD_LIMIT": "1000",
}
BEFORE_KILL = 12  # failures whose messages are being retried when the drainer dies
WHILE_DOWN = 8  # failures while no drainer runs


class Drainer:
    """`manage.py run_scheduler` on the test database, in its own process group."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(SHORT_RETRIES, DATABASE_URL=_database_url(), PYTHONUNBUFFERED="1")
        start_mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "run_scheduler"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc
        wait_for(
            lambda: (
                b"scheduler: firing" in self.log_path.read_bytes()[start_mark:]
                or proc.poll() is not None
            ),
            timeout=60,
        )
        if proc.poll() is not None:
            pytest.fail(f"run_scheduler exited at start:\n{self.log_path.read_text()}")

    def kill(self) -> int:
        """SIGKILL the whole process group, as a crash would; answers the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=10)
        self.proc = None
        return code

    def stop(self) -> None:
        if self.proc is not None:
            end_process_group(self.proc, signal.SIGTERM)
            self.proc = None


@pytest.fixture
def drainer(tmp_path):
    process = Drainer(tmp_path / "scheduler.log")
    yield process
    process.stop()


def _statuses() -> dict[str, int]:
    return dict(Counter(str(s) for s in Delivery.objects.values_list("status", flat=True)))


def test_drill_receiver_down_and_the_drainer_killed_then_both_back(admin, drainer):
    # The receiver's port is held, bound but not listening: connections are refused, as
    # by a receiver that is down, and no other process can take the port meanwhile.
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    channel, secret = webhook_channel(admin, f"http://127.0.0.1:{port}/hook")
    team_rule(admin, channel, events=["task.failed"])
    for _ in range(BEFORE_KILL):
        failed_task()

    drainer.start()
    # Mid-way: every message made and tried at least twice, none delivered.
    wait_for(
        lambda: (
            Delivery.objects.count() == BEFORE_KILL
            and not Delivery.objects.filter(attempts__lt=2).exists()
        ),
        timeout=20,
        interval=0.02,
    )
    assert drainer.kill() == -signal.SIGKILL
    assert _statuses() == {"PENDING": BEFORE_KILL}

    for _ in range(WHILE_DOWN):  # events that nothing fans out until the drainer is back
        failed_task()

    placeholder.close()
    expected = BEFORE_KILL + WHILE_DOWN
    with WebhookReceiver(secret=secret, port=port) as receiver:
        drainer.start()
        wait_for(lambda: _statuses() == {"DELIVERED": expected}, timeout=25)
        wait_for(lambda: len(receiver.received) >= expected, timeout=5)
        drainer.stop()  # nothing more may arrive once every message is settled
        received = list(receiver.received)
        counts = dict(receiver.ids)

    uids = set(Delivery.objects.values_list("uid", flat=True))
    assert len(uids) == expected
    # Every event delivered, none twice, each with the id it had on its failed attempts.
    assert counts == dict.fromkeys(uids, 1)
    assert sorted(r["id"] for r in received) == sorted(uids)
    assert receiver.rejected == 0
    assert {r["body"]["type"] for r in received} == {"task.failed"}
