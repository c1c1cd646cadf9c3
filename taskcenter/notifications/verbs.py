"""Every change to notifications, one function each, audited in the change's transaction.

The caller has checked access (taskcenter.accounts.access) and parsed the input
(taskcenter.notifications.inputs); these write rows and the audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from taskcenter.core.errors import InvalidParameter
from taskcenter.notifications import secrets_store
from taskcenter.notifications.inputs import ChannelInput, RuleInput
from taskcenter.notifications.models import (
    Channel,
    ChannelKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Notification,
    Rule,
    new_webhook_secret,
)
from taskcenter.tasks.audit import audit_record

CHANNEL_CREATE = "NOTIFY_CHANNEL_CREATE"
CHANNEL_UPDATE = "NOTIFY_CHANNEL_UPDATE"
CHANNEL_DELETE = "NOTIFY_CHANNEL_DELETE"
CHANNEL_TEST = "NOTIFY_CHANNEL_TEST"
RULE_CREATE = "NOTIFY_RULE_CREATE"
RULE_UPDATE = "NOTIFY_RULE_UPDATE"
RULE_DELETE = "NOTIFY_RULE_DELETE"
REDELIVER = "NOTIFY_REDELIVER"


def _channel_target(channel: Channel) -> str:
    return f"channel {channel.pk} {channel.name}"


def _rule_target(rule: Rule) -> str:
    return f"rule {rule.pk} of {rule.owner.get_username()}"


@dataclass(frozen=True)
class SavedChannel:
    channel: Channel
    secret: str | None  # a webhook's new signing secret: answered this once, never again


def channel_create(*, actor, data: ChannelInput) -> SavedChannel:
    secret = new_webhook_secret() if data.kind == ChannelKind.WEBHOOK else None
    with transaction.atomic():
        channel = Channel.objects.create(
            name=data.name,
            kind=data.kind,
            url_encrypted=secrets_store.seal(data.url),
            url_hint=secrets_store.hint(data.url) if data.url else "",
            secret_encrypted=secrets_store.seal(secret or ""),
            addresses=", ".join(data.addresses),
            open_to_all=data.open_to_all,
            created_by=actor,
        )
        audit_record(actor=actor, action=CHANNEL_CREATE, target=_channel_target(channel))
    return SavedChannel(channel, secret)


def channel_update(
    *, actor, channel: Channel, data: ChannelInput, replace_secret: bool = False
) -> SavedChannel:
    """Change a channel; its URL only when a new one is given (the old one is never shown
    back, so an empty URL keeps it). The kind does not change. `replace_secret` gives a
    webhook channel a new signing secret, answered this once (the old one stops
    verifying at once: deliveries still pending are signed with the new one)."""
    if replace_secret and channel.kind != ChannelKind.WEBHOOK:
        raise InvalidParameter.because("replaceSecret", "only a webhook channel has a secret.")
    secret = new_webhook_secret() if replace_secret else None
    changed = []
    if data.url:
        changed.append("url")
    if secret:
        changed.append("secret")
    with transaction.atomic():
        channel.name = data.name
        channel.addresses = ", ".join(data.addresses)
        channel.open_to_all = data.open_to_all
        if data.url:
            channel.url_encrypted = secrets_store.seal(data.url)
            channel.url_hint = secrets_store.hint(data.url)
        if secret:
            channel.secret_encrypted = secrets_store.seal(secret)
        channel.save()
        audit_record(
            actor=actor,
            action=CHANNEL_UPDATE,
            target=_channel_target(channel),
            reason=f"replaced: {', '.join(changed)}" if changed else "",
        )
    return SavedChannel(channel, secret)


def channel_delete(*, actor, channel: Channel) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action=CHANNEL_DELETE, target=_channel_target(channel))
        channel.delete()


def channel_test(*, actor, channel: Channel) -> Delivery:
    """Queue a test message: the outbox sends it within its next pass."""
    with transaction.atomic():
        delivery = Delivery.objects.create(channel=channel, kind=DeliveryKind.TEST)
        audit_record(
            actor=actor,
            action=CHANNEL_TEST,
            target=_channel_target(channel),
            reason=f"test message {delivery.uid}",
        )
    return delivery


def rule_create(*, actor, owner, personal: bool, data: RuleInput) -> Rule:
    with transaction.atomic():
        rule = Rule.objects.create(owner=owner, personal=personal, **data.fields())
        audit_record(actor=actor, action=RULE_CREATE, target=_rule_target(rule), reason=str(data))
    return rule


def rule_update(*, actor, rule: Rule, data: RuleInput) -> Rule:
    with transaction.atomic():
        for name, value in data.fields().items():
            setattr(rule, name, value)
        rule.save()
        audit_record(actor=actor, action=RULE_UPDATE, target=_rule_target(rule), reason=str(data))
    return rule


def rule_delete(*, actor, rule: Rule) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action=RULE_DELETE, target=_rule_target(rule))
        rule.delete()


def redeliver(*, actor, delivery: Delivery) -> bool:
    """Send a delivery again, with the same webhook id (compare-and-set: a delivery still
    pending is left as it is); False when it was pending."""
    with transaction.atomic():
        changed = (
            Delivery.objects.filter(pk=delivery.pk)
            .exclude(status=DeliveryStatus.PENDING)
            .update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), last_error="")
        )
        if changed:
            audit_record(
                actor=actor,
                action=REDELIVER,
                target=_channel_target(delivery.channel),
                reason=f"delivery {delivery.uid}",
            )
    return bool(changed)


def mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the user's unread notifications read (these, or all)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
