"""The notification pages: the bell and its list, the events a digest folds, one-click
unsubscribe from a personal rule's mail, channels and team rules (admins), a channel's
deliveries with Redeliver, and the watch buttons of the task, job and plan pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods

from taskcenter.accounts import access
from taskcenter.core.http import error_response, page, signed_in_view
from taskcenter.notifications import messages, selectors, verbs
from taskcenter.notifications.models import Rule

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
        "nav": "notifications",
        "rows": [
            {"n": n, "unread": n.pk in unread, "url": messages.event_url(n.event)} for n in rows
        ],
    }
    return page(request, "notifications/inbox.html", context)


@notifications_view
@require_GET
def bell(request):
    """The top bar's bell alone (polled)."""
    return page(request, "notifications/_bell.html", {})


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
