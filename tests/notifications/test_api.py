"""The notifications API: OCP's envelope, the secret answered once, who may do what,
bad input refused with a 400 naming the field, every change audited."""

from __future__ import annotations

from taskcenter.notifications import drain
from taskcenter.notifications.models import Channel, Delivery, Rule
from taskcenter.tasks.models import AuditEntry
from tests.conftest import basic_client
from tests.notifications.receivers import WebhookReceiver

BASE = "/api/v2/notifications"


def post(client, path, body):
    return client.post(f"{BASE}{path}", body, content_type="application/json")


def put(client, path, body):
    return client.put(f"{BASE}{path}", body, content_type="application/json")


def test_a_webhook_channel_answers_its_secret_once_and_a_test_arrives_signed(admin):
    client = basic_client("admin")
    with WebhookReceiver() as receiver:
        answer = post(client, "/channels", {"name": "ops", "kind": "webhook", "url": receiver.url})
        assert answer.status_code == 201, answer.json()
        body = answer.json()
        assert body["successful"] is True and body["status"] == 201
        secret = body["data"]["secret"]
        assert secret.startswith("whsec_")
        channel_id = body["data"]["id"]
        assert body["data"]["url"] == f"http://127.0.0.1:{receiver.port}/…"

        shown = client.get(f"{BASE}/channels/{channel_id}").json()["data"]
        assert "secret" not in shown and receiver.url not in str(shown)
        listed = client.get(f"{BASE}/channels").json()["data"]["contents"]
        assert [c["id"] for c in listed] == [channel_id] and "secret" not in listed[0]

        receiver.secret = secret
        tested = post(client, f"/channels/{channel_id}/test", {})
        assert tested.status_code == 202
        drain.drain()
        [got] = receiver.received
        assert got["body"]["type"] == "notification.test"
        assert got["id"] == tested.json()["data"]["deliveryId"]

    page = client.get(f"{BASE}/deliveries", {"channel": channel_id, "status": "DELIVERED"}).json()
    [delivery] = page["data"]["contents"]
    assert delivery["tries"][0]["statusCode"] == 200 and delivery["attempts"] == 1
    assert page["data"]["page"]["totalElements"] == 1
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"NOTIFY_CHANNEL_CREATE", "NOTIFY_CHANNEL_TEST"} <= actions


def test_channel_changes_and_deletion_are_for_admins_and_audited(admin, viewer):
    client = basic_client("admin")
    created = post(
        client, "/channels", {"name": "mail", "kind": "email", "addresses": ["a@example.com"]}
    )
    channel_id = created.json()["data"]["id"]
    denied = post(basic_client("viewer"), "/channels", {"name": "x", "kind": "email"})
    assert denied.status_code == 403 and denied.json()["successful"] is False
    assert basic_client("viewer").get(f"{BASE}/channels/{channel_id}").status_code == 403

    changed = put(
        client, f"/channels/{channel_id}", {"name": "mail ops", "addresses": "b@example.com"}
    )
    assert changed.json()["data"]["addresses"] == ["b@example.com"]
    assert client.delete(f"{BASE}/channels/{channel_id}").status_code == 200
    assert not Channel.objects.exists()
    assert client.get(f"{BASE}/channels/{channel_id}").status_code == 404
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["NOTIFY_CHANNEL_CREATE", "NOTIFY_CHANNEL_UPDATE", "NOTIFY_CHANNEL_DELETE"]


def test_bad_bodies_are_a_400_naming_the_field(admin):
    client = basic_client("admin")
    cases = [
        ("/channels", {"name": "x", "kind": "pager"}, "kind"),
        ("/channels", {"name": "x", "kind": "webhook", "url": "ftp://host/"}, "url"),
        ("/channels", {"name": "x", "kind": "webhook"}, "url"),
        ("/channels", {"kind": "email"}, "name"),
        ("/channels", {"name": "x", "kind": "email", "addresses": ["not mail"]}, "addresses"),
        ("/channels", [1, 2], "body"),
        ("/rules", {"events": ["task.exploded"]}, "events"),
        ("/rules", {"channelId": 999}, "channelId"),
        ("/rules", {"job": "a", "planId": 3}, "planId"),
        ("/rules", {"clusterId": "abc"}, "clusterId"),
    ]
    for path, body, field in cases:
        answer = post(client, path, body)
        assert answer.status_code == 400, (body, answer.content)
        assert field in answer.json()["error"]["message"], (body, answer.json())


