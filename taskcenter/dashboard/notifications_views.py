"""The notification pages: the bell and its list, the events a digest folds, one-click
unsubscribe from a personal rule's mail, channels and team rules (admins), a channel's
deliveries with Redeliver, and the watch buttons of the task, job and plan pages."""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from taskcenter.accounts import access
from taskcenter.core.errors import InvalidParameter, NotPermitted, TaskNotFound
from taskcenter.core.http import error_response, page, signed_in_view
from taskcenter.notifications import messages, selectors, verbs
from taskcenter.notifications.inputs import parse_channel, parse_rule
from taskcenter.notifications.models import Channel, ChannelKind, Delivery, DeliveryStatus, Rule
from taskcenter.tasks.events import KINDS

notifications_view = signed_in_view(access.require_notifications)
admin_view = signed_in_view(access.require_manage_notifications)


@notifications_view
@require_GET
def inbox(request):
    """The bell's list: the user's notifications, marked read once shown."""
    rows = selectors.inbox(request.user)
    unread = {n.pk for n in rows if n.read_at is None}
    verbs.mark_read(user=request.user, ids=list(unread))
    context = {
        "nav": "bell",
        "rows": [
            {"n": n, "unread": n.pk in unread, "url": messages.event_url(n.event)} for n in rows
        ],
    }
    return page(request, "notifications/inbox.html", context)


@notifications_view
@require_GET
def bell(request):
    """The top bar's bell alone (polled)."""
    return page(
        request, "notifications/_bell.html", {"unread": selectors.unread_count(request.user)}
    )


@notifications_view
@require_GET
def events(request):
    """The events one rule chose in a span (the list a digest links to)."""
    rule = get_object_or_404(selectors.rules_for(request.user), pk=_int(request.GET.get("rule")))
    since = parse_datetime(request.GET.get("since", "") or "")
    until = parse_datetime(request.GET.get("until", "") or "")
    if since is None:
        return error_response(request, 400, "Give the span's start: since=<ISO 8601 time>.")
    rows = selectors.events_for_rule(request.user, rule, since, until)
    context = {
        "rule": rule,
        "rows": [{"event": e, "url": messages.event_url(e)} for e in rows],
        "since": since,
        "until": until,
    }
    return page(request, "notifications/events.html", context)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """One-click unsubscribe from a personal rule's mail (List-Unsubscribe): a GET asks,
    a POST turns the rule off. The signed token is the permission."""
    rule_id = messages.rule_of_token(token)
    rule = Rule.objects.filter(pk=rule_id, personal=True).first() if rule_id else None
    if rule is None:
        return error_response(request, 404, "This link is not valid any more.")
    if request.method == "POST":
        Rule.objects.filter(pk=rule.pk).update(enabled=False)
        return page(request, "notifications/unsubscribed.html", {"rule": rule, "done": True})
    return page(request, "notifications/unsubscribed.html", {"rule": rule, "done": False})


# --- Channels and team rules (admins) ----------------------------------------------------------


def _errors_of(exc: InvalidParameter) -> str:
    return exc.message


@admin_view
@require_http_methods(["GET", "POST"])
def channels(request):
    """Channels and team rules: the lists and the two forms. A webhook's secret is shown
    once, on the answer to its creation."""
    secret = None
    if request.method == "POST":
        try:
            data = parse_channel(
                _form_dict(request, "name", "kind", "url", "addresses", "openToAll")
            )
            created = verbs.channel_create(actor=request.user, data=data)
        except InvalidParameter as exc:
            flash.error(request, _errors_of(exc))
        else:
            secret = created.secret
            flash.success(request, f"Channel “{created.channel.name}” created.")
            if secret is None:
                return redirect("dashboard:notification_channels")
    context = {
        "nav": "notifications",
        "channels": Channel.objects.order_by("name"),
        "team_rules": selectors.rules_for(request.user).filter(personal=False),
        "kinds": ChannelKind.values,
        "event_kinds": KINDS,
        "clusters": _clusters(request.user),
        "secret": secret,
    }
    return page(request, "notifications/channels.html", context)


def _clusters(user):
    from taskcenter.tasks.models import Cluster

    visible = access.visible_clusters(user)
    clusters = Cluster.objects.order_by("name")
    return clusters if visible is access.ALL_CLUSTERS else clusters.filter(pk__in=visible or [])


