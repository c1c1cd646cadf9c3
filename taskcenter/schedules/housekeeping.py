"""Work the scheduler does once a day, beside firing plans: registered by the app that
owns it (retention registers its prune when its app is ready), so the scheduler imports
none of the packages whose data it keeps tidy.

The daily work runs in a thread of its own, so that a long pass (a first prune of a
year's data) never holds up a fire: the tick goes on every second meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection

logger = logging.getLogger("taskcenter.scheduler")

_daily: dict[str, Callable[[], object]] = {}


def register_daily(name: str, work: Callable[[], object]) -> None:
    """Run `work()` once a day from the scheduler (registering a name again replaces it)."""
    _daily[name] = work


def next_run(now: datetime, hour: int) -> datetime:
    """The next `hour`:00 of `now`'s zone strictly after `now`."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


class Daily:
    """When the daily work is due, and the thread that does it (one pass at a time)."""

    def __init__(self, *, hour: int, now: datetime):
        self.hour = hour
        self.due = next_run(now, hour)
        self.thread: threading.Thread | None = None

    def poll(self, now: datetime) -> bool:
        """Start the daily work if it is due and no pass is under way; True if started."""
        if now < self.due or (self.thread is not None and self.thread.is_alive()):
            return False
        self.due = next_run(now, self.hour)
        self.thread = threading.Thread(target=run_daily, name="taskcenter-daily", daemon=True)
        self.thread.start()
        return True


def run_daily() -> None:
    """Every registered piece of daily work, each on its own: one that fails is logged and
    the others still run."""
    try:
        for name, work in list(_daily.items()):
            try:
                logger.info("daily %s: %s", name, work())
            except Exception:
                logger.exception("daily %s failed", name)
    finally:
        connection.close()  # this thread's own connection
