"""Send subtask attempts to the workers through Celery.

The services decide what to send and when (taskcenter.tasks.dispatch, on commit); this
module is the sender the engine registers there when its app is ready.
"""

from taskcenter.celery import app
from taskcenter.engine.tasks import run_attempt
from taskcenter.tasks.dispatch import register_attempt_sender


def register() -> None:
    # A lambda, so that the module's functions are looked up when sending (tests replace them).
    register_attempt_sender(lambda attempts: _send_all(attempts))


def _send_all(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages through one producer.

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


def _send(subtask_id: int, attempt: int, producer=None) -> None:
    run_attempt.apply_async(args=[subtask_id, attempt], producer=producer)