def _form_dict(request, *names: str) -> dict:
    data = {name: request.POST.get(name, "") for name in names}
    if "openToAll" in data:
        data["openToAll"] = "true" if request.POST.get("openToAll") else "false"
    if "events" in request.POST:
        data["events"] = request.POST.getlist("events")
    return data


@admin_view
@require_http_methods(["GET", "POST"])
def channel_edit(request, channel_id: int):
    """Change a channel (the API's PUT, through the same service): its name, URL or
    addresses, who may use it, and for a webhook a new signing secret, shown this once.
    The URL and the secret are never shown back; an empty URL keeps the stored one."""
    channel = get_object_or_404(Channel, pk=channel_id)
    form = {
        "name": channel.name,
        "addresses": channel.addresses,
        "openToAll": channel.open_to_all,
    }
    secret = None
    if request.method == "POST":
        posted = _form_dict(request, "name", "url", "addresses", "openToAll")
        try:
            data = parse_channel(posted, existing=channel)
            saved = verbs.channel_update(
                actor=request.user,
                channel=channel,
                data=data,
                replace_secret=bool(request.POST.get("replaceSecret")),
            )
        except InvalidParameter as exc:
            flash.error(request, _errors_of(exc))
            form = {**posted, "openToAll": posted["openToAll"] == "true"}
        else:
            flash.success(request, f"Channel “{saved.channel.name}” saved.")
            if saved.secret is None:
                return redirect("dashboard:notification_channels")
            secret = saved.secret
    context = {"nav": "notifications", "channel": channel, "form": form, "secret": secret}
    return page(request, "notifications/channel_edit.html", context)


@admin_view
@require_POST
def channel_test(request, channel_id: int):
    channel = get_object_or_404(Channel, pk=channel_id)
    delivery = verbs.channel_test(actor=request.user, channel=channel)
    flash.success(request, f"Test message {delivery.uid} queued; it goes out within a second.")
    return redirect("dashboard:notification_deliveries", channel_id=channel.pk)


@admin_view
@require_POST
def channel_delete(request, channel_id: int):
    channel = get_object_or_404(Channel, pk=channel_id)
    verbs.channel_delete(actor=request.user, channel=channel)
    flash.success(request, f"Channel “{channel.name}” deleted with its rules.")
    return redirect("dashboard:notification_channels")


@admin_view
@require_POST
def team_rule_create(request):
    data = _form_dict(request, "channelId", "job", "clusterId")
    data.setdefault("events", [])
    try:
        parsed = parse_rule(data, Channel.objects.all())
        access.require_rule_target(request.user, cluster=parsed.cluster)
        verbs.rule_create(actor=request.user, owner=request.user, personal=False, data=parsed)
    except InvalidParameter as exc:
        flash.error(request, _errors_of(exc))
    else:
        flash.success(request, f"Team rule made: {parsed}.")
    return redirect("dashboard:notification_channels")


@notifications_view
@require_POST
def rule_delete(request, rule_id: int):
    rule = get_object_or_404(selectors.rules_for(request.user), pk=rule_id)
    verbs.rule_delete(actor=request.user, rule=rule)
    flash.success(request, "Rule deleted.")
    back = request.POST.get("next", "")
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect("dashboard:notification_channels")


@admin_view
@require_GET
def deliveries(request, channel_id: int):
    """A channel's deliveries, newest first, each attempt with its time, answer code,
    latency and error; Redeliver for any that is not pending."""
    channel = get_object_or_404(Channel, pk=channel_id)
    status = request.GET.get("status") or ""
    rows = list(
        selectors.deliveries(
            channel_id=channel.pk, status=status if status in DeliveryStatus.values else None
        )[:200]
    )
    tries = selectors.delivery_attempts([d.pk for d in rows])
    context = {
        "nav": "notifications",
        "channel": channel,
        "status": status,
        "statuses": DeliveryStatus.values,
        "rows": [{"d": d, "tries": tries.get(d.pk, [])} for d in rows],
    }
    return page(request, "notifications/deliveries.html", context)


