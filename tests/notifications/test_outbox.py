"""The outbox with real receivers: webhooks checked with the Standard Webhooks
verification, mail received by a local SMTP server, Apprise's json:// posting to the
local HTTP server; a receiver that fails and recovers; a flood folded into digests;
scope checked when an event is delivered."""

from __future__ import annotations

import email
from datetime import timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.notifications import drain, secrets_store, verbs
from taskcenter.notifications.inputs import parse_channel, parse_rule
from taskcenter.notifications.models import (
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Notification,
)
from taskcenter.tasks import events
from tests.factories import failed_task, failed_task_on, grant_scoped, make_user
from tests.notifications.receivers import (
    WebhookReceiver,
    free_port,
    port_of_a_receiver_that_is_down,
)


def webhook_channel(admin, url: str, **extra) -> tuple[Channel, str]:
    created = verbs.channel_create(
        actor=admin,
        data=parse_channel({"name": "ops hook", "kind": "webhook", "url": url, **extra}),
    )
    assert created.secret and created.secret.startswith("whsec_")
    return created.channel, created.secret


def team_rule(admin, channel, **body):
    return verbs.rule_create(
        actor=admin,
        owner=admin,
        personal=False,
        data=parse_rule({"channelId": channel.pk, **body}, Channel.objects.all()),
    )


def test_a_failed_task_arrives_signed_and_a_tampered_body_is_rejected(admin):
    with WebhookReceiver() as receiver:
        channel, secret = webhook_channel(admin, receiver.url)
        receiver.secret = secret
        team_rule(admin, channel, events=["task.failed"])
        task = failed_task()
        assert Event.objects.filter(kind="task.failed", task_id=task.pk).count() == 1
        drain.drain()

        [got] = receiver.received
        assert got["body"]["type"] == "task.failed"
        data = got["body"]["data"]
        assert (data["id"], data["name"], data["status"]) == (task.pk, task.name, "FAILED")
        assert data["url"].endswith(f"/tasks/{task.pk}/")
        assert data["eventId"].startswith("evt_")
        delivery = Delivery.objects.get()
        assert (delivery.status, got["id"]) == (DeliveryStatus.DELIVERED, delivery.uid)

        # The same headers with a body changed in transit fail the verification.
        tampered = httpx.post(
            receiver.url,
            content=b'{"type":"task.succeeded","timestamp":"x","data":{}}',
            headers={k: v for k, v in got["headers"].items() if k.startswith("webhook-")},
        )
        assert tampered.status_code == 401 and receiver.rejected == 1
    # The secret and the URL are not stored in clear.
    stored = Channel.objects.get()
    assert secret not in stored.secret_encrypted and receiver.url not in stored.url_encrypted
    assert secrets_store.unseal(stored.secret_encrypted) == secret


def test_a_receiver_that_fails_then_recovers_gets_it_once_with_one_id(admin):
    with WebhookReceiver() as receiver:
        channel, receiver.secret = webhook_channel(admin, receiver.url)
        team_rule(admin, channel, events=["task.failed"])
        receiver.answers = [500, 500]
        failed_task()
        now = timezone.now()
        drain.drain(now)
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_code) == ("PENDING", 1, 500)
        assert delivery.next_attempt_at == now + timedelta(seconds=5)  # the first retry: soon
        drain.drain(now + timedelta(seconds=4))  # not due yet
        assert Delivery.objects.get().attempts == 1
        drain.drain(now + timedelta(seconds=6))
        assert Delivery.objects.get().next_attempt_at == now + timedelta(seconds=36)
        drain.drain(now + timedelta(seconds=37))

        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
        assert len(receiver.received) == 1
        assert receiver.ids == {delivery.uid: 3}  # the same webhook id on every attempt
        codes = list(delivery.tries.order_by("id").values_list("status_code", flat=True))
        assert codes == [500, 500, 200]


def test_receiver_down_for_five_minutes_and_the_sender_dying_mid_send_lose_nothing(admin):
    from taskcenter.notifications import outbox

    with port_of_a_receiver_that_is_down() as port:
        url = f"http://127.0.0.1:{port}/hook"
        channel, secret = webhook_channel(admin, url)
        team_rule(admin, channel, events=["task.failed"])
        tasks = [failed_task() for _ in range(3)]
        now = timezone.now()
        # The scheduler claims the first batch and dies before sending it (nothing settles).
        outbox.fan_out(now)
        assert len(outbox._claim(now, limit=50)) == 3
        # Another scheduler meanwhile: the claims' lease keeps it off them...
        drain.drain(now + timedelta(seconds=1))
        assert not DeliveryAttempt.objects.exists()
        # ...until the lease is over; the receiver is down for five minutes: retries fail.
        for seconds in (70, 100, 230, 300):
            drain.drain(now + timedelta(seconds=seconds))
        statuses = set(Delivery.objects.values_list("status", flat=True))
        assert statuses == {DeliveryStatus.PENDING}
        assert all("ConnectError" in d.last_error for d in Delivery.objects.all())
    # Both back: every event arrives, none twice.
    with WebhookReceiver(secret, port=port) as receiver:
        drain.drain(now + timedelta(hours=1))
    assert sorted(r["body"]["data"]["id"] for r in receiver.received) == [t.pk for t in tasks]
    assert set(receiver.ids.values()) == {1}
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_a_delivery_failing_for_the_whole_retry_period_is_dead(admin, settings):
    settings.TASKCENTER_NOTIFY_RETRY_FOR = 3600
    with WebhookReceiver() as receiver:
        channel, receiver.secret = webhook_channel(admin, receiver.url)
        team_rule(admin, channel)
        receiver.answers = [503] * 20
        failed_task()
        now = timezone.now()
        drain.drain(now)
        drain.drain(now + timedelta(hours=2))
    delivery = Delivery.objects.get(kind=DeliveryKind.EVENT, event__kind="task.failed")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 2)


