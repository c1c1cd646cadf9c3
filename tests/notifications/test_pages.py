"""The notification pages: channels and team rules for admins, a channel's deliveries with
Redeliver, watching from the task, job and plan pages, the bell, personal rules on the
account page, one-click unsubscribe."""

from __future__ import annotations

from taskcenter.notifications import drain, messages, secrets_store, verbs
from taskcenter.notifications.inputs import parse_channel
from taskcenter.notifications.models import Channel, Delivery, Notification, Rule
from taskcenter.tasks import services
from taskcenter.tasks.models import AuditEntry
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


def test_an_admin_edits_a_channel_keeps_its_url_and_replaces_its_secret(admin, viewer):
    created = verbs.channel_create(
        actor=admin,
        data=parse_channel(
            {"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/x/token"}
        ),
    )
    channel, old_secret = created.channel, created.secret
    assert old_secret is not None
    client = client_for(admin)
    url = f"/notifications/channels/{channel.pk}/edit/"
    assert f'href="{url}"' in client.get("/notifications/channels/").content.decode()
    form = client.get(url).content.decode()
    assert "https://hooks.example.com/…" in form and "/x/token" not in form
    assert old_secret not in form and "Replace the secret" in form and "data-confirm=" in form

    # A new name, the URL left empty: the stored URL and the secret are kept.
    saved = client.post(url, {"name": "ops east", "url": "", "addresses": ""})
    assert saved.status_code == 302 and saved["Location"] == "/notifications/channels/"
    channel.refresh_from_db()
    assert channel.name == "ops east" and channel.open_to_all is False
    assert secrets_store.unseal(channel.url_encrypted) == "https://hooks.example.com/x/token"
    assert secrets_store.unseal(channel.secret_encrypted) == old_secret

    # Bad input: a clear message, nothing changed.
    bad = client.post(url, {"name": "ops east", "url": "ftp://x"}).content.decode()
    assert "url" in bad and "http://" in bad
    assert Channel.objects.get().url_hint == "https://hooks.example.com/…"

    # Replacing the secret shows the new one once, and only then.
    replaced = client.post(url, {"name": "ops east", "replaceSecret": "on", "openToAll": "on"})
    text = replaced.content.decode()
    channel.refresh_from_db()
    new_secret = secrets_store.unseal(channel.secret_encrypted)
    assert new_secret != old_secret and new_secret in text and channel.open_to_all
    assert new_secret not in client.get(url).content.decode()
    updates = AuditEntry.objects.filter(action="NOTIFY_CHANNEL_UPDATE").order_by("id")
    assert [a.reason for a in updates] == ["", "replaced: secret"]

    assert client_for(viewer).get(url).status_code == 403
    assert client_for(viewer).post(url, {"name": "x"}).status_code == 403


def test_a_mail_channel_has_no_secret_to_replace(admin):
    created = verbs.channel_create(
        actor=admin, data=parse_channel({"name": "mail", "kind": "email"})
    )
    client = client_for(admin)
    url = f"/notifications/channels/{created.channel.pk}/edit/"
    assert "Replace the secret" not in client.get(url).content.decode()
    answer = client.post(url, {"name": "mail", "replaceSecret": "on"}).content.decode()
    assert "only a webhook channel has a secret" in answer


def test_a_user_makes_a_personal_rule_on_a_channel_open_to_them(admin, viewer):
    open_one = verbs.channel_create(
        actor=admin, data=parse_channel({"name": "all hands", "kind": "email", "openToAll": True})
    ).channel
    team_only = verbs.channel_create(
        actor=admin, data=parse_channel({"name": "ops only", "kind": "email"})
    ).channel
    client = client_for(viewer)
    listed = client.get("/notifications/mine/").content.decode()
    assert 'data-testid="my-rule-form"' in listed and "csrfmiddlewaretoken" in listed
    assert "all hands" in listed and "ops only" not in listed

    made = client.post(
        "/notifications/mine/new/",
        {"channelId": open_one.pk, "events": ["task.failed", "task.waiting"], "job": "nightly"},
    )
    assert made.status_code == 302 and made["Location"].endswith("#my-rules")
    rule = Rule.objects.get()
    assert (rule.owner, rule.personal, rule.channel, rule.job) == (
        viewer,
        True,
        open_one,
        "nightly",
    )
    assert rule.events == ["task.failed", "task.waiting"]
    assert AuditEntry.objects.filter(action="NOTIFY_RULE_CREATE").count() == 1
    assert "all hands and the bell" in client.get("/notifications/mine/").content.decode()

    refused = client.post(
        "/notifications/mine/new/", {"channelId": team_only.pk, "events": ["task.failed"]}
    )
    assert Rule.objects.count() == 1
    page = client.get(refused["Location"]).content.decode()
    assert "no channel" in page and str(team_only.pk) in page
    bell_only = client.post("/notifications/mine/new/", {"channelId": "", "clusterId": "999999"})
    assert bell_only.status_code == 302 and Rule.objects.count() == 1
