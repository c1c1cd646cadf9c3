"""The events' recorder: one INSERT in the transaction of the change (see
taskcenter.tasks.events); the outbox loop does the rest."""

from __future__ import annotations

from django.utils import timezone

from taskcenter.notifications.models import Event
from taskcenter.tasks.events import DomainEvent


def record(events: list[DomainEvent]) -> None:
    Event.objects.bulk_create(
        [
            Event(
                key=event.key[:255],
                kind=event.kind,
                object_type=event.object_type,
                object_id=event.object_id,
                name=event.name[:255],
                status=event.status,
                cluster_id=event.cluster_id,
                task_id=event.task_id,
                plan_id=event.plan_id,
                job=event.job,
                detail=event.detail,
                occurred_at=event.occurred_at or timezone.now(),
            )
            for event in events
        ],
        ignore_conflicts=True,
    )
