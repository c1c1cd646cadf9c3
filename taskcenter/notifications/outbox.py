"""The outbox: events fanned out to the rules, deliveries sent with backoff.

Two steps, both run by the outbox loop beside the scheduler (`drain`), never by the
request or the worker that caused the event:

- `fan_out` takes the events not yet fanned out (FOR UPDATE SKIP LOCKED: two schedulers
  share the work), matches them to the enabled rules, checks that each rule's owner may
  see the event now (taskcenter.accounts.access.event_visible_to), puts the event in the
  bells of personal rules' owners and makes one delivery per rule with a channel, or,
  past the flood limit of a rule within its window, counts it into the rule's open
  digest.
- `send_due` claims the deliveries that are due (a lease: the claim moves their next
  attempt on, so a scheduler that dies mid-send leaves them to be sent again), sends
  them in a thread pool, then records each attempt and settles the delivery with
  compare-and-set: DELIVERED, or PENDING again after the backoff, or DEAD once the
  retry period is over. The delivery's webhook id never changes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from taskcenter.accounts import access
from taskcenter.notifications import messages, secrets_store, senders
from taskcenter.notifications.models import (
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Notification,
    Rule,
)
from taskcenter.tasks.models import TaskInstance

FAN_OUT_BATCH = 500
SEND_BATCH = 50
SEND_THREADS = 8


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: the first retries
    come soon (a receiver that blinked gets the message within a minute), then further
    apart (TASKCENTER_NOTIFY_RETRY_DELAYS), until TASKCENTER_NOTIFY_RETRY_FOR has passed."""
    delays = settings.TASKCENTER_NOTIFY_RETRY_DELAYS
    return delays[min(max(attempts, 1), len(delays)) - 1]


def matches(rule: Rule, event: Event) -> bool:
    """Whether `rule` chooses `event` (by kind and by what it concerns); whether its owner
    may see the event is asked apart."""
    if rule.events and event.kind not in rule.events:
        return False
    if rule.task_id is not None and event.task_id != rule.task_id:
        return False
    if rule.plan_id is not None and event.plan_id != rule.plan_id:
        return False
    if rule.cluster_id is not None and event.cluster_id != rule.cluster_id:
        return False
    return not (rule.job and event.job != rule.job)


# --- Fan-out ---------------------------------------------------------------------------------


class _Owners:
    """The rules' owners, read fresh each pass (their grants may have changed), each once."""

    def __init__(self) -> None:
        self.users: dict[int, object] = {}

    def may_see(self, rule: Rule, event: Event) -> bool:
        user = self.users.get(rule.owner_id)
        if user is None:
            user = get_user_model().objects.get(pk=rule.owner_id)
            self.users[rule.owner_id] = user
        return access.event_visible_to(user, event)


