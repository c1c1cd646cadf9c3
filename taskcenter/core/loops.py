"""Background loops that run beside the scheduler's tick, each in its own thread.

An app registers a loop from its `ready` (notifications: the outbox drain and the
watchers); `run_scheduler` runs every registered loop in a thread of its own, so a slow
receiver never delays a fire, and runs each once with `--once`. A loop's pass is guarded:
an exception is logged and the loop goes on at its next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connection

logger = logging.getLogger("taskcenter.loops")


@dataclass(frozen=True)
class Loop:
    name: str
    work: Callable[[], object]
    interval: Callable[[], float]  # seconds between passes, read before each wait


_loops: dict[str, Loop] = {}


def register_loop(name: str, work: Callable[[], object], interval: Callable[[], float]) -> None:
    _loops[name] = Loop(name, work, interval)


def registered_loops() -> list[Loop]:
    return list(_loops.values())


def run_pass(loop: Loop) -> None:
    close_old_connections()
    try:
        loop.work()
    except Exception:  # keep the loop alive through a database hiccup
        logger.exception("%s failed", loop.name)


def start_threads(stop: threading.Event) -> list[threading.Thread]:
    """Start every registered loop in a daemon thread that ends when `stop` is set."""

    def run(loop: Loop) -> None:
        try:
            while not stop.is_set():
                run_pass(loop)
                stop.wait(loop.interval())
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(loop,), name=f"loop-{loop.name}", daemon=True)
        for loop in _loops.values()
    ]
    for thread in threads:
        thread.start()
    return threads
