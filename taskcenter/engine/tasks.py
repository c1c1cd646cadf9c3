"""Celery tasks: thin wrappers that take ids and call the engine."""

from celery import shared_task

from taskcenter.engine import reaper, runner


@shared_task(name="taskcenter.run_attempt", acks_late=True, ignore_result=True)
def run_attempt(subtask_id: int, attempt: int) -> None:
    runner.execute_attempt(subtask_id=subtask_id, attempt=attempt)


@shared_task(name="taskcenter.reap", ignore_result=True)
def reap() -> None:
    reaper.reap()
