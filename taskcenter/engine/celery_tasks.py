"""Celery tasks: thin wrappers that take ids and call the engine.

Named celery_tasks, not tasks, so it is not mistaken for the tasks app; the registered name
(`taskcenter.run_attempt`) is explicit, so messages already queued route whatever the
module is called."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from taskcenter.engine import runner
from taskcenter.tasks import verbs


# A message taken while the database does not answer is tried again (after 1, 2, 4 ... up
# to 10 s, for about ten minutes) instead of being dropped, which would leave its READY
# attempt to the reaper's re-dispatch minutes later. Running it twice is harmless: the
# claim is a compare-and-set, so an attempt already claimed is skipped. This retry is for
# the message's first claim alone: once an attempt is claimed, the runner records its
# outcome itself, trying again until the database takes it, and lets no database error
# out (a retry here would send this message's attempt, not the one that ended).
@shared_task(
    name="taskcenter.run_attempt",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=False,
    max_retries=60,
)
def run_attempt(subtask_id: int, attempt: int) -> None:
    runner.execute_attempt(subtask_id=subtask_id, attempt=attempt)


# A bulk operation's background run: claims its tasks a batch at a time and does the
# single verb on each (taskcenter.tasks.verbs.bulk). A redelivered message, or several
# copies at once, share what is left: a task is claimed once.
@shared_task(
    name="taskcenter.run_bulk",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=False,
    max_retries=60,
)
def run_bulk(bulk_id: str) -> None:
    verbs.bulk_work(bulk_id=bulk_id)