class _Folding:
    """Per rule: deliveries one by one up to the flood limit within the window, then one
    digest gathering the rest until the window's end."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.window = timedelta(seconds=settings.TASKCENTER_NOTIFY_FLOOD_WINDOW)
        self.limit = settings.TASKCENTER_NOTIFY_FLOOD_LIMIT
        self.recent: dict[int, int] = {}
        self.singles: list[Delivery] = []
        self.folded: dict[int, tuple[int, set[str]]] = {}

    def add(self, rule: Rule, event: Event) -> None:
        if rule.pk not in self.recent:
            self.recent[rule.pk] = Delivery.objects.filter(
                rule_id=rule.pk, kind=DeliveryKind.EVENT, created_at__gte=self.now - self.window
            ).count()
        if self.recent[rule.pk] < self.limit:
            self.recent[rule.pk] += 1
            self.singles.append(
                Delivery(
                    channel=rule.channel,
                    rule_id=rule.pk,
                    event=event,
                    created_at=self.now,
                    next_attempt_at=self.now,
                )
            )
            return
        count, kinds = self.folded.get(rule.pk, (0, set()))
        kinds.add(event.kind)
        self.folded[rule.pk] = (count + 1, kinds)

    def write(self, rules: dict[int, Rule]) -> None:
        Delivery.objects.bulk_create(self.singles)
        for rule_id, (count, kinds) in self.folded.items():
            self._into_digest(rules[rule_id], count, kinds)

    def _into_digest(self, rule: Rule, count: int, kinds: set[str]) -> None:
        open_digest = (
            Delivery.objects.filter(
                rule_id=rule.pk,
                kind=DeliveryKind.DIGEST,
                status=DeliveryStatus.PENDING,
                attempts=0,
                digest_until__gt=self.now,
            )
            .order_by("-id")
            .first()
        )
        if open_digest is not None:
            merged = sorted(set(open_digest.digest_kinds) | kinds)
            added = Delivery.objects.filter(
                pk=open_digest.pk, status=DeliveryStatus.PENDING, attempts=0
            ).update(digest_count=F("digest_count") + count, digest_kinds=merged)
            if added:
                return
        until = self.now + self.window
        assert rule.channel is not None  # only rules with a channel are folded
        Delivery.objects.create(
            channel=rule.channel,
            rule_id=rule.pk,
            kind=DeliveryKind.DIGEST,
            digest_count=count,
            digest_kinds=sorted(kinds),
            digest_until=until,
            created_at=self.now,
            next_attempt_at=until,
        )


def fan_out(now: datetime | None = None) -> int:
    """Fan out one batch of new events; returns how many events it took."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = list(
            Event.objects.filter(fanned_out=False)
            .order_by("id")
            .select_for_update(skip_locked=True)[:FAN_OUT_BATCH]
        )
        if not batch:
            return 0
        _complete(batch)
        rules = {
            rule.pk: rule
            for rule in Rule.objects.filter(enabled=True, owner__is_active=True).select_related(
                "channel"
            )
        }
        owners = _Owners()
        folding = _Folding(now)
        bell: list[Notification] = []
        for event in batch:
            for rule in rules.values():
                if not matches(rule, event) or not owners.may_see(rule, event):
                    continue
                if rule.personal:
                    bell.append(Notification(user_id=rule.owner_id, event=event, created_at=now))
                if rule.channel_id is not None:
                    folding.add(rule, event)
        Notification.objects.bulk_create(bell, ignore_conflicts=True)
        folding.write(rules)
        Event.objects.filter(pk__in=[event.pk for event in batch]).update(fanned_out=True)
    return len(batch)


def _complete(batch: list[Event]) -> None:
    """Fill in a task or subtask event's task name, cluster and job from its task: the
    engine records only what it has at hand (one INSERT on its hot path), the rest is read
    here, once per batch."""
    ids = {event.task_id for event in batch if event.task_id is not None}
    if not ids:
        return
    tasks = {
        pk: (name, cluster_id, job or "")
        for pk, name, cluster_id, job in TaskInstance.objects.filter(pk__in=ids).values_list(
            "pk", "name", "cluster_id", "definition__name"
        )
    }
    completed = []
    for event in batch:
        if event.task_id not in tasks:
            continue
        name, cluster_id, job = tasks[event.task_id]
        subtask = event.detail.get("subtask") if event.object_type == "subtask" else None
        event.name = (f"{name} / {subtask}" if subtask else name)[:255]
        event.cluster_id, event.job = cluster_id, job
        completed.append(event)
    Event.objects.bulk_update(completed, ["name", "cluster", "job"])


# --- Sending ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    delivery: Delivery
    attempts: int  # as claimed: the compare-and-set's expectation


def _claim(now: datetime, limit: int, only: list[int] | None = None) -> list[_Claimed]:
    lease = now + timedelta(
        seconds=settings.TASKCENTER_NOTIFY_TIMEOUT * 3 + settings.TASKCENTER_NOTIFY_LEASE_GRACE
    )
    with transaction.atomic():
        due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        if only is not None:
            due = due.filter(pk__in=only)
        rows = list(
            due.order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("channel", "event", "rule")[:limit]
        )
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=lease)
    return [_Claimed(row, row.attempts) for row in rows]


