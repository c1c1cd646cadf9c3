"""What a delivery says: the webhook body (type, timestamp, data, as Standard Webhooks
suggests), a subject and the mail's text and HTML, with the link to the page."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from taskcenter.notifications.models import Delivery, DeliveryKind, Event, Rule
from taskcenter.tasks.models import Cluster

UNSUBSCRIBE_SALT = "taskcenter.notifications.unsubscribe"
DIGEST_TYPE = "notification.digest"
TEST_TYPE = "notification.test"


def absolute(path: str) -> str:
    return f"{settings.TASKCENTER_BASE_URL}{path}"


def event_url(event: Event) -> str:
    if event.task_id:
        return absolute(reverse("dashboard:task_detail", args=[event.task_id]))
    if event.plan_id:
        return absolute(reverse("dashboard:schedule_detail", args=[event.plan_id]))
    return absolute(reverse("dashboard:fleet"))


def digest_url(delivery: Delivery) -> str:
    """The events a digest folds: the events page filtered by its rule and time span."""
    query = {"rule": delivery.rule_id or "", "since": delivery.created_at.isoformat()}
    if delivery.digest_until:
        query["until"] = delivery.digest_until.isoformat()
    return absolute(reverse("dashboard:notification_events") + "?" + urlencode(query))


def unsubscribe_url(rule: Rule) -> str:
    token = signing.dumps(rule.pk, salt=UNSUBSCRIBE_SALT)
    return absolute(reverse("dashboard:notification_unsubscribe", args=[token]))


def rule_of_token(token: str) -> int | None:
    try:
        return int(signing.loads(token, salt=UNSUBSCRIBE_SALT))
    except (signing.BadSignature, ValueError, TypeError):
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_data(event: Event, clusters: dict[int, str]) -> dict:
    """The object an event concerns, as the webhook body's data carries it."""
    cluster = (
        {"id": event.cluster_id, "name": clusters.get(event.cluster_id, "")}
        if event.cluster_id
        else None
    )
    return {
        "eventId": event.uid,
        "object": event.object_type,
        "id": event.object_id,
        "name": event.name,
        "status": event.status,
        "cluster": cluster,
        "taskId": event.task_id,
        "planId": event.plan_id,
        "job": event.job or None,
        "url": event_url(event),
        "detail": event.detail,
    }


def body_of(delivery: Delivery, clusters: dict[int, str]) -> dict:
    if delivery.kind == DeliveryKind.EVENT and delivery.event is not None:
        event = delivery.event
        return {
            "type": event.kind,
            "timestamp": _iso(event.occurred_at),
            "data": event_data(event, clusters),
        }
    if delivery.kind == DeliveryKind.DIGEST:
        return {
            "type": DIGEST_TYPE,
            "timestamp": _iso(delivery.digest_until or timezone.now()),
            "data": {
                "count": delivery.digest_count,
                "kinds": delivery.digest_kinds,
                "ruleId": delivery.rule_id,
                "from": _iso(delivery.created_at),
                "until": _iso(delivery.digest_until),
                "url": digest_url(delivery),
            },
        }
    return {
        "type": TEST_TYPE,
        "timestamp": _iso(delivery.created_at),
        "data": {"channel": delivery.channel.name, "url": absolute(reverse("dashboard:index"))},
    }


def subject_of(body: dict) -> str:
    data = body["data"]
    if body["type"] == DIGEST_TYPE:
        return f"[taskcenter] {data['count']} more events ({', '.join(data['kinds'])})"
    if body["type"] == TEST_TYPE:
        return "[taskcenter] Test message"
    where = f" on {data['cluster']['name']}" if data.get("cluster") else ""
    return f"[taskcenter] {body['type']}: {data['name']}{where}"


def texts_of(body: dict, unsubscribe: str | None) -> tuple[str, str]:
    """The mail's plain text and HTML (the chat message is the plain text)."""
    context = {
        "subject": subject_of(body),
        "body": body,
        "data": body["data"],
        "unsubscribe": unsubscribe,
    }
    text = render_to_string("notifications/mail.txt", context)
    html = render_to_string("notifications/mail.html", context)
    return text, html


def cluster_names(ids: set[int]) -> dict[int, str]:
    return dict(Cluster.objects.filter(pk__in=ids).values_list("pk", "name"))
