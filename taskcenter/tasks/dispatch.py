"""Hand READY attempts to the engine, only once the transaction that made them READY commits.

A worker that received the message before the commit would not find the READY row.

The engine runs attempts by calling the services, so the services must not import the
engine back (that was a circle: services -> engine -> services). The engine registers
the function that sends attempts to its workers when its app is ready
(`EngineConfig.ready`), and the services only know this module. A registered sender
rather than sending Celery tasks by name from here: Celery's eager mode, which the
state-machine tests use, only runs tasks sent through the task object, and how messages
are produced (one producer for a whole fan-out) stays the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

# Sends (subtask id, attempt) messages, after the commit.
AttemptSender = Callable[[list[tuple[int, int]]], None]

_sender: AttemptSender | None = None


def register_attempt_sender(sender: AttemptSender | None) -> AttemptSender | None:
    """Make `sender` the one that sends attempts; returns the one it replaces."""
    global _sender
    previous, _sender = _sender, sender
    return previous


def enqueue_attempts(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages after the commit: one callback for them all.

    A fan-out makes a thousand subtasks READY at once; one callback lets the sender take a
    producer once for all of them.
    """
    if attempts:
        transaction.on_commit(lambda: _send(attempts))


def enqueue_attempt(subtask_id: int, attempt: int) -> None:
    enqueue_attempts([(subtask_id, attempt)])


def _send(attempts: list[tuple[int, int]]) -> None:
    if _sender is None:
        raise ImproperlyConfigured(
            "No attempt sender is registered: taskcenter.engine must be in INSTALLED_APPS."
        )
    _sender(attempts)
