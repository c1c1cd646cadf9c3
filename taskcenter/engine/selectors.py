"""The engine's reads of its own tables: worker presence and throughput (fleet page, the
no-worker banner), and the database's uptime (the reaper). One function per question, as
in taskcenter.tasks.selectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max, Q, Sum
from django.utils import timezone

from taskcenter.engine.models import FinishedMinute, WorkerPresence
from taskcenter.tasks import selectors


@dataclass(frozen=True)
class WorkerRow:
    pk: int
    name: str
    hostname: str
    pid: int
    concurrency: int
    queues: list[str]
    running: int
    finished: int
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    online: bool
    attempts: list[tuple[int, int]]  # at work at its last beat
    recent: list[int]  # subtask ids it ran lately, the latest first

    @property
    def died(self) -> bool:
        """Stopped beating without a stop mark: killed, or its host went away."""
        return not self.online and self.stopped_at is None


def online_since(now: datetime | None = None) -> datetime:
    """A worker whose last beat is older than this is offline."""
    return (now or timezone.now()) - timedelta(seconds=settings.TASKCENTER_NO_WORKER_AFTER)


def workers(now: datetime | None = None) -> list[WorkerRow]:
    """Every worker still remembered: online ones first, then the latest seen."""
    since = online_since(now)
    rows = [
        WorkerRow(
            pk=w.pk,
            name=w.name,
            hostname=w.hostname,
            pid=w.pid,
            concurrency=w.concurrency,
            queues=list(w.queues or []),
            running=w.running,
            finished=w.finished,
            started_at=w.started_at,
            last_seen=w.last_seen,
            stopped_at=w.stopped_at,
            online=w.stopped_at is None and w.last_seen >= since,
            attempts=[(int(pk), int(attempt)) for pk, attempt in (w.attempts or [])],
            recent=[int(pk) for pk in (w.recent or [])],
        )
        for w in WorkerPresence.objects.order_by("-last_seen", "name", "-pk")
    ]
    return sorted(rows, key=lambda row: not row.online)  # stable: by last seen within


def worker(worker_id: int, now: datetime | None = None) -> WorkerRow | None:
    """One worker process's row (online, stopped or died), or None when it is forgotten."""
    return next((row for row in workers(now) if row.pk == worker_id), None)


@dataclass(frozen=True)
class Presence:
    """Whether some worker is online, and when one was last seen (None: never)."""

    online: bool
    last_seen: datetime | None


def presence(now: datetime | None = None) -> Presence:
    """One query over the presence rows (a few per worker host; pruned): the latest beat of
    a running worker and the latest beat of any (a clean stop is a worker's last beat)."""
    latest = WorkerPresence.objects.aggregate(
        running=Max("last_seen", filter=Q(stopped_at__isnull=True)), any=Max("last_seen")
    )
    running = latest["running"]
    return Presence(
        online=running is not None and running >= online_since(now), last_seen=latest["any"]
    )


def finished_since(since: datetime) -> int:
    """Attempts ended by workers from the minute of `since` on (whole minutes)."""
    minute = since.replace(second=0, microsecond=0)
    total = FinishedMinute.objects.filter(minute__gte=minute).aggregate(n=Sum("count"))["n"]
    return int(total or 0)


@dataclass(frozen=True)
class QueueRow:
    name: str
    depth: int  # READY attempts routed to it
    oldest_ready_at: datetime | None
    consumers: int  # online workers that consume it


def default_queue() -> str:
    from taskcenter.celery import app

    return app.conf.task_default_queue


def queue_depths(
    online_workers: list[WorkerRow], *, clusters: frozenset[int] | None = None
) -> list[QueueRow]:
    """Each queue's READY attempts and the oldest one's wait, with TASKCENTER_QUEUE_ROUTES
    applied to what routes them (the same rule the sender uses), plus every queue that is
    routed to or consumed, so an empty queue nobody consumes is seen too. `clusters`: count
    the attempts of these clusters' tasks only (a scoped viewer's), None for all."""
    from taskcenter.engine.dispatch import queue_for

    fallback = default_queue()
    depth: dict[str, int] = {}
    oldest: dict[str, datetime] = {}
    for node_type, cluster, count, ready_at in selectors.ready_by_routing_facts(clusters=clusters):
        queue = queue_for(node_type=node_type, cluster=cluster) or fallback
        depth[queue] = depth.get(queue, 0) + count
        if ready_at is not None and (queue not in oldest or ready_at < oldest[queue]):
            oldest[queue] = ready_at
    names = {fallback, *depth}
    names.update(queue for _, queue in settings.TASKCENTER_QUEUE_ROUTES)
    consumers: dict[str, int] = {}
    for worker in online_workers:
        for queue in worker.queues:
            names.add(queue)
            consumers[queue] = consumers.get(queue, 0) + 1
    return [
        QueueRow(name, depth.get(name, 0), oldest.get(name), consumers.get(name, 0))
        for name in sorted(names, key=lambda n: (-depth.get(n, 0), n))
    ]


def database_uptime() -> timedelta | None:
    """How long the database server has been up (PostgreSQL); None where it cannot say."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - pg_postmaster_start_time()")
        return cursor.fetchone()[0]
