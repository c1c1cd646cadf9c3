"""Send subtask attempts to the workers through Celery.

The services decide what to send and when (taskcenter.tasks.enqueue, on commit); this
module is the sender the engine registers there when its app is ready. It picks each
attempt's queue from TASKCENTER_QUEUE_ROUTES (by node type and the task's cluster), so
that workers started with `-Q` run only the subtasks meant for them; with no routes every
attempt goes to the default queue. A send that cannot reach the broker is never an error
of the operation that committed: the attempts go to the outbox (taskcenter.engine.outbox)
and the reaper sends them when it is back.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from taskcenter.celery import app
from taskcenter.engine import outbox
from taskcenter.engine.celery_tasks import run_attempt, run_bulk
from taskcenter.tasks import selectors
from taskcenter.tasks.enqueue import register_attempt_sender, register_bulk_sender
from taskcenter.tasks.models import NodeType

logger = logging.getLogger(__name__)


def register() -> None:
    _check_routes(settings.TASKCENTER_QUEUE_ROUTES)
    # A lambda, so that the module's functions are looked up when sending (tests replace them).
    register_attempt_sender(lambda attempts: send_or_queue(attempts))
    register_bulk_sender(lambda bulk_id, copies: send_bulk(bulk_id, copies))


def send_bulk(bulk_id: str, copies: int) -> None:
    """Start a bulk operation's background runs. A send the broker does not take is
    logged; the reaper starts a run again for a bulk whose tasks wait and that nobody
    works on (taskcenter.tasks.verbs.bulk.bulks_stalled)."""
    for _ in range(copies):
        try:
            run_bulk.delay(bulk_id)
        except Exception:  # noqa: BLE001 - whatever the broker's client raised
            if app.conf.task_always_eager:
                raise
            logger.warning(
                "bulk %s: the broker did not take its run; the reaper resends it", bulk_id
            )
            return


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


def _check_routes(routes: list[tuple[dict[str, str], str]]) -> None:
    for conditions, queue in routes:
        node_type = conditions.get("node")
        if node_type is not None and node_type not in NodeType.values:
            raise ImproperlyConfigured(
                f"TASKCENTER_QUEUE_ROUTES: node type {node_type!r} of the route to "
                f"{queue!r} is not one of {', '.join(NodeType.values)}"
            )


def queue_for(*, node_type: str, cluster: str | None) -> str | None:
    """The queue of the first route that matches; None: the default queue."""
    facts = {"node": node_type, "cluster": cluster}
    for conditions, queue in settings.TASKCENTER_QUEUE_ROUTES:
        if all(facts[key] == value for key, value in conditions.items()):
            return queue
    return None


def _queues(attempts: list[tuple[int, int]]) -> dict[int, str | None]:
    """Subtask id -> queue; one query for the whole batch, none without routes."""
    if not settings.TASKCENTER_QUEUE_ROUTES:
        return {}
    return {
        subtask_id: queue_for(node_type=node_type, cluster=cluster)
        for subtask_id, node_type, cluster in selectors.subtask_routing_facts(
            subtask_ids=[subtask_id for subtask_id, _ in attempts]
        )
    }


def _send_all(attempts: list[tuple[int, int]]) -> None:
    """Send (subtask id, attempt) messages through one producer; raises if the broker fails.

    Taking a producer from the pool and declaring the queue for each message of a fan-out
    cost as much as sending it.
    """
    queues = _queues(attempts)
    if app.conf.task_always_eager:  # tests run attempts in-process: no broker to talk to
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt, **_routing(queues, subtask_id))
        return
    with app.producer_or_acquire() as producer:
        for subtask_id, attempt in attempts:
            _send(subtask_id, attempt, producer, **_routing(queues, subtask_id))


def _routing(queues: dict[int, str | None], subtask_id: int) -> dict[str, str]:
    # No keyword at all for the default queue: Celery's default routing, as without routes.
    queue = queues.get(subtask_id)
    return {"queue": queue} if queue else {}


def _send(subtask_id: int, attempt: int, producer=None, **routing) -> None:
    run_attempt.apply_async(args=[subtask_id, attempt], producer=producer, **routing)


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