def test_users_make_their_own_rules_on_open_channels_admins_team_rules(admin, viewer, clusters):
    admin_client, viewer_client = basic_client("admin"), basic_client("viewer")
    closed = post(
        admin_client, "/channels", {"name": "team", "kind": "email", "addresses": ["t@example.com"]}
    )
    opened = post(admin_client, "/channels", {"name": "mine", "kind": "email", "openToAll": True})
    closed_id, open_id = closed.json()["data"]["id"], opened.json()["data"]["id"]

    team = post(
        admin_client,
        "/rules",
        {"channelId": closed_id, "events": ["task.failed"], "clusterId": clusters[0].pk},
    )
    assert team.status_code == 201 and team.json()["data"]["personal"] is False
    refused = post(viewer_client, "/rules", {"channelId": closed_id})
    assert refused.status_code == 400 and "channelId" in refused.json()["error"]["message"]
    mine = post(
        viewer_client, "/rules", {"channelId": open_id, "events": ["task.failed", "plan.disabled"]}
    )
    assert mine.status_code == 201, mine.json()
    rule_id = mine.json()["data"]["id"]
    assert mine.json()["data"]["personal"] is True and mine.json()["data"]["owner"] == "viewer"
    bell_only = post(viewer_client, "/rules", {"job": "Migrate tenant"})
    assert bell_only.json()["data"]["channelId"] is None

    listed = viewer_client.get(f"{BASE}/rules").json()["data"]["contents"]
    assert {r["id"] for r in listed} == {rule_id, bell_only.json()["data"]["id"]}
    # A team rule is not the viewer's to read or change.
    team_id = team.json()["data"]["id"]
    assert viewer_client.get(f"{BASE}/rules/{team_id}").status_code == 404
    changed = put(
        viewer_client,
        f"/rules/{rule_id}",
        {"channelId": open_id, "events": ["task.succeeded"], "enabled": False},
    )
    assert changed.json()["data"]["events"] == ["task.succeeded"]
    assert changed.json()["data"]["enabled"] is False
    assert viewer_client.delete(f"{BASE}/rules/{rule_id}").status_code == 200
    assert not Rule.objects.filter(pk=rule_id).exists()
    # Deliveries: a viewer sees those of their own rules only.
    assert viewer_client.get(f"{BASE}/deliveries").json()["data"]["contents"] == []
    assert Delivery.objects.count() == 0
    actions = list(
        AuditEntry.objects.filter(action__startswith="NOTIFY_RULE").values_list("action", flat=True)
    )
    assert sorted(actions) == ["NOTIFY_RULE_CREATE"] * 3 + [
        "NOTIFY_RULE_DELETE",
        "NOTIFY_RULE_UPDATE",
    ]


def test_a_rule_on_a_task_outside_the_callers_scope_is_refused(viewer, clusters):
    from taskcenter.accounts import roles
    from tests.factories import failed_task_on, grant_scoped

    grant_scoped(viewer, roles.VIEWER, clusters[0])
    other = failed_task_on(clusters[1], "elsewhere")
    client = basic_client("viewer")
    assert post(client, "/rules", {"taskId": other.pk}).status_code == 404
    assert post(client, "/rules", {"clusterId": clusters[1].pk}).status_code == 400
    assert post(client, "/rules", {"clusterId": clusters[0].pk}).status_code == 201


def test_a_put_with_replace_secret_answers_a_new_secret_once(admin):
    client = basic_client("admin")
    created = post(
        client, "/channels", {"name": "ops", "kind": "webhook", "url": "https://h.example.com/a"}
    )
    first = created.json()["data"]
    channel_id = first["id"]
    kept = put(client, f"/channels/{channel_id}", {"name": "ops 2"})
    assert kept.status_code == 200 and "secret" not in kept.json()["data"]
    replaced = put(client, f"/channels/{channel_id}", {"name": "ops 2", "replaceSecret": True})
    secret = replaced.json()["data"]["secret"]
    assert secret.startswith("whsec_") and secret != first["secret"]
    assert "secret" not in client.get(f"{BASE}/channels/{channel_id}").json()["data"]
    mail = post(client, "/channels", {"name": "mail", "kind": "email"}).json()["data"]
    refused = put(client, f"/channels/{mail['id']}", {"name": "mail", "replaceSecret": True})
    assert refused.status_code == 400 and "replaceSecret" in str(refused.json())
