"""Enqueue subtask attempts on Celery, only once the transaction that made them READY commits.

A worker that received the message before the commit would not find the READY row.
"""

from django.db import transaction


def enqueue_attempt(subtask_id: int, attempt: int) -> None:
    transaction.on_commit(lambda: _send(subtask_id, attempt))


def _send(subtask_id: int, attempt: int) -> None:
    from taskcenter.engine.tasks import run_attempt

    run_attempt.apply_async(args=[subtask_id, attempt])
