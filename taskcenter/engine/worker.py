"""Worker process setup: database settings that apply inside Celery workers only, and the
consumer that survives a broker outage."""

import functools
import logging
import warnings

from celery.exceptions import CPendingDeprecationWarning
from celery.signals import task_postrun, task_prerun, worker_init
from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

logger = logging.getLogger(__name__)

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


@task_prerun.connect
@task_postrun.connect
def drop_a_broken_connection(**kwargs) -> None:
    """Close a database connection that failed, so that the next statement reconnects.

    Celery's Django fix-up keeps a connection for CELERY_DB_REUSE_MAX tasks without looking
    at it: after a PostgreSQL restart every task of the process failed on "the connection
    is closed" until the worker was restarted by hand. Django marks a connection whose
    statement failed (`errors_occurred`); that one is closed here, the others are kept.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred:
            connection.close()


class Consumer(CeleryConsumer):
    """Celery's consumer, made to live through a broker outage (`worker_consumer` setting).

    On a lost Redis connection Celery first collects the connection (which drops the
    transport's connection parameters) and then closes it; the close tries to restore the
    unacknowledged messages, needs those parameters, and raises AttributeError, which
    Celery's `ignore_errors` does not cover: "Unrecoverable error: AttributeError('NoneType'
    object has no attribute 'hostname')" and the worker exited for good. Here that close
    ignores the AttributeError; the messages it could not restore come back through Redis'
    visibility timeout, and claims are idempotent, so a message seen twice runs once.

    Reconnecting, Celery waits 2, 4, 6 ... up to 30 s between attempts; a worker then
    stays idle up to half a minute after the broker is back. It retries every second here.
    """

    RECONNECT_EVERY_SECONDS = 1.0

    def on_connection_error_after_connected(self, exc):
        connection = self.connection
        if connection is not None:
            connection.close = _quiet_close(connection.close)  # what Celery calls next
            for channel in {
                getattr(self.task_consumer, "channel", None),
                getattr(connection, "_default_channel", None),
            }:
                if channel is not None:
                    _forget_acknowledgements(channel)
        with warnings.catch_warnings():
            # Celery warns that cancelling running tasks on connection loss will become its
            # default; it is off on purpose (settings.py), so the warning says nothing new.
            warnings.simplefilter("ignore", CPendingDeprecationWarning)
            super().on_connection_error_after_connected(exc)

    def ensure_connected(self, conn):
        every = self.RECONNECT_EVERY_SECONDS
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=every, interval_step=0, interval_max=every
        )
        return super().ensure_connected(conn)


def _forget_acknowledgements(channel) -> None:
    """Acknowledgements of messages received on the lost connection (a subtask that ends
    during or after the outage) would go to its torn-down channel and raise the same
    AttributeError from the event loop. They are dropped: the message comes back after
    the broker's visibility timeout and its claim then does nothing."""

    def forget(*args, **kwargs) -> None:
        logger.info("acknowledgement on the lost broker connection dropped")

    channel.basic_ack = channel.basic_reject = forget


def _quiet_close(close):
    def close_ignoring_a_collected_transport() -> None:
        try:
            close()
        except AttributeError:
            logger.info("closing the lost broker connection: already torn down")

    return close_ignoring_a_collected_transport