def _failure(number: int, cluster_id: int | None = None) -> events.DomainEvent:
    return events.DomainEvent(
        kind=events.Kind.TASK_FAILED,
        key=f"flood:{number}",
        object_type="task",
        object_id=number,
        name=f"flood {number}",
        status="FAILED",
        cluster_id=cluster_id,
        task_id=number,
    )


def test_a_flood_is_folded_into_a_handful_of_digests_with_the_right_counts(admin, settings):
    settings.TASKCENTER_NOTIFY_FLOOD_LIMIT = 10
    settings.TASKCENTER_NOTIFY_FLOOD_WINDOW = 60
    with WebhookReceiver() as receiver:
        channel, receiver.secret = webhook_channel(admin, receiver.url)
        team_rule(admin, channel, events=["task.failed"])
        start = timezone.now()
        # 1,000 failures within a minute, through the engine's own emitter (building 1,000
        # real failed tasks would test the factories, not the folding).
        for second in range(0, 60, 6):
            events.emit(*(_failure(second * 100 + n) for n in range(100)))
            drain.drain(start + timedelta(seconds=second))
        drain.drain(start + timedelta(seconds=121))  # every window has closed

        bodies = [r["body"] for r in receiver.received]
        singles = [b for b in bodies if b["type"] == "task.failed"]
        digests = [b for b in bodies if b["type"] == "notification.digest"]
        assert len(singles) == 10  # the flood limit of the first window
        assert 1 <= len(digests) <= 3
        assert len(singles) + sum(d["data"]["count"] for d in digests) == 1000
        assert all(d["data"]["kinds"] == ["task.failed"] for d in digests)
        assert "/notifications/events/?rule=" in digests[0]["data"]["url"]


def test_a_scoped_users_rule_never_delivers_another_clusters_event(clusters, admin):
    alpha, bravo = clusters
    user = make_user("scoped", roles.VIEWER)
    scope = grant_scoped(user, roles.VIEWER, alpha)
    with WebhookReceiver() as receiver:
        channel, receiver.secret = webhook_channel(admin, receiver.url, openToAll=True)
        verbs.rule_create(
            actor=user,
            owner=user,
            personal=True,
            data=parse_rule({"channelId": channel.pk}, Channel.objects.filter(open_to_all=True)),
        )
        on_alpha = failed_task_on(alpha, "alpha job")
        failed_task_on(bravo, "bravo job")
        drain.drain()
        assert [r["body"]["data"]["id"] for r in receiver.received] == [on_alpha.pk]
        assert list(Notification.objects.values_list("event__task_id", flat=True)) == [on_alpha.pk]

        # An alpha failure fanned out while the user could see alpha, then their role moves
        # to bravo before it is sent: it is dropped, and bravo's next failure goes out.
        receiver.answers = [500]
        second_alpha = failed_task_on(alpha, "alpha job 2")
        now = timezone.now()
        drain.drain(now)
        scope.clusters.set([bravo])
        on_bravo = failed_task_on(bravo, "bravo job 2")
        failed_task_on(alpha, "alpha job 3")
        drain.drain(now + timedelta(seconds=10))
        assert [r["body"]["data"]["id"] for r in receiver.received] == [on_alpha.pk, on_bravo.pk]
        dropped = Delivery.objects.get(event__task_id=second_alpha.pk)
        assert dropped.status == DeliveryStatus.DROPPED
        assert "may no longer see" in dropped.last_error


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


def test_mail_arrives_with_text_html_and_an_unsubscribe_for_a_personal_rule(smtp, admin, viewer):
    viewer.email = "viewer@example.com"
    viewer.save()
    channel = verbs.channel_create(
        actor=admin, data=parse_channel({"name": "mail me", "kind": "email", "openToAll": True})
    ).channel
    verbs.rule_create(
        actor=viewer,
        owner=viewer,
        personal=True,
        data=parse_rule(
            {"channelId": channel.pk, "events": ["task.failed"]}, Channel.objects.all()
        ),
    )
    task = failed_task()
    drain.drain()

    [mail] = smtp.messages
    assert mail["To"] == "viewer@example.com"
    assert mail["Subject"].startswith("[taskcenter] task.failed: ")
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert "/notifications/unsubscribe/" in unsubscribe
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in mail.walk()
        if not part.is_multipart()
    }
    assert f"/tasks/{task.pk}/" in parts["text/plain"]
    assert f'href="http://127.0.0.1:8000/tasks/{task.pk}/"' in parts["text/html"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_an_apprise_url_reaches_the_local_receiver(admin):
    with WebhookReceiver() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/apprise"
        channel = verbs.channel_create(
            actor=admin, data=parse_channel({"name": "chat", "kind": "apprise", "url": url})
        ).channel
        assert channel.url_hint == f"json://127.0.0.1:{receiver.port}/…"
        team_rule(admin, channel, events=["task.failed"])
        task = failed_task()
        drain.drain()
        [message] = receiver.plain
        assert message["title"].startswith("[taskcenter] task.failed: ")
        assert f"/tasks/{task.pk}/" in message["message"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
