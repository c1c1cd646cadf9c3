import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from taskcenter.core import loops
from taskcenter.engine import reaper
from taskcenter.schedules import housekeeping, scheduler

logger = logging.getLogger("taskcenter.scheduler")

TICK_SECONDS = 1.0  # plans fire at second resolution (Quartz has a seconds field)
TICK_LAG = 0.002  # after the whole second, so that the clock has surely passed it


def _until_next_tick() -> float:
    """Seconds to the next whole second: fire times are whole seconds, so a tick just after
    one starts what is due at once rather than up to a second later."""
    return TICK_SECONDS - time.time() % TICK_SECONDS + TICK_LAG


class Command(BaseCommand):
    help = (
        "Run the scheduler loop: fire due schedules every second, reap lost attempts, "
        "prune old data once a day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, once=False, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        interval = settings.TASKCENTER_REAPER_INTERVAL
        self.stdout.write(
            f"scheduler: firing schedules every {TICK_SECONDS:g} s, reaping every {interval:g} s"
        )
        next_reap = 0.0
        daily = housekeeping.Daily(hour=settings.TASKCENTER_RETENTION_HOUR, now=timezone.now())
        if once:
            for loop in loops.registered_loops():
                loops.run_pass(loop)
        else:
            # The registered loops (the notifications' outbox) run beside the tick.
            loops.start_threads(stop)
        while not stop.is_set():
            close_old_connections()
            self._fire()
            if daily.poll(timezone.now()):
                self.stdout.write("scheduler: daily housekeeping started (retention)")
            if time.monotonic() >= next_reap:
                self._reap()
                next_reap = time.monotonic() + interval
            if once:
                break
            stop.wait(_until_next_tick())

    def _fire(self) -> None:
        report = self._guarded("schedule tick", lambda: scheduler.tick(now=timezone.now()))
        if report and (report.started or report.skipped or report.missed):
            self.stdout.write(
                f"scheduler: {len(report.started)} run(s) started, {report.skipped} "
                f"skipped, {report.missed} missed"
            )

    def _reap(self) -> None:
        report = self._guarded("reaper pass", reaper.reap)
        if report and (
            report.lost or report.redispatched or report.settled or report.bulks_resumed
        ):
            self.stdout.write(
                f"scheduler: {report.lost} lost attempt(s) failed, "
                f"{report.redispatched} re-sent, {report.settled} task(s) settled, "
                f"{report.bulks_resumed} bulk operation(s) resumed"
            )

    @staticmethod
    def _guarded(what: str, work):
        try:
            return work()
        except Exception:  # keep the loop alive through a database hiccup
            logger.exception("%s failed", what)
            return None
