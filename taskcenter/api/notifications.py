"""The notifications API, in OCP's envelope.

GET/POST        /api/v2/notifications/channels            admins
GET/PUT/DELETE  /api/v2/notifications/channels/{id}       admins
POST            /api/v2/notifications/channels/{id}/test  admins: queue a test message
GET/POST        /api/v2/notifications/rules               admins: team rules (and their own);
                                                          others: their own rules
GET/PUT/DELETE  /api/v2/notifications/rules/{id}
GET             /api/v2/notifications/deliveries?channel=&status=

A channel is {"name", "kind": "webhook"|"email"|"apprise", "url"} ("addresses" for mail,
"openToAll": usable in anyone's personal rules). Creating a webhook channel answers its
signing secret once, and so does a PUT with "replaceSecret": true (a new secret). A rule
is {"channelId", "events": [...], "job" | "planId" | "clusterId" | "taskId"} (none:
everything its owner may see). Every change is audited.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, parser_classes

from taskcenter.accounts import access
from taskcenter.api.envelope import iso, ok, paged
from taskcenter.api.parsers import BoundedJSONParser
from taskcenter.api.views import _errors, clean_params
from taskcenter.core import params as parse
from taskcenter.core.errors import TaskNotFound
from taskcenter.notifications import selectors, verbs
from taskcenter.notifications.inputs import parse_channel, parse_replace_secret, parse_rule
from taskcenter.notifications.models import Channel, Delivery, DeliveryStatus, Rule

_ID = {"type": "integer", "format": "int64", "minimum": 1}
CHANNEL_ID = OpenApiParameter("channelId", _ID, OpenApiParameter.PATH)
RULE_ID = OpenApiParameter("ruleId", _ID, OpenApiParameter.PATH)
_TAGS = ["notifications"]


def channel_json(channel: Channel, secret: str | None = None) -> dict:
    data = {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        "url": channel.url_hint or None,  # scheme and host only: the URL is a secret
        "addresses": [a.strip() for a in channel.addresses.split(",") if a.strip()],
        "openToAll": channel.open_to_all,
        "createdAt": iso(channel.created_at),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def rule_json(rule: Rule) -> dict:
    return {
        "id": rule.pk,
        "channelId": rule.channel_id,
        "events": rule.events,
        "job": rule.job or None,
        "planId": rule.plan_id,
        "clusterId": rule.cluster_id,
        "taskId": rule.task_id,
        "personal": rule.personal,
        "owner": rule.owner.get_username(),
        "enabled": rule.enabled,
        "createdAt": iso(rule.created_at),
    }


def delivery_json(delivery: Delivery, tries: list) -> dict:
    return {
        "id": delivery.uid,
        "channelId": delivery.channel_id,
        "ruleId": delivery.rule_id,
        "eventId": delivery.event.uid if delivery.event else None,
        "type": delivery.event.kind if delivery.event else f"notification.{delivery.kind}",
        "kind": delivery.kind,
        "digestCount": delivery.digest_count if delivery.kind == "digest" else None,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "lastCode": delivery.last_code,
        "lastError": delivery.last_error or None,
        "nextAttemptAt": iso(delivery.next_attempt_at)
        if delivery.status == DeliveryStatus.PENDING
        else None,
        "deliveredAt": iso(delivery.delivered_at),
        "createdAt": iso(delivery.created_at),
        "tries": [
            {
                "at": iso(t.at),
                "ok": t.ok,
                "statusCode": t.status_code,
                "latencyMs": t.latency_ms,
                "error": t.error or None,
            }
            for t in tries
        ],
    }


def _channel(raw_id) -> Channel:
    pk = parse.identifier(raw_id, "channelId")
    channel = Channel.objects.filter(pk=pk).first()
    if channel is None:
        raise TaskNotFound(f"The {pk} channel does not exist.")
    return channel


def _rule(user, raw_id) -> Rule:
    pk = parse.identifier(raw_id, "ruleId")
    rule = selectors.rules_for(user).filter(pk=pk).first()
    if rule is None:
        raise TaskNotFound(f"The {pk} rule does not exist.")
    return rule


def _rule_input(user, owner, data):
    parsed = parse_rule(data, selectors.channels_for(owner))
    access.require_rule_target(
        owner, task_id=parsed.task_id, plan_id=parsed.plan_id, cluster=parsed.cluster
    )
    return parsed


# --- Channels ------------------------------------------------------------------------------


@extend_schema(
    operation_id="listNotificationChannels",
    summary="List the notification channels",
    methods=["GET"],
    responses={200: OpenApiTypes.OBJECT, **_errors()},
    tags=_TAGS,
)
@extend_schema(
    operation_id="createNotificationChannel",
    summary="Create a notification channel (a webhook's signing secret is answered once)",
    methods=["POST"],
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiTypes.OBJECT, **_errors(400)},
    tags=_TAGS,
)
@api_view(["GET", "POST"])
@parser_classes([BoundedJSONParser])
def channels(request):
    if request.method == "GET":
        access.require_notifications(request.user)
        rows = selectors.channels_for(request.user)
        return ok(request, {"contents": [channel_json(c) for c in rows]})
    access.require_manage_notifications(request.user)
    created = verbs.channel_create(actor=request.user, data=parse_channel(request.data))
    return ok(request, channel_json(created.channel, created.secret), status=201)


@extend_schema(
    operation_id="getNotificationChannel",
    summary="Read a notification channel",
    methods=["GET"],
    parameters=[CHANNEL_ID],
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@extend_schema(
    operation_id="updateNotificationChannel",
    summary="Change a notification channel (replaceSecret: a new signing secret, answered once)",
    methods=["PUT"],
    parameters=[CHANNEL_ID],
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@extend_schema(
    operation_id="deleteNotificationChannel",
    summary="Delete a notification channel with its rules",
    methods=["DELETE"],
    parameters=[CHANNEL_ID],
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@api_view(["GET", "PUT", "DELETE"])
@parser_classes([BoundedJSONParser])
def channel(request, channelId):
    access.require_manage_notifications(request.user)
    found = _channel(channelId)
    if request.method == "GET":
        return ok(request, channel_json(found))
    if request.method == "PUT":
        data = parse_channel(request.data, existing=found)
        saved = verbs.channel_update(
            actor=request.user,
            channel=found,
            data=data,
            replace_secret=parse_replace_secret(request.data),
        )
        return ok(request, channel_json(saved.channel, saved.secret))
    verbs.channel_delete(actor=request.user, channel=found)
    return ok(request, {"id": int(channelId)})


@extend_schema(
    operation_id="testNotificationChannel",
    summary="Send a test message by a channel (queued: see its deliveries)",
    parameters=[CHANNEL_ID],
    request=None,
    responses={202: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def channel_test(request, channelId):
    access.require_manage_notifications(request.user)
    delivery = verbs.channel_test(actor=request.user, channel=_channel(channelId))
    return ok(request, {"deliveryId": delivery.uid, "status": delivery.status}, status=202)


# --- Rules ---------------------------------------------------------------------------------


@extend_schema(
    operation_id="listNotificationRules",
    summary="List the caller's rules (an admin's: and the team rules)",
    methods=["GET"],
    responses={200: OpenApiTypes.OBJECT, **_errors()},
    tags=_TAGS,
)
@extend_schema(
    operation_id="createNotificationRule",
    summary="Create a rule: a team rule for an admin, a personal rule otherwise",
    methods=["POST"],
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@api_view(["GET", "POST"])
@parser_classes([BoundedJSONParser])
def rules(request):
    access.require_notifications(request.user)
    if request.method == "GET":
        return ok(request, {"contents": [rule_json(r) for r in selectors.rules_for(request.user)]})
    data = request.data if isinstance(request.data, dict) else {}
    team = access.can_manage_notifications(request.user) and not data.get("personal", False)
    rule = verbs.rule_create(
        actor=request.user,
        owner=request.user,
        personal=not team,
        data=_rule_input(request.user, request.user, request.data),
    )
    return ok(request, rule_json(rule), status=201)


@extend_schema(
    operation_id="getNotificationRule",
    summary="Read a rule",
    methods=["GET"],
    parameters=[RULE_ID],
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@extend_schema(
    operation_id="updateNotificationRule",
    summary="Change a rule",
    methods=["PUT"],
    parameters=[RULE_ID],
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@extend_schema(
    operation_id="deleteNotificationRule",
    summary="Delete a rule",
    methods=["DELETE"],
    parameters=[RULE_ID],
    responses={200: OpenApiTypes.OBJECT, **_errors(400, 404)},
    tags=_TAGS,
)
@api_view(["GET", "PUT", "DELETE"])
@parser_classes([BoundedJSONParser])
def rule(request, ruleId):
    access.require_notifications(request.user)
    found = _rule(request.user, ruleId)
    if request.method == "GET":
        return ok(request, rule_json(found))
    if request.method == "PUT":
        data = _rule_input(request.user, found.owner, request.data)
        return ok(request, rule_json(verbs.rule_update(actor=request.user, rule=found, data=data)))
    verbs.rule_delete(actor=request.user, rule=found)
    return ok(request, {"id": found.pk})


# --- Deliveries ----------------------------------------------------------------------------


def visible_deliveries(user) -> QuerySet[Delivery]:
    """An admin sees every delivery; a user those of their own rules."""
    rows = selectors.deliveries()
    if access.can_manage_notifications(user):
        return rows
    return rows.filter(rule__owner=user)


@extend_schema(
    operation_id="notificationDeliveries",
    summary="The deliveries, newest first, each with its attempts",
    parameters=[
        OpenApiParameter("channel", _ID),
        OpenApiParameter("status", str, enum=list(DeliveryStatus.values)),
        OpenApiParameter("page", {"type": "integer", "minimum": 1}),
        OpenApiParameter("size", {"type": "integer", "minimum": 1, "maximum": 2000}),
    ],
    responses={200: OpenApiTypes.OBJECT, **_errors(400)},
    tags=_TAGS,
)
@api_view(["GET"])
def deliveries(request):
    access.require_notifications(request.user)
    params = clean_params(request)
    page, size = parse.page(params)
    rows = visible_deliveries(request.user)
    if params.get("channel"):
        rows = rows.filter(channel_id=parse.identifier(params["channel"], "channel"))
    if params.get("status"):
        rows = rows.filter(status=parse.choice(params, "status", DeliveryStatus.values, default=""))
    total = rows.count()
    chunk = list(rows[(page - 1) * size : page * size])
    tries = selectors.delivery_attempts([d.pk for d in chunk])
    contents = [delivery_json(d, tries.get(d.pk, [])) for d in chunk]
    return ok(request, paged(contents, total=total, page=page, size=size))
