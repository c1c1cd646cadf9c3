"""Notifications' reads: one function per question."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from taskcenter.accounts import access
from taskcenter.notifications.models import Channel, Delivery, Event, Notification, Rule


def channels_for(user) -> QuerySet[Channel]:
    """The channels `user` may use: every one for an admin, those open to all otherwise."""
    if access.can_manage_notifications(user):
        return Channel.objects.all()
    return Channel.objects.filter(open_to_all=True)


def rules_for(user) -> QuerySet[Rule]:
    """The rules `user` may see and change: an admin's include the team rules."""
    rules = Rule.objects.select_related("channel", "cluster", "owner").order_by("id")
    if access.can_manage_notifications(user):
        return rules.filter(Q(personal=False) | Q(owner=user))
    return rules.filter(owner=user)


def personal_rules(user) -> QuerySet[Rule]:
    return Rule.objects.filter(owner=user, personal=True).select_related("channel", "cluster")


def watch_rule(user, *, task_id=None, job="", plan_id=None) -> Rule | None:
    """The user's bell rule watching this task, job or plan, if any."""
    return (
        Rule.objects.filter(
            owner=user, personal=True, channel=None, task_id=task_id, job=job, plan_id=plan_id
        )
        .filter(cluster=None)
        .first()
    )


def deliveries(*, channel_id: int | None = None, status: str | None = None) -> QuerySet[Delivery]:
    rows = Delivery.objects.select_related("channel", "event", "rule")
    if channel_id is not None:
        rows = rows.filter(channel_id=channel_id)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-id")


def delivery_attempts(delivery_ids: list[int]) -> dict[int, list]:
    from taskcenter.notifications.models import DeliveryAttempt

    tries: dict[int, list] = {}
    for attempt in DeliveryAttempt.objects.filter(delivery_id__in=delivery_ids).order_by("-id"):
        tries.setdefault(attempt.delivery_id, []).append(attempt)
    return tries


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def inbox(user, limit: int = 100) -> list[Notification]:
    return list(Notification.objects.filter(user=user).select_related("event")[:limit])


def events_for_rule(user, rule: Rule, since, until, limit: int = 500) -> list[Event]:
    """The events `rule` chose in a span, as far as `user` may see them (a digest's list)."""
    from taskcenter.notifications.outbox import matches

    rows = Event.objects.filter(occurred_at__gte=since).order_by("-id")
    if until is not None:
        rows = rows.filter(occurred_at__lte=until)
    if rule.events:
        rows = rows.filter(kind__in=rule.events)
    return [
        event
        for event in rows[: limit * 4]
        if matches(rule, event) and access.event_visible_to(user, event)
    ][:limit]
