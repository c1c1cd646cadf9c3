"""Hand READY attempts to the engine, only once the transaction that made them READY commits.

A worker that received the message before the commit would not find the READY row.

The engine runs attempts by calling the services, so the services must not import the
engine back (that was a circle: services -> engine -> services). The engine registers
the function that sends attempts to its workers when its app is ready
(`EngineConfig.ready`), and the services only know this module. A registered sender
rather than sending Celery tasks by name from here: Celery's eager mode, which the
state-machine tests use, only runs tasks sent through the task object, and how messages
are produced (one producer for a whole fan-out) stays the engine's business.

A send runs after the commit, so it must not fail the operation: when the broker does
not answer, the sender keeps the attempts in its outbox, to be sent when the broker is
back, and returns them. A caller that wants to say so (run_task) collects them with
`collect_queued()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

# Sends (subtask id, attempt) messages, after the commit; returns those it could only queue
# for later (the broker did not answer), or None.
AttemptSender = Callable[[list[tuple[int, int]]], list[tuple[int, int]] | None]

# Starts `copies` background runs of a bulk operation (taskcenter.tasks.verbs.bulk), after
# the commit that created it.
BulkSender = Callable[[str, int], None]

_sender: AttemptSender | None = None
_bulk_sender: BulkSender | None = None
_collecting = threading.local()


def register_attempt_sender(sender: AttemptSender | None) -> AttemptSender | None:
    """Make `sender` the one that sends attempts; returns the one it replaces."""
    global _sender
    previous, _sender = _sender, sender
    return previous


def register_bulk_sender(sender: BulkSender | None) -> BulkSender | None:
    """Make `sender` the one that starts bulk operations' background runs."""
    global _bulk_sender
    previous, _bulk_sender = _bulk_sender, sender
    return previous


def enqueue_bulk(bulk_id: str, copies: int = 1) -> None:
    """Start `copies` background runs of a bulk operation once its transaction commits;
    each claims the operation's tasks one batch at a time, so copies share the work."""

    def send() -> None:
        if _bulk_sender is None:
            raise ImproperlyConfigured(
                "No bulk sender is registered: taskcenter.engine must be in INSTALLED_APPS."
            )
        _bulk_sender(bulk_id, copies)

    transaction.on_commit(send)


def enqueue_attempts(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages after the commit: one callback for them all.

    A fan-out makes a thousand subtasks READY at once; one callback lets the sender take a
    producer once for all of them.
    """
    if attempts:
        transaction.on_commit(lambda: _send(attempts))


def enqueue_attempt(subtask_id: int, attempt: int) -> None:
    enqueue_attempts([(subtask_id, attempt)])


@contextmanager
def collect_queued() -> Iterator[list[tuple[int, int]]]:
    """Within the block, the attempts this thread's sends could only queue (broker away)."""
    queued: list[tuple[int, int]] = []
    outer = getattr(_collecting, "queued", None)
    _collecting.queued = queued
    try:
        yield queued
    finally:
        _collecting.queued = outer


def queued_notice(queued: list[tuple[int, int]]) -> str:
    """What the API and the pages say after an operation whose work could only be queued."""
    return (
        f"The broker does not answer: {len(queued)} subtask(s) are queued and will be sent "
        "to the workers as soon as it is back."
    )


def _send(attempts: list[tuple[int, int]]) -> None:
    if _sender is None:
        raise ImproperlyConfigured(
            "No attempt sender is registered: taskcenter.engine must be in INSTALLED_APPS."
        )
    queued = _sender(attempts)
    collecting = getattr(_collecting, "queued", None)
    if queued and collecting is not None:
        collecting.extend(queued)