def _refusal(delivery: Delivery) -> str | None:
    """Why this delivery must not go out now: its rule gone or off, or its owner no longer
    allowed to see the event or to use the channel (asked at delivery time)."""
    if delivery.kind == DeliveryKind.TEST:
        return None
    rule = delivery.rule
    if rule is None or not rule.enabled:
        return "its rule was removed or turned off"
    owner = get_user_model().objects.filter(pk=rule.owner_id, is_active=True).first()
    if owner is None:
        return "its rule's owner is no longer active"
    if rule.personal and not access.can_use_channel(owner, delivery.channel):
        return "its rule's owner may no longer use this channel"
    if delivery.event is not None and not access.event_visible_to(owner, delivery.event):
        return "its rule's owner may no longer see this event"
    if delivery.kind == DeliveryKind.DIGEST and not access.can_view(owner):
        return "its rule's owner may no longer see tasks"
    return None


def _outgoing(delivery: Delivery, clusters: dict[int, str]) -> senders.Outgoing:
    channel = delivery.channel
    body = messages.body_of(delivery, clusters)
    rule = delivery.rule
    personal = rule is not None and rule.personal
    unsubscribe = messages.unsubscribe_url(rule) if personal and rule else None
    text, html = messages.texts_of(body, unsubscribe)
    addresses = [a.strip() for a in channel.addresses.split(",") if a.strip()]
    if channel.kind == ChannelKind.EMAIL and not addresses and personal and rule:
        email = get_user_model().objects.filter(pk=rule.owner_id).values_list("email", flat=True)
        addresses = [e for e in email if e]
    headers = (
        {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        if unsubscribe
        else {}
    )
    return senders.Outgoing(
        message_id=delivery.uid,
        kind=channel.kind,
        url=secrets_store.unseal(channel.url_encrypted),
        secret=secrets_store.unseal(channel.secret_encrypted),
        addresses=addresses,
        body=body,
        subject=messages.subject_of(body),
        text=text,
        html=html,
        headers=headers,
    )


def send_due(now: datetime | None = None, only: list[int] | None = None) -> int:
    """Send the deliveries due at `now` (one batch); returns how many were attempted."""
    now = now or timezone.now()
    claimed = _claim(now, SEND_BATCH, only)
    if not claimed:
        return 0
    ready: list[tuple[_Claimed, senders.Outgoing]] = []
    clusters = messages.cluster_names(
        {
            c.delivery.event.cluster_id
            for c in claimed
            if c.delivery.event and c.delivery.event.cluster_id
        }
    )
    for item in claimed:
        refusal = _refusal(item.delivery)
        if refusal is not None:
            _settle_dropped(item, refusal, now)
        else:
            ready.append((item, _outgoing(item.delivery, clusters)))
    if ready:
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(ready))) as pool:
            results = list(pool.map(senders.send, [message for _, message in ready]))
        for (item, _), sent in zip(ready, results, strict=True):
            _settle(item, sent, now)
    return len(claimed)


def _settle_dropped(item: _Claimed, why: str, now: datetime) -> None:
    Delivery.objects.filter(
        pk=item.delivery.pk, status=DeliveryStatus.PENDING, attempts=item.attempts
    ).update(status=DeliveryStatus.DROPPED, last_error=f"not sent: {why}")


def _settle(item: _Claimed, sent: senders.Sent, now: datetime) -> None:
    delivery = item.delivery
    attempts = item.attempts + 1
    fields: dict = {"attempts": attempts, "last_code": sent.code, "last_error": sent.error}
    if sent.ok:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now())
    elif (now - delivery.created_at).total_seconds() >= settings.TASKCENTER_NOTIFY_RETRY_FOR:
        fields.update(status=DeliveryStatus.DEAD)
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=retry_delay(attempts)))
    with transaction.atomic():
        changed = Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=item.attempts
        ).update(**fields)
        if changed:
            DeliveryAttempt.objects.create(
                delivery_id=delivery.pk,
                at=now,
                ok=sent.ok,
                status_code=sent.code,
                latency_ms=sent.latency_ms,
                error=sent.error,
            )