@admin_view
@require_POST
def redeliver(request, delivery_id: int):
    delivery = get_object_or_404(Delivery.objects.select_related("channel"), pk=delivery_id)
    if verbs.redeliver(actor=request.user, delivery=delivery):
        flash.success(request, f"{delivery.uid} is sent again, with the same webhook id.")
    else:
        flash.warning(request, f"{delivery.uid} is still pending: it will be sent as it is.")
    return redirect("dashboard:notification_deliveries", channel_id=delivery.channel_id)


# --- Watching (personal rules) ------------------------------------------------------------------

TASK_KINDS = ["task.failed", "task.succeeded", "task.waiting", "subtask.retries_exhausted"]
PLAN_KINDS = ["plan.fire_missed", "plan.fire_skipped", "plan.disabled"]


def _watch_target(request, source) -> dict:
    """What the watch button is about: a task, a job or a plan the user may see."""
    try:
        if source.get("task"):
            task = access.get_task_for_user(request.user, int(source["task"]))
            return {"task_id": task.pk, "label": "task", "events": TASK_KINDS}
        if source.get("plan"):
            plan = access.get_plan_for_user(request.user, int(source["plan"]))
            return {"plan_id": plan.pk, "label": "plan", "events": PLAN_KINDS}
        if source.get("job"):
            return {"job": source["job"][:200], "label": "job", "events": TASK_KINDS}
    except (ValueError, TaskNotFound) as exc:
        raise TaskNotFound("Nothing to watch here.") from exc
    raise TaskNotFound("Nothing to watch here.")


@notifications_view
@require_http_methods(["GET", "POST"])
def watch(request):
    """The watch button: a personal rule to the user's bell for this task, job or plan."""
    source = request.POST if request.method == "POST" else request.GET
    try:
        target = _watch_target(request, source)
    except (TaskNotFound, NotPermitted) as exc:
        return error_response(request, 404, str(exc))
    key = {k: target[k] for k in ("task_id", "plan_id", "job") if k in target}
    rule = selectors.watch_rule(request.user, **key)
    if request.method == "POST":
        if rule is not None:
            verbs.rule_delete(actor=request.user, rule=rule)
            rule = None
        else:
            data = {
                "events": target["events"],
                "taskId": key.get("task_id"),
                "planId": key.get("plan_id"),
                "job": key.get("job", ""),
            }
            rule = verbs.rule_create(
                actor=request.user,
                owner=request.user,
                personal=True,
                data=parse_rule(data, Channel.objects.none()),
            )
    context = {
        "rule": rule,
        "target": target,
        "query": source.urlencode() if request.method == "GET" else _query(key),
    }
    return page(request, "notifications/_watch.html", context)


def _query(key: dict) -> str:
    from urllib.parse import urlencode

    names = {"task_id": "task", "plan_id": "plan", "job": "job"}
    return urlencode({names[k]: v for k, v in key.items()})


def _usable_channels(user) -> list[Channel]:
    return [
        c for c in selectors.channels_for(user).order_by("name") if access.can_use_channel(user, c)
    ]


@notifications_view
@require_GET
def my_rules(request):
    """The account page's list of the user's personal rules (loaded into it), with the
    form for a new one: the events, what they concern, and the bell alone or one of the
    channels the user may use."""
    context = {
        "rules": selectors.personal_rules(request.user),
        "channels": _usable_channels(request.user),
        "event_kinds": KINDS,
        "clusters": _clusters(request.user),
    }
    return page(request, "notifications/_my_rules.html", context)


@notifications_view
@require_POST
def my_rule_create(request):
    """A personal rule from the account page (the API's POST .../rules with personal
    true, through the same service): to the bell, and to a channel the user may use."""
    data = _form_dict(request, "channelId", "job", "clusterId")
    data.setdefault("events", [])
    try:
        parsed = parse_rule(data, selectors.channels_for(request.user))
        if parsed.channel is not None and not access.can_use_channel(request.user, parsed.channel):
            raise InvalidParameter.because("channelId", "not a channel you may use.")
        access.require_rule_target(request.user, cluster=parsed.cluster)
        verbs.rule_create(actor=request.user, owner=request.user, personal=True, data=parsed)
    except InvalidParameter as exc:
        flash.error(request, _errors_of(exc))
    else:
        flash.success(request, f"Rule made: {parsed}.")
    return redirect(reverse("accounts:account") + "#my-rules")
