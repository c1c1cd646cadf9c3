"""Notifications in a real headless Chromium: an admin makes a webhook channel (its secret
shown once) and a team rule, sends a test, watches a task, sees the bell count rise when
the task fails, opens the channel's deliveries and redelivers.

The outbox's passes are run by the test (`drain.drain()`), where `run_scheduler` would
run them several times a second: the journey is the pages', the loop has its own tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskcenter.notifications import drain, secrets_store, verbs
from taskcenter.notifications.inputs import parse_channel
from taskcenter.notifications.models import Delivery
from taskcenter.tasks import services
from tests.conftest import sign_in
from tests.factories import running_task, subtask_named
from tests.notifications.receivers import WebhookReceiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("TASKCENTER_VAR_DIR", "var")) / "screens"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"notifications-{name}.png"), full_page=True)


def test_admin_makes_a_channel_and_a_rule_tests_watches_sees_the_bell_and_redelivers(
    live_server, page, admin
):
    task = running_task()
    with WebhookReceiver() as receiver:
        sign_in(page, live_server, "admin", next_url="/notifications/channels/")
        expect(page.get_by_role("heading", name="No channel yet")).to_be_visible()

        # A webhook channel: its secret is shown once.
        page.get_by_label("Name", exact=True).fill("ops hook")
        page.get_by_label("Kind", exact=True).select_option("webhook")
        page.get_by_label("URL", exact=True).fill(receiver.url)
        page.get_by_role("button", name="Create channel").click()
        secret = page.get_by_test_id("secret").locator(".secret-value").inner_text().strip()
        assert secret.startswith("whsec_")
        receiver.secret = secret
        shot(page, "1-channel-secret")

        # A team rule: task.failed to the channel.
        page.get_by_label("Channel", exact=True).select_option(label="ops hook")
        page.locator("input[name=events][value='task.failed']").check()
        page.get_by_role("button", name="Create rule").click()
        expect(page.get_by_test_id("team-rules")).to_contain_text("task.failed")
        page.reload()
        expect(page.get_by_test_id("secret")).to_have_count(0)  # never shown again

        # Send a test: the deliveries page shows it, delivered once the outbox has run.
        page.get_by_role("button", name="Send a test").first.click()
        expect(page.get_by_role("heading", name="Deliveries of ops hook")).to_be_visible()
        drain.drain()
        page.reload()
        expect(page.get_by_test_id("deliveries")).to_contain_text("DELIVERED")
        assert receiver.received[0]["body"]["type"] == "notification.test"

        # Watch the task, then it fails: the bell counts it.
        page.goto(f"{live_server.url}/tasks/{task.pk}/")
        page.get_by_test_id("watch").click()
        expect(page.get_by_test_id("watch")).to_have_text("Watching")
        expect(page.get_by_test_id("bell-count")).to_have_count(0)
        step = subtask_named(task, "step 1")
        services.attempt_finish(subtask_id=step.pk, attempt=step.attempt, succeeded=False)
        drain.drain()
        expect(page.get_by_test_id("bell-count")).to_have_text("1", timeout=20_000)
        shot(page, "2-bell")
        page.get_by_test_id("bell").click()
        expect(page.get_by_test_id("inbox")).to_contain_text("task.failed")
        expect(page.get_by_test_id("bell-count")).to_have_count(0)  # read once shown
        shot(page, "3-inbox")

        # The team rule sent the failure too; redeliver it from the deliveries page.
        failure = Delivery.objects.get(event__kind="task.failed")
        page.goto(f"{live_server.url}/notifications/channels/{failure.channel_id}/deliveries/")
        row = page.locator(f"[data-delivery='{failure.uid}']")
        expect(row).to_contain_text("DELIVERED")
        row.get_by_test_id("redeliver").click()
        expect(page.locator("#flash")).to_contain_text("sent again, with the same webhook id")
        drain.drain()
        page.reload()
        expect(page.locator(f"[data-delivery='{failure.uid}'] .sub.nowrap")).to_have_count(2)
        shot(page, "4-deliveries")
    failures = [r["id"] for r in receiver.received if r["body"]["type"] == "task.failed"]
    assert failures == [failure.uid, failure.uid]


def test_admin_edits_a_channel_replaces_its_secret_and_makes_a_personal_rule_on_it(
    live_server, page, admin
):
    created = verbs.channel_create(
        actor=admin,
        data=parse_channel({"name": "ops", "kind": "webhook", "url": "https://h.example.com/t"}),
    )
    sign_in(page, live_server, "admin", next_url="/notifications/channels/")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit the channel ops")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("ops east")
    page.get_by_label("Anyone may use it in their personal rules").check()
    page.get_by_role("button", name="Save the channel").click()
    expect(page.locator("#flash")).to_contain_text("Channel “ops east” saved.")
    expect(page.get_by_test_id("channels")).to_contain_text("open to all")

    # Replacing the secret asks first, then shows the new one once.
    page.get_by_role("link", name="Edit").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("replace-secret").click()
    secret = page.get_by_test_id("secret").locator(".secret-value").inner_text().strip()
    created.channel.refresh_from_db()
    assert secret.startswith("whsec_") and secret != created.secret
    assert secrets_store.unseal(created.channel.secret_encrypted) == secret
    shot(page, "5-secret-replaced")

    # A personal rule on that channel, from the account page.
    page.goto(f"{live_server.url}/account/#my-rules")
    form = page.get_by_test_id("my-rule-form")
    form.get_by_label("Send to").select_option(label="ops east (webhook) and the bell")
    form.locator("input[name=events][value='task.failed']").check()
    form.get_by_role("button", name="Create rule").click()
    expect(page.get_by_test_id("my-rules")).to_contain_text("ops east and the bell")
    shot(page, "6-personal-rule")
