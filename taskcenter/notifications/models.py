"""Notifications: events, the channels they go out by, the rules that choose them, the
deliveries (the outbox) with each attempt, and the bell's unread items."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from taskcenter.tasks.events import KINDS
from taskcenter.tasks.models import Cluster

KIND_CHOICES = [(kind, kind) for kind in KINDS]


def new_message_id() -> str:
    """A webhook id: kept across every retry of one delivery, so receivers drop repeats."""
    return f"msg_{uuid.uuid4().hex}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class Event(models.Model):
    """Something that happened: recorded in the transaction of the change, fanned out to
    the rules by the outbox loop."""

    uid = models.CharField(max_length=40, unique=True, default=new_event_id)
    # The same change reported twice is one event (see taskcenter.tasks.events).
    key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=40, choices=KIND_CHOICES, db_index=True)
    object_type = models.CharField(max_length=16)
    object_id = models.BigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=32, blank=True)
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    plan_id = models.BigIntegerField(null=True, blank=True)
    job = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    fanned_out = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                name="event_not_fanned_out",
                condition=models.Q(fanned_out=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook"
    EMAIL = "email"
    APPRISE = "apprise"


class Channel(models.Model):
    """Where notifications go. Its URL and secret are stored encrypted (or name an
    environment variable, `env:NAME`) and never shown again once saved."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url_encrypted = models.TextField(blank=True)
    url_hint = models.CharField(max_length=200, blank=True)  # what the pages show of it
    secret_encrypted = models.TextField(blank=True)
    addresses = models.TextField(blank=True)  # e-mail: comma-separated
    # Usable in anyone's personal rules (else in team rules only).
    open_to_all = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_notifications", "Can manage notification channels and team rules")]

    def __str__(self) -> str:
        return self.name


class Rule(models.Model):
    """Which events go to a channel (or to the owner's bell only): by kind, and by a job,
    a plan, a cluster, one task, or everything the owner may see."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules"
    )
    personal = models.BooleanField(default=True)  # False: a team rule made by an admin
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="rules"
    )
    events = models.JSONField(default=list, blank=True)  # kinds; empty: every kind
    job = models.CharField(max_length=200, blank=True)
    plan_id = models.BigIntegerField(null=True, blank=True)
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    task_id = models.BigIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"rule {self.pk} of {self.owner_id}"


class DeliveryKind(models.TextChoices):
    EVENT = "event"
    DIGEST = "digest"
    TEST = "test"


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING"  # due at next_attempt_at
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # retried for the whole retry period
    DROPPED = "DROPPED"  # its rule's owner may no longer see the event


class Delivery(models.Model):
    """One message to one channel: the outbox row, retried with backoff until delivered
    or dead. `uid` is the webhook id, the same on every attempt."""

    uid = models.CharField(max_length=40, unique=True, default=new_message_id)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    kind = models.CharField(max_length=8, choices=DeliveryKind.choices, default=DeliveryKind.EVENT)
    # A digest: how many events it folds, of which kinds, and until when it gathers them.
    digest_count = models.PositiveIntegerField(default=0)
    digest_kinds = models.JSONField(default=list, blank=True)
    digest_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status="PENDING"),
            ),
            models.Index(fields=["rule", "created_at"], name="delivery_rule_time"),
        ]

    def __str__(self) -> str:
        return f"{self.uid} {self.status}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code}"


class Notification(models.Model):
    """An event in a user's bell: one per user and event, from the user's own rules."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="notification_once_per_user")
        ]
        indexes = [
            models.Index(
                fields=["user"], name="notification_unread", condition=models.Q(read_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event_id}"


def new_webhook_secret() -> str:
    """whsec_ + base64 of 24 random bytes, as the Standard Webhooks specification defines."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
