"""Database settings that apply inside Celery worker processes only."""

from celery.signals import worker_init
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

_in_worker = False


@worker_init.connect
def mark_worker_process(**kwargs) -> None:
    """The worker's main process; its pool children are forked from it and inherit the flag."""
    global _in_worker
    _in_worker = True
    connections.close_all()  # one opened while the worker started is set up again on reuse


@receiver(connection_created)
def relax_commit_durability(sender, connection, **kwargs) -> None:
    """See TASKCENTER_WORKER_SYNCHRONOUS_COMMIT in settings.py for why this is safe."""
    if (
        _in_worker
        and connection.vendor == "postgresql"
        and not settings.TASKCENTER_WORKER_SYNCHRONOUS_COMMIT
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
