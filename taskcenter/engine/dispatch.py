"""Enqueue subtask attempts on Celery, only once the transaction that made them READY commits.

A worker that received the message before the commit would not find the READY row.
"""

from django.db import transaction


def enqueue_attempts(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages after the commit: one callback, one producer.

    A fan-out makes a thousand subtasks READY at once; taking a producer from the pool and
    declaring the queue for each message cost as much as sending it.
    """
    if attempts:
        transaction.on_commit(lambda: _send_all(attempts))


def enqueue_attempt(subtask_id: int, attempt: int) -> None:
    enqueue_attempts([(subtask_id, attempt)])


def _send_all(attempts: list[tuple[int, int]]) -> None:
    from taskcenter.celery import app

    if app.conf.task_always_eager:  # tests run attempts in-process: no broker to talk to
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt)
        return
    with app.producer_or_acquire() as producer:
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt, producer)


def _send(subtask_id: int, attempt: int, producer=None) -> None:
    from taskcenter.engine.tasks import run_attempt

    run_attempt.apply_async(args=[subtask_id, attempt], producer=producer)
