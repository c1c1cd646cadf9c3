"""The notification pages: channels and team rules for admins, a channel's deliveries with
Redeliver, watching from the task, job and plan pages, the bell, personal rules on the
account page, one-click unsubscribe."""

from __future__ import annotations

from taskcenter.notifications import drain, messages, verbs
from taskcenter.notifications.inputs import parse_channel
from taskcenter.notifications.models import Channel, Delivery, Notification, Rule
from taskcenter.tasks import services
from tests.conftest import client_for
from tests.factories import failed_task, make_rule, running_task, subtask_named
from tests.notifications.receivers import WebhookReceiver


def test_an_admin_makes_a_channel_sees_its_secret_once_and_makes_a_team_rule(admin, viewer):
    client = client_for(admin)
    assert client.get("/notifications/channels/").status_code == 200
    answer = client.post(
        "/notifications/channels/",
        {"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/x/token"},
    )
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "whsec_" in text and "hooks.example.com/x/token" not in text
    again = client.get("/notifications/channels/").content.decode()
    assert "whsec_" not in again and "https://hooks.example.com/…" in again
    channel = Channel.objects.get()
    client.post(
        "/notifications/rules/",
        {"channelId": channel.pk, "events": ["task.failed"], "job": "", "clusterId": ""},
    )
    assert Rule.objects.get().personal is False
    bad = client.post(
        "/notifications/channels/", {"name": "x", "kind": "webhook", "url": "nope"}, follow=True
    )
    assert "url" in bad.content.decode() and Channel.objects.count() == 1
    # Not for a viewer.
    assert client_for(viewer).get("/notifications/channels/").status_code == 403


def test_the_deliveries_page_shows_attempts_and_redelivers_with_the_same_id(admin):
    with WebhookReceiver() as receiver:
        created = verbs.channel_create(
            actor=admin,
            data=parse_channel({"name": "ops", "kind": "webhook", "url": receiver.url}),
        )
        receiver.secret = created.secret
        client = client_for(admin)
        client.post(f"/notifications/channels/{created.channel.pk}/test/")
        drain.drain()
        delivery = Delivery.objects.get()
        page = client.get(
            f"/notifications/channels/{created.channel.pk}/deliveries/"
        ).content.decode()
        assert delivery.uid in page and "DELIVERED" in page and "Redeliver" in page
        client.post(f"/notifications/deliveries/{delivery.pk}/redeliver/")
        drain.drain()
    assert [r["id"] for r in receiver.received] == [delivery.uid, delivery.uid]
    assert Delivery.objects.get().tries.count() == 2


def test_watching_a_task_fills_the_bell_and_the_account_page_lists_it(viewer):
    task = running_task()
    client = client_for(viewer)
    button = client.get(f"/notifications/watch/?task={task.pk}").content.decode()
    assert 'aria-pressed="false"' in button
    pressed = client.post("/notifications/watch/", {"task": task.pk}).content.decode()
    assert 'aria-pressed="true"' in pressed
    rule = Rule.objects.get(owner=viewer)
    assert (rule.task_id, rule.channel, rule.personal) == (task.pk, None, True)
    assert "task " + str(task.pk) in client.get("/notifications/mine/").content.decode()

    other = failed_task()  # not watched: not in the bell
    running = subtask_named(task, "step 1")
    services.attempt_finish(subtask_id=running.pk, attempt=running.attempt, succeeded=False)
    drain.drain()
    assert list(Notification.objects.values_list("event__task_id", flat=True)) == [task.pk]
    assert 'data-testid="bell-count">1<' in client.get("/notifications/bell/").content.decode()
    inbox = client.get("/notifications/").content.decode()
    assert f"/tasks/{task.pk}/" in inbox and f"/tasks/{other.pk}/" not in inbox
    assert "bell-count" not in client.get("/notifications/bell/").content.decode()  # read

    unpressed = client.post("/notifications/watch/", {"task": task.pk}).content.decode()
    assert 'aria-pressed="false"' in unpressed and not Rule.objects.exists()


def test_a_task_outside_the_users_scope_cannot_be_watched(viewer):
    assert client_for(viewer).post("/notifications/watch/", {"task": 999999}).status_code == 404


def test_one_click_unsubscribe_turns_the_personal_rule_off(viewer):
    rule = make_rule(viewer)
    url = messages.unsubscribe_url(rule).removeprefix("http://127.0.0.1:8000")
    anonymous = client_for(None)
    assert "Stop these messages?" in anonymous.get(url).content.decode()
    assert anonymous.post(url).status_code == 200
    assert Rule.objects.get().enabled is False
    assert anonymous.get("/notifications/unsubscribe/forged/").status_code == 404
