"""The outbox loop's passes (registered with taskcenter.core.loops, run beside the
scheduler's tick) and the watchers that turn states that last into events: a failed task
left waiting for an operator, no worker seen, a queue whose oldest attempt is too old."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from taskcenter.engine import selectors as engine_selectors
from taskcenter.notifications import outbox
from taskcenter.notifications.models import Delivery, DeliveryStatus, Event
from taskcenter.tasks import events
from taskcenter.tasks.models import TaskInstance, TaskStatus

WATCH_INTERVAL = 15.0
# How far back the watchers look for a wait that began (keys make a repeat harmless).
WATCH_LOOKBACK = timedelta(minutes=10)


def interval() -> float:
    return settings.TASKCENTER_NOTIFY_INTERVAL


def watch_interval() -> float:
    return WATCH_INTERVAL


def drain(now: datetime | None = None) -> None:
    """Fan out every new event, then send what is due, until neither has work left."""
    while outbox.fan_out(now) or outbox.send_due(now):
        pass


def watch(now: datetime | None = None) -> None:
    now = now or timezone.now()
    emit_waiting_tasks(now)
    emit_no_worker(now)
    emit_lagging_queues(now)
    prune(now)


PRUNE_BATCH = 1000


def prune(now: datetime) -> int:
    """Forget events and deliveries older than TASKCENTER_NOTIFY_KEEP_DAYS (one batch of
    each per pass): a delivery still pending is kept, and so is its event."""
    before = now - timedelta(days=settings.TASKCENTER_NOTIFY_KEEP_DAYS)
    old = Delivery.objects.filter(created_at__lt=before).exclude(status=DeliveryStatus.PENDING)
    deliveries = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
    Delivery.objects.filter(pk__in=deliveries).delete()
    events = list(
        Event.objects.filter(occurred_at__lt=before, fanned_out=True)
        .exclude(deliveries__status=DeliveryStatus.PENDING)
        .values_list("pk", flat=True)[:PRUNE_BATCH]
    )
    Event.objects.filter(pk__in=events).delete()
    return len(deliveries) + len(events)


def emit_waiting_tasks(now: datetime) -> None:
    """task.waiting: a task that failed TASKCENTER_NOTIFY_WAITING_AFTER ago and was left
    as it is (no retry, rollback or skip since)."""
    until = now - timedelta(seconds=settings.TASKCENTER_NOTIFY_WAITING_AFTER)
    waiting = TaskInstance.objects.filter(
        status=TaskStatus.FAILED, finish_time__lte=until, finish_time__gt=until - WATCH_LOOKBACK
    ).values_list("pk", "name", "cluster_id", "definition__name", "finish_time")[:500]
    kind = events.Kind.TASK_WAITING
    events.emit(
        *(
            events.DomainEvent(
                kind=kind,
                key=f"{kind}:{pk}:{finished.isoformat()}",
                object_type="task",
                object_id=pk,
                name=name,
                status=TaskStatus.FAILED,
                cluster_id=cluster_id,
                task_id=pk,
                job=job or "",
                occurred_at=now,
                detail={"failedAt": finished.isoformat()},
            )
            for pk, name, cluster_id, job, finished in waiting
            if finished is not None
        )
    )


def emit_no_worker(now: datetime) -> None:
    """fleet.no_worker: once per outage (keyed by the last beat seen)."""
    presence = engine_selectors.presence(now)
    if presence.online or presence.last_seen is None:
        return
    kind = events.Kind.FLEET_NO_WORKER
    events.emit(
        events.DomainEvent(
            kind=kind,
            key=f"{kind}:{presence.last_seen.isoformat()}",
            object_type="fleet",
            object_id=None,
            name="workers",
            status="OFFLINE",
            occurred_at=now,
            detail={"lastSeen": presence.last_seen.isoformat()},
        )
    )


def emit_lagging_queues(now: datetime) -> None:
    """queue.lagging: a queue whose oldest READY attempt waits longer than
    TASKCENTER_NOTIFY_QUEUE_LAG (once per oldest attempt's wait)."""
    lag = timedelta(seconds=settings.TASKCENTER_NOTIFY_QUEUE_LAG)
    rows = engine_selectors.queue_depths(engine_selectors.workers(now))
    kind = events.Kind.QUEUE_LAGGING
    events.emit(
        *(
            events.DomainEvent(
                kind=kind,
                key=f"{kind}:{row.name}:{_iso(row.oldest_ready_at)}",
                object_type="queue",
                object_id=None,
                name=row.name,
                status="LAGGING",
                occurred_at=now,
                detail={
                    "depth": row.depth,
                    "oldestReadyAt": _iso(row.oldest_ready_at),
                    "consumers": row.consumers,
                },
            )
            for row in rows
            if row.oldest_ready_at is not None and now - row.oldest_ready_at > lag
        )
    )


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
