"""Sending one message by one channel: a signed webhook, a mail, an Apprise URL.

No database here: the outbox builds an `Outgoing` from its rows, and these functions run
in the outbox's thread pool, so a slow receiver holds one thread, not the loop. Each
answers a `Sent` (ok, the answer's code, the time it took, the error in words).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from standardwebhooks import Webhook

from taskcenter.notifications.models import ChannelKind

ERROR_MAX = 500


@dataclass(frozen=True)
class Outgoing:
    """A message ready to send: what the channel needs, nothing from the database."""

    message_id: str  # the webhook id: the same on every attempt
    kind: str  # the channel's kind
    url: str  # webhook or Apprise URL, in clear (never logged)
    secret: str  # webhook signing secret
    addresses: list[str]
    body: dict  # the webhook body: type, timestamp, data
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)  # mail headers (List-Unsubscribe)


@dataclass(frozen=True)
class Sent:
    ok: bool
    code: int | None
    latency_ms: int
    error: str = ""


def send(message: Outgoing) -> Sent:
    started = time.perf_counter()
    try:
        code, error = _SENDERS[message.kind](message)
    except Exception as exc:  # noqa: BLE001 - any failure is this attempt's error
        code, error = None, f"{type(exc).__name__}: {exc}"
    elapsed = int((time.perf_counter() - started) * 1000)
    return Sent(ok=not error, code=code, latency_ms=elapsed, error=error[:ERROR_MAX])


def webhook_headers(message_id: str, secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: id, timestamp (whole seconds) and the signature,
    HMAC-SHA256 over `id.timestamp.body` with the whsec_ secret."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
        "user-agent": "taskcenter-webhooks",
    }


def _webhook(message: Outgoing) -> tuple[int | None, str]:
    if not message.url:
        return None, "the channel's URL is not available (its environment variable unset?)"
    if not message.secret:
        return None, "the channel's signing secret is not available"
    body = json.dumps(message.body, separators=(",", ":")).encode()
    headers = webhook_headers(message.message_id, message.secret, body, datetime.now(UTC))
    response = httpx.post(
        message.url,
        content=body,
        headers=headers,
        timeout=settings.TASKCENTER_NOTIFY_TIMEOUT,
        follow_redirects=False,
    )
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"the receiver answered {response.status_code}"


def _email(message: Outgoing) -> tuple[int | None, str]:
    if not message.addresses:
        return None, "no address to send to"
    mail = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        to=message.addresses,
        headers={"Message-ID": f"<{message.message_id}@taskcenter>", **message.headers},
        connection=get_connection(timeout=settings.TASKCENTER_NOTIFY_TIMEOUT),
    )
    mail.attach_alternative(message.html, "text/html")
    mail.send()
    return None, ""


def _apprise(message: Outgoing) -> tuple[int | None, str]:
    import apprise

    if not message.url:
        return None, "the channel's URL is not available (its environment variable unset?)"
    notifier = apprise.Apprise()
    if not notifier.add(message.url):
        return None, "Apprise does not understand this URL"
    if notifier.notify(title=message.subject, body=message.text):
        return None, ""
    return None, "the service did not accept the message (Apprise reported a failure)"


_SENDERS: dict[str, Callable[[Outgoing], tuple[int | None, str]]] = {
    ChannelKind.WEBHOOK: _webhook,
    ChannelKind.EMAIL: _email,
    ChannelKind.APPRISE: _apprise,
}
