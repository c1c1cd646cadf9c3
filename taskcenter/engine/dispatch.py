"""Send subtask attempts to the workers through Celery.

The services decide what to send and when (taskcenter.tasks.dispatch, on commit); this
module is the sender the engine registers there when its app is ready. A send that
cannot reach the broker is never an error of the operation that committed: the attempts
go to the outbox (taskcenter.engine.outbox) and the reaper sends them when it is back.
"""

from __future__ import annotations

from taskcenter.celery import app
from taskcenter.engine import outbox
from taskcenter.engine.tasks import run_attempt
from taskcenter.tasks.dispatch import register_attempt_sender


def register() -> None:
    # A lambda, so that the module's functions are looked up when sending (tests replace them).
    register_attempt_sender(lambda attempts: send_or_queue(attempts))


def send_or_queue(attempts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Send the attempts; those the broker did not take go to the outbox and are returned."""
    if app.conf.task_always_eager:  # tests run attempts in-process: their errors are theirs
        _send_all(attempts)
        return []
    try:
        _send_all(attempts)
    except Exception as exc:  # noqa: BLE001 - whatever the broker's client raised
        outbox.record(attempts, exc)
        return attempts
    return []


def _send_all(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages through one producer; raises if the broker fails.

    Taking a producer from the pool and declaring the queue for each message of a fan-out
    cost as much as sending it.
    """
    if app.conf.task_always_eager:  # tests run attempts in-process: no broker to talk to
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt)
        return
    with app.producer_or_acquire() as producer:
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt, producer)


def send_now(attempts: list[tuple[int, int]]) -> None:
    """Send, raising when the broker does not take them (the reaper keeps them queued)."""
    _send_all(attempts)


def broker_answers() -> bool:
    """Whether a new connection to the broker can be made now (about 2 s at most)."""
    try:
        with app.connection_for_write() as connection:
            # One retry without a pause: Connection.connect() would wait 2 s before its retry.
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=2
            )
    except Exception:  # noqa: BLE001 - any failure means "not now"
        return False
    return True


def _send(subtask_id: int, attempt: int, producer=None) -> None:
    run_attempt.apply_async(args=[subtask_id, attempt], producer=producer)
