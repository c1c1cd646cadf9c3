import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from taskcenter.engine import reaper

logger = logging.getLogger("taskcenter.scheduler")


class Command(BaseCommand):
    help = "Run the scheduler loop: the reaper of lost attempts (and, later, schedule triggers)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, once=False, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        interval = settings.TASKCENTER_REAPER_INTERVAL
        self.stdout.write(f"scheduler: reaping every {interval:g} s")
        while not stop.is_set():
            close_old_connections()
            try:
                report = reaper.reap()
                if report.lost or report.redispatched or report.settled:
                    self.stdout.write(
                        f"scheduler: {report.lost} lost attempt(s) failed, "
                        f"{report.redispatched} re-sent, {report.settled} task(s) settled"
                    )
            except Exception:  # keep the loop alive through a database hiccup
                logger.exception("reaper pass failed")
            if once:
                break
            stop.wait(interval)
