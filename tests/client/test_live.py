"""The client library and the `taskcenter` command against a live server started by the
test (real HTTP on loopback), signed with access keys made by the accounts services and
with HTTP Basic."""

from __future__ import annotations

import json
import re
import stat
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from taskcenter.accounts import roles
from taskcenter.accounts import services as account_services
from taskcenter.client import ApiError, Client
from taskcenter.client import cli as cli_module
from taskcenter.client.cli import main
from taskcenter.tasks import selectors
from taskcenter.tasks.services import log_append
from tests.factories import PASSWORD, failed_task, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator_key(operator) -> tuple[str, str]:
    key, secret = account_services.access_key_create(owner=operator, actor=operator)
    return key.key_id, secret


@pytest.fixture
def client(live_server, operator_key):
    key_id, secret = operator_key
    with Client(
        live_server.url, access_key_id=key_id, access_key_secret=secret, retries=0
    ) as client:
        yield client


def _command(url: str, key: tuple[str, str], config_dir, monkeypatch):
    """The command, in a fresh config dir, with an access key in the environment."""
    monkeypatch.setenv("TASKCENTER_CONFIG", str(config_dir / "config.json"))
    monkeypatch.setenv("TASKCENTER_URL", url)
    monkeypatch.setenv("TASKCENTER_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("TASKCENTER_ACCESS_KEY_SECRET", key[1])
    monkeypatch.setattr(cli_module, "POLL", 0.02)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def run(live_server, operator_key, tmp_path, monkeypatch):
    """The command as the operator."""
    return _command(live_server.url, operator_key, tmp_path, monkeypatch)


@pytest.fixture
def run_as_admin(live_server, admin, tmp_path, monkeypatch):
    """The command as an admin (who manages notification channels)."""
    key, secret = account_services.access_key_create(owner=admin, actor=admin)
    return _command(live_server.url, (key.key_id, secret), tmp_path, monkeypatch)


# --- The library --------------------------------------------------------------------------


def test_list_pages_through_and_get_shows_the_subtasks(client):
    made = [failed_task() for _ in range(3)]
    listed = list(client.tasks.list(status="FAILED", size=2))
    assert sorted(t.id for t in listed) == sorted(t.pk for t in made)
    task = client.tasks.get(made[0].pk)
    assert task.status == "FAILED"
    assert [s.status for s in task.subtasks] == ["SUCCESSFUL", "FAILED", "PENDING"]
    assert task.raw["id"] == made[0].pk


def test_a_signed_retry_changes_the_task(client):
    task = failed_task()
    assert client.tasks.retry(task.pk, reason="disk replaced").status == "RUNNING"
    assert selectors.task_get(task_id=task.pk).status == "RUNNING"


def test_basic_auth(live_server, operator):
    task = failed_task()
    with Client(live_server.url, username="operator", password=PASSWORD) as client:
        assert client.tasks.get(task.pk).id == task.pk


def test_errors_carry_the_servers_code_message_and_trace_id(client, live_server):
    with pytest.raises(ApiError) as raised:
        client.tasks.get(987654)
    error = raised.value
    assert (error.status, error.code) == (404, 20000)
    assert error.message and error.trace_id
    make_user("watcher", roles.VIEWER)
    task = failed_task()
    with Client(live_server.url, username="watcher", password=PASSWORD) as viewer:
        with pytest.raises(ApiError) as raised:
            viewer.tasks.retry(task.pk)
    assert (raised.value.status, raised.value.code) == (403, 30014)


def test_a_wrong_secret_is_refused(live_server, operator_key):
    with Client(live_server.url, access_key_id=operator_key[0], access_key_secret="wrong") as c:
        with pytest.raises(ApiError) as raised:
            c.tasks.page()
    assert (raised.value.status, raised.value.code) == (401, 30004)
    assert "signature" in raised.value.message


# --- The command ------------------------------------------------------------------------


def test_login_stores_a_profile_readable_by_its_owner_only(
    run, operator_key, tmp_path, monkeypatch
):
    for name in ("TASKCENTER_ACCESS_KEY_ID", "TASKCENTER_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name)
    url = cli_module.config.load().url
    monkeypatch.delenv("TASKCENTER_URL")
    result = run(
        "--profile", "prod", "login", "--url", url,
        "--access-key-id", operator_key[0], "--access-key-secret", operator_key[1],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["profiles"]["prod"]["url"] == url
    task = failed_task()
    listed = run("--profile", "prod", "tasks", "list", "-o", "json")
    assert [t["id"] for t in json.loads(listed.output)] == [task.pk]
    refused = run(
        "login", "--url", url, "--access-key-id", operator_key[0], "--access-key-secret", "bad"
    )
    assert refused.exit_code == 3
    assert (
        "signature" in refused.output and "default" not in json.loads(path.read_text())["profiles"]
    )


def test_tasks_list_show_and_retry(run):
    task = failed_task()
    listed = run("tasks", "list", "--status", "FAILED")
    assert listed.exit_code == 0 and str(task.pk) in listed.output and "FAILED" in listed.output
    # 80 columns, nothing cut off with an ellipsis; the start to the minute, local time.
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    assert "…" not in listed.output
    started = datetime.fromisoformat(task.start_time.isoformat()).astimezone()
    assert (
        started.strftime("%Y-%m-%d") in listed.output and started.strftime("%H:%M") in listed.output
    )
    jobs = run("jobs", "list")
    assert "…" not in jobs.output and max(len(line) for line in jobs.output.splitlines()) <= 80
    shown = run("tasks", "show", str(task.pk))
    assert shown.exit_code == 0
    for sub in task.subtasks.all():
        assert sub.name in shown.output
    assert json.loads(run("tasks", "show", str(task.pk), "-o", "json").output)["id"] == task.pk
    retried = run("tasks", "retry", str(task.pk), "--reason", "disk replaced")
    assert retried.exit_code == 0 and "RUNNING" in retried.output


def test_an_error_is_a_message_with_the_trace_id_and_exit_3(run):
    result = run("tasks", "show", "987654")
    assert result.exit_code == 3
    assert "code 20000" in result.output and "traceId" in result.output
    assert "Traceback" not in result.output


def test_logs_are_made_harmless_and_followed_to_the_end(run):
    task = failed_task()
    failed = task.subtasks.get(status="FAILED")
    log_append(
        subtask_id=failed.pk,
        attempt=failed.attempt,
        data=b"\x1b[31mred\x1b[0m \x1b]52;c;ZXZpbA==\x07\x1b[2Jdone\r\n",
    )
    plain = run("tasks", "logs", str(task.pk), "--follow")  # the failed one by default
    assert plain.exit_code == 0, plain.output
    assert plain.output == "red done\n"
    coloured = run("tasks", "logs", str(task.pk), str(failed.pk), "--color")
    assert coloured.output == "\x1b[0;31mred\x1b[0m done\n"


def test_jobs_list_show_and_run_with_wait(run, eager_engine):
    listed = json.loads(run("jobs", "list", "-o", "json").output)
    assert "Migrate tenant" in {job["name"] for job in listed}
    assert "fail_step" in run("jobs", "show", "Migrate tenant").output
    ok = run(
        "jobs", "run", "Migrate tenant", "-p", "step_seconds=0", "-p", "fail_step=",
        "--wait", "-o", "json",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"] == "SUCCESSFUL"
    failed = run(
        "jobs", "run", "Migrate tenant", "-p", "step_seconds=0", "-p", "fail_step=copy",
        "-p", "fail_times=5", "--wait",
    )  # fmt: skip
    assert failed.exit_code == 1, failed.output
    refused = run("jobs", "run", "Migrate tenant", "-p", "fail_times=-1")
    assert refused.exit_code == 3 and "fail_times" in refused.output


def test_bulk_dry_run_judges_and_changes_nothing(run):
    tasks = [failed_task() for _ in range(2)]
    result = run("tasks", "bulk", "retry", "--filter", "status=FAILED", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dryRun"] is True and sorted(data["accepted"]) == sorted(t.pk for t in tasks)
    assert {selectors.task_get(task_id=t.pk).status for t in tasks} == {"FAILED"}
    both = run("tasks", "bulk", "retry", "1", "--filter", "status=FAILED")
    assert both.exit_code == 2  # a usage error: ids or a filter
    misspelt = run("tasks", "bulk", "retry", "--filter", "stauts=FAILED", "--dry-run")
    assert misspelt.exit_code == 3  # refused: it would have selected every task
    assert one_line_error(misspelt).startswith("Error: --filter stauts: is not a filter of ")
    bad_value = run("tasks", "bulk", "retry", "--filter", "status=NOPE", "--dry-run")
    assert one_line_error(bad_value).startswith("Error: --filter status: "), bad_value.output
    no_reason = run("tasks", "bulk", "rollback", str(tasks[0].pk))
    assert one_line_error(no_reason).startswith("Error: option --reason: is required")


def test_follow_reads_a_growing_log_until_the_subtask_ends(client, no_broker):
    from taskcenter.tasks.services import attempt_finish
    from tests.factories import running_task

    task = running_task()
    sub = task.subtasks.get(status="RUNNING")
    log_append(subtask_id=sub.pk, attempt=sub.attempt, data=b"one\n")
    pieces = client.tasks.follow_logs(task.pk, sub.pk, poll=0.01)
    assert next(pieces).log == "one\n"
    log_append(subtask_id=sub.pk, attempt=sub.attempt, data=b"two\n")
    assert next(pieces).log == "two\n"
    attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True, log=b"three\n")
    assert "".join(chunk.log for chunk in pieces) == "three\n"


def test_a_clock_skew_that_breaks_signing_is_measured_and_said(run, monkeypatch):
    from email.utils import formatdate

    from taskcenter.client import signing

    ahead = time.time() + 20 * 60
    monkeypatch.setattr(signing, "formatdate", lambda usegmt: formatdate(ahead, usegmt=True))
    result = run("tasks", "list")
    assert result.exit_code == 3
    said = " ".join(result.output.split())
    measured = re.search(r"clock is (\d+) s ahead of the server's", said)
    assert measured, said
    # Whole seconds in Date headers; the answer comes after the signing, never before.
    assert 1100 <= int(measured.group(1)) <= 1201


def test_the_async_client_pages_gets_operates_and_raises_the_same(live_server, operator_key):
    import asyncio

    from taskcenter.client import AsyncClient

    made = [failed_task() for _ in range(3)]

    async def scenario() -> None:
        key_id, secret = operator_key
        async with AsyncClient(
            live_server.url, access_key_id=key_id, access_key_secret=secret
        ) as tc:
            listed = [task.id async for task in tc.tasks.list(status="FAILED", size=2)]
            assert sorted(listed) == sorted(t.pk for t in made)
            assert (await tc.tasks.get(made[0].pk)).status == "FAILED"
            assert (await tc.tasks.retry(made[0].pk)).status == "RUNNING"
            judged = await tc.bulk.start("retry", ids=[t.pk for t in made], dry_run=True)
            assert sorted(judged.accepted) == sorted(t.pk for t in made[1:])
            with pytest.raises(ApiError) as raised:
                await tc.tasks.get(987654)
            assert (raised.value.code, bool(raised.value.trace_id)) == (20000, True)

    asyncio.run(scenario())


def test_an_approval_gate_is_approved_from_the_command(run, no_broker):
    from tests.factories import waiting_approval

    task = waiting_approval()
    gate = task.subtasks.get(name="Approve the deployment")
    refused = run("subtasks", "approve", str(task.pk), str(gate.pk))
    assert refused.exit_code == 3 and "reason" in refused.output.lower()
    approved = run("subtasks", "approve", str(task.pk), str(gate.pk), "--reason", "checked")
    assert approved.exit_code == 0, approved.output
    assert "SUCCESSFUL" in approved.output


def test_notifications_are_listed_from_the_command(run):
    for args in (("channels",), ("rules",)):
        result = run("notifications", *args, "-o", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == []
    deliveries = run("notifications", "deliveries", "-o", "json")
    assert deliveries.exit_code == 0, deliveries.output
    assert json.loads(deliveries.output)["contents"] == []
    assert run("notifications", "deliveries").output == "No deliveries.\n"
    bad = run("notifications", "deliveries", "--status", "NOPE")
    assert bad.exit_code == 3
    assert bad.output.startswith("Error: option --status: 'NOPE' (use "), bad.output


def test_notifications_lists_and_shows_are_tables_within_80_columns(run_as_admin, admin):
    from tests.factories import make_channel, make_delivery, make_event, make_rule

    channel = make_channel("ops pager", url_hint="https://hooks.example.com")
    rule = make_rule(
        admin, personal=False, channel=channel, events=["task.failed"], job="Back up cluster"
    )
    delivery = make_delivery(
        channel,
        status="DEAD",
        rule=rule,
        event=make_event("task-1", "task.failed"),
        attempts=7,
        last_error="HTTP 500 from the receiver, seven times over the retry period",
    )
    shown = {
        "channels": run_as_admin("notifications", "channels"),
        "channel": run_as_admin("notifications", "channel", str(channel.pk)),
        "rules": run_as_admin("notifications", "rules"),
        "rule": run_as_admin("notifications", "rule", str(rule.pk)),
        "deliveries": run_as_admin("notifications", "deliveries", "--status", "DEAD"),
    }
    for name, result in shown.items():
        assert result.exit_code == 0, (name, result.output)
        assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    for name in ("channels", "channel"):
        assert (
            "ops pager" in shown[name].output and "https://hooks.example.com" in shown[name].output
        )
    for name in ("rules", "rule"):
        assert "task.failed" in shown[name].output and "job Back up cluster" in shown[name].output
    table = shown["deliveries"].output
    assert delivery.uid in table  # whole, on one line
    assert "DEAD" in table and "task.failed" in table and "HTTP 500 from the" in table
    as_json = json.loads(run_as_admin("notifications", "rule", str(rule.pk), "-o", "json").output)
    assert as_json["id"] == rule.pk and as_json["events"] == ["task.failed"]
    queued = run_as_admin("notifications", "test", str(channel.pk))
    assert queued.exit_code == 0 and "Test message queued as delivery msg_" in queued.output
    missing = run_as_admin("notifications", "channel", "987654")
    assert missing.exit_code == 3 and "987654" in missing.output


def test_notifications_are_typed_models_keeping_the_apis_data(live_server, admin):
    import asyncio

    from taskcenter.client import AsyncClient
    from tests.factories import (
        make_channel,
        make_delivery,
        make_delivery_try,
        make_event,
        make_rule,
    )

    pager = make_channel("ops pager", url_hint="https://hooks.example.com", open_to_all=True)
    mail = make_channel("ops mail", kind="email", addresses="a@example.com, b@example.com")
    rule = make_rule(
        admin, personal=False, channel=pager, events=["task.failed"], job="Back up cluster"
    )
    event = make_event("task-1", "task.failed")
    dead = make_delivery(
        pager, status="DEAD", rule=rule, event=event, attempts=1, last_code=500, last_error="boom"
    )
    make_delivery_try(dead, ok=False, status_code=500, latency_ms=12, error="boom")
    delivered = [make_delivery(mail, status="DELIVERED") for _ in range(3)]
    newest_first = [d.uid for d in reversed([dead, *delivered])]
    key, secret = account_services.access_key_create(owner=admin, actor=admin)
    credentials = {"access_key_id": key.key_id, "access_key_secret": secret}

    with Client(live_server.url, retries=0, **credentials) as tc:
        channels = {c.name: c for c in tc.notifications.channels()}
        assert (channels["ops pager"].kind, channels["ops pager"].url) == (
            "webhook",
            "https://hooks.example.com",
        )
        assert channels["ops pager"].open_to_all and not channels["ops mail"].open_to_all
        assert channels["ops mail"].addresses == ["a@example.com", "b@example.com"]
        assert channels["ops mail"].url is None
        sent = tc.data("GET", "/api/v2/notifications/channels")["contents"]
        assert sorted((c.raw for c in channels.values()), key=lambda c: c["id"]) == sorted(
            sent, key=lambda c: c["id"]
        )
        one = tc.notifications.channel(mail.pk)
        assert (one.id, one.name, one.kind) == (mail.pk, "ops mail", "email")
        assert one.created_at and one.raw == tc.data(
            "GET", f"/api/v2/notifications/channels/{mail.pk}"
        )

        [listed] = tc.notifications.rules()
        shown = tc.notifications.rule(rule.pk)
        for found in (listed, shown):
            assert (found.id, found.channel_id, found.events) == (
                rule.pk,
                pager.pk,
                ["task.failed"],
            )
            assert (found.job, found.plan_id, found.cluster_id, found.task_id) == (
                "Back up cluster",
                None,
                None,
                None,
            )
            assert (found.owner, found.personal, found.enabled) == ("admin", False, True)
        assert shown.raw == tc.data("GET", f"/api/v2/notifications/rules/{rule.pk}")

        rows, page = tc.notifications.deliveries(size=3)
        assert [d.id for d in rows] == newest_first[:3]
        assert (page["totalElements"], page["totalPages"], page["number"]) == (4, 2, 1)
        [failed], _ = tc.notifications.deliveries(status="DEAD", channel=pager.pk)
        assert (failed.id, failed.channel_id, failed.rule_id) == (dead.uid, pager.pk, rule.pk)
        assert (failed.event_id, failed.type, failed.kind) == (event.uid, "task.failed", "event")
        assert (failed.status, failed.attempts, failed.last_code, failed.last_error) == (
            "DEAD",
            1,
            500,
            "boom",
        )
        assert failed.next_attempt_at is None and failed.created_at
        [sent_once] = failed.tries
        assert (sent_once.ok, sent_once.status_code, sent_once.latency_ms) == (False, 500, 12)
        assert sent_once.error == "boom" and sent_once.at
        sent = tc.data("GET", "/api/v2/notifications/deliveries", params={"status": "DEAD"})
        assert [failed.raw] == sent["contents"]

        assert [d.id for d in tc.notifications.iterate_deliveries(size=3)] == newest_first
        assert len(list(tc.notifications.iterate_deliveries(size=1, limit=2))) == 2

        queued = tc.notifications.test_channel(pager.pk)
        assert queued.delivery_id.startswith("msg_") and queued.status == "PENDING"
        assert queued.raw == {"deliveryId": queued.delivery_id, "status": "PENDING"}

    async def scenario() -> tuple[list, str, list]:
        async with AsyncClient(live_server.url, **credentials) as tc:
            every = [d.id async for d in tc.notifications.iterate_deliveries(size=2)]
            channel = await tc.notifications.channel(pager.pk)
            rules = await tc.notifications.rules()
            return every, channel.name, [r.id for r in rules]

    every, channel_name, rule_ids = asyncio.run(scenario())
    assert every == [queued.delivery_id, *newest_first]
    assert (channel_name, rule_ids) == ("ops pager", [rule.pk])


def test_lists_and_shows_answer_yaml_with_the_apis_data(run):
    import yaml

    task = failed_task()
    listed = yaml.safe_load(run("tasks", "list", "-o", "yaml").output)
    assert listed == json.loads(run("tasks", "list", "-o", "json").output)
    assert [t["id"] for t in listed] == [task.pk]
    shown = yaml.safe_load(run("tasks", "show", str(task.pk), "-o", "yaml").output)
    assert shown["id"] == task.pk and len(shown["subtasks"]) == 3
    assert yaml.safe_load(run("jobs", "list", "-o", "yaml").output)


def test_schedules_create_edit_show_and_run_now(run, no_broker):
    import yaml

    from tests.factories import NOTEBOOK_JOB

    made = run(
        "schedules", "create", "--group", "NOTEBOOK", "--key", "cli-1", "--job", NOTEBOOK_JOB,
        "-p", "notebook=7", "--cron", "0 30 2 * * ?", "--tz", "Asia/Shanghai", "-o", "json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    plan = json.loads(made.output)
    assert plan["execDetail"]["jobParams"] == {"notebook": 7}
    assert plan["planItems"][0]["cronDesc"] == "0 30 2 * * ?"
    plan_id = str(plan["id"])
    edited = run("schedules", "edit", plan_id, "--cron", "0 0 3 * * ?", "--disable", "-o", "json")
    assert edited.exit_code == 0, edited.output
    changed = json.loads(edited.output)
    assert changed["enabled"] is False
    assert [i["cronDesc"] for i in changed["planItems"]] == ["0 0 3 * * ?"]
    shown = run("schedules", "show", plan_id)
    assert "0 0 3 * * ?" in shown.output and "disabled" in shown.output
    ran = run("schedules", "run", plan_id, "-o", "yaml")
    assert ran.exit_code == 0, ran.output
    context_id = yaml.safe_load(ran.output)["contextId"]
    assert selectors.task_get(task_id=context_id).status == "RUNNING"
    after = yaml.safe_load(run("schedules", "show", plan_id, "-o", "yaml").output)
    assert [i["cronDesc"] for i in after["planItems"]] == ["0 0 3 * * ?"]  # schedule kept
    nothing = run("schedules", "edit", plan_id)
    assert nothing.exit_code == 2 and "Nothing to change" in nothing.output
    bad = run("schedules", "create", "--group", "NOTEBOOK", "--key", "cli-2", "--job",
              NOTEBOOK_JOB, "--cron", "0 61 * * * ?")  # fmt: skip
    assert bad.exit_code == 3 and "cron" in bad.output.lower() and "Traceback" not in bad.output


def test_approvals_are_listed_and_decided_from_the_command(run, client, no_broker):
    from tests.factories import APPROVAL_GATE, waiting_approval

    task = waiting_approval(release="v9")
    other = waiting_approval(release="v10")
    gate = task.subtasks.get(name=APPROVAL_GATE)
    listed = [(g.task_instance_id, g.may_decide) for g in client.approvals.list(size=1)]
    assert listed == [(task.pk, True), (other.pk, True)]
    table = run("approvals", "list")
    assert table.exit_code == 0 and str(task.pk) in table.output and "may decide" in table.output
    rows = json.loads(run("approvals", "list", "-o", "json").output)
    assert rows[0]["subtaskInstanceId"] == gate.pk and rows[0]["parameters"]["release"] == "v9"
    no_reason = run("approvals", "approve", str(task.pk), str(gate.pk))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    approved = run("approvals", "approve", str(task.pk), str(gate.pk), "--reason", "checked")
    assert approved.exit_code == 0 and "SUCCESSFUL" in approved.output, approved.output
    other_gate = other.subtasks.get(name=APPROVAL_GATE)
    rejected = run("approvals", "reject", str(other.pk), str(other_gate.pk), "--reason", "no")
    assert rejected.exit_code == 0, rejected.output
    assert "No approvals waiting." in run("approvals", "list").output


def one_line_error(result) -> str:
    """The command's error: one line on stderr, no traceback."""
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_a_refusal_names_the_option_at_fault_and_why(run, clusters, tmp_path):
    from tests.factories import NOTEBOOK_JOB

    bad_value = run("jobs", "run", "Migrate tenant", "-p", "fail_times=-1", "-p", "fail_step=x")
    assert bad_value.exit_code == 3
    said = one_line_error(bad_value)
    assert "-p fail_times: should be greater than or equal to 0" in said, said
    assert "-p fail_step: must be one of" in said and "code 10001, traceId " in said
    no_cluster = run("jobs", "run", "Migrate tenant", "--cluster", "999")
    assert no_cluster.exit_code == 3
    assert one_line_error(no_cluster).startswith(
        "Error: option --cluster: there is no cluster 999."
    )
    listed = run("tasks", "list", "--status", "LOST")
    assert one_line_error(listed).startswith("Error: option --status: ")
    cron = run("schedules", "create", "--group", "NOTEBOOK", "--key", "k1", "--job", NOTEBOOK_JOB,
               "--cron", "0 61 * * * ?")  # fmt: skip
    assert cron.exit_code == 3
    assert one_line_error(cron).startswith("Error: option --cron: "), cron.output
    # A field the command line did not give (here from --file) is named as the API names it.
    body = tmp_path / "plan.json"
    body.write_text(json.dumps({
        "entityGroup": "NOTEBOOK", "entityKey": "k2", "execDetail": {"jobClass": NOTEBOOK_JOB},
        "planItems": [{"triggerType": "CRON_JOB", "cronDesc": "0 0 3 * * ?", "timeZone": "Nowhere"}],
    }))  # fmt: skip
    from_file = run("schedules", "create", "--file", str(body))
    assert one_line_error(from_file).startswith("Error: field 'planItems[0].timeZone': ")


def test_names_are_shown_as_text_never_as_markup(run):
    """Rich reads [...] in a string as markup: a name with "[/]" would raise, one with
    "[red]" would change colour."""
    from tests.factories import chain_task

    name = "[/] nightly [bold]copy[/bold]"
    task = chain_task(["SUCCESSFUL", "FAILED"], name=name, step_names=["[red]prep", "[/x]"])
    listed = run("tasks", "list")
    assert listed.exit_code == 0, listed.output
    assert "[/] nightly" in listed.output  # the table may wrap the rest of the name
    shown = run("tasks", "show", str(task.pk))
    assert shown.exit_code == 0, shown.output
    assert name in shown.output and "[red]prep" in shown.output and "[/x]" in shown.output


def test_task_and_subtask_operations_and_an_earlier_attempts_log(run, no_broker):
    from tests.factories import running_task

    task = failed_task()
    failed = task.subtasks.get(status="FAILED")
    log_append(subtask_id=failed.pk, attempt=failed.attempt, data=b"first try broke\n")
    retried = run("subtasks", "retry", str(task.pk), str(failed.pk), "--reason", "again")
    assert retried.exit_code == 0, retried.output
    assert f"Subtask {failed.pk} " in retried.output and "READY" in retried.output
    earlier = run("tasks", "logs", str(task.pk), str(failed.pk), "--attempt", "1")
    assert earlier.exit_code == 0 and earlier.output == "first try broke\n", earlier.output
    gone = run("tasks", "logs", str(task.pk), str(failed.pk), "--attempt", "9")
    assert gone.exit_code == 3
    assert one_line_error(gone).startswith("Error: option --attempt: "), gone.output
    refused = run("subtasks", "cancel", str(task.pk), str(failed.pk), "--reason", "stop")
    assert refused.exit_code == 3  # a queued subtask is not cancelled: the server says why
    assert "not supported" in one_line_error(refused) and "code 20003" in refused.output

    other = failed_task()
    skipped = run("subtasks", "skip", str(other.pk), str(other.subtasks.get(status="FAILED").pk),
                  "--reason", "done by hand")  # fmt: skip
    assert skipped.exit_code == 0 and "SUCCESSFUL" in skipped.output, skipped.output

    third = failed_task()
    rolled = run("tasks", "rollback", str(third.pk), "--reason", "undo", "-o", "json")
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.output)["id"] == third.pk
    assert selectors.task_get(task_id=third.pk).operation == "ROLLBACK"

    running = running_task()
    timed_out = run("tasks", "wait", str(running.pk), "--timeout", "0.2")
    assert timed_out.exit_code == 2 and "still RUNNING" in timed_out.output
    sub = running.subtasks.get(status="RUNNING")
    asked = run("subtasks", "cancel", str(running.pk), str(sub.pk), "--reason", "stop")
    assert asked.exit_code == 0 and "CANCELING" in asked.output, asked.output
    running = running_task()
    stopped = run("tasks", "cancel", str(running.pk), "--reason", "wrong tenant")
    assert stopped.exit_code == 0, stopped.output
    assert running.subtasks.get(name=sub.name).status == "CANCELING", stopped.output
    again = run("tasks", "cancel", str(running.pk), "--reason", "twice")
    assert again.exit_code == 3 and one_line_error(again), again.output


def test_plans_are_disabled_enabled_run_cancelled_deleted_and_their_runs_shown(run, no_broker):
    from tests.factories import NOTEBOOK_JOB

    made = run("schedules", "create", "--group", "NOTEBOOK", "--key", "cli-ops", "--job",
               NOTEBOOK_JOB, "-p", "notebook=7", "-o", "json")  # fmt: skip
    assert made.exit_code == 0, made.output
    plan_id = str(json.loads(made.output)["id"])

    def enabled() -> bool:
        return json.loads(run("schedules", "show", plan_id, "-o", "json").output)["enabled"]

    assert run("schedules", "disable", plan_id).exit_code == 0 and enabled() is False
    assert run("schedules", "enable", plan_id).exit_code == 0 and enabled() is True
    context_id = str(json.loads(run("schedules", "run", plan_id, "-o", "json").output)["contextId"])

    listed = run("contexts", "list")
    assert (
        listed.exit_code == 0
        and context_id in listed.output
        and "NOTEBOOK/cli-ops" in listed.output
    )
    rows = json.loads(run("contexts", "list", "-o", "json").output)
    assert [str(r["id"]) for r in rows] == [context_id]
    shown = run("contexts", "show", context_id)
    assert shown.exit_code == 0 and f"{plan_id} (item " in shown.output, shown.output
    logs = json.loads(run("contexts", "logs", context_id, "-o", "json").output)
    assert {piece["subKey"] for piece in logs} == {
        str(s.pk) for s in selectors.task_get(task_id=int(context_id)).subtasks.all()
    }
    table = run("contexts", "logs", context_id)
    assert table.exit_code == 0 and f"subtask {logs[0]['subKey']}" in table.output
    results = run("contexts", "results", context_id)
    assert results.exit_code == 0 and "no result" in results.output, results.output

    assert run("schedules", "cancel", plan_id).exit_code == 0
    after = json.loads(run("contexts", "show", context_id, "-o", "json").output)
    assert after["jobStatus"] == "CANCELLED", after
    assert run("schedules", "delete", plan_id).exit_code == 0
    missing = run("schedules", "show", plan_id)
    assert missing.exit_code == 3 and plan_id in one_line_error(missing), missing.output
    no_context = run("contexts", "show", "987654")
    assert no_context.exit_code == 3 and one_line_error(no_context)


def test_basic_auth_from_the_environment(live_server, operator, tmp_path, monkeypatch):
    task = failed_task()
    monkeypatch.setenv("TASKCENTER_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.setenv("TASKCENTER_URL", live_server.url)
    monkeypatch.setenv("TASKCENTER_USERNAME", "operator")
    monkeypatch.setenv("TASKCENTER_PASSWORD", PASSWORD)
    listed = CliRunner().invoke(main, ["tasks", "list", "-o", "json"])
    assert listed.exit_code == 0, listed.output
    assert [t["id"] for t in json.loads(listed.output)] == [task.pk]
    monkeypatch.setenv("TASKCENTER_PASSWORD", "not-the-password")
    refused = CliRunner().invoke(main, ["tasks", "list"])
    assert refused.exit_code == 3
    assert "code 30004" in one_line_error(refused) and "Check the credentials" in refused.output


def test_plans_and_contexts_are_paged_through_sync_and_async(
    client, live_server, operator_key, no_broker
):
    import asyncio

    from taskcenter.client import AsyncClient
    from tests.factories import make_plan, run_now

    plans = {make_plan(f"p{i}").pk for i in range(4)}
    contexts = {run_now(f"r{i}") for i in range(3)}
    every_plan = [p.id for p in client.schedules.iterate(page_size=2)]
    assert len(every_plan) == 7 and plans <= set(every_plan)
    assert len(list(client.schedules.iterate(page_size=2, limit=3))) == 3
    assert {c.id for c in client.contexts.iterate(page_size=2)} == contexts

    async def scenario() -> tuple[list, list]:
        key_id, secret = operator_key
        async with AsyncClient(
            live_server.url, access_key_id=key_id, access_key_secret=secret
        ) as tc:
            plans_seen = [p.id async for p in tc.schedules.iterate(page_size=3)]
            runs_seen = [c.id async for c in tc.contexts.iterate(page_size=1, limit=2)]
            return plans_seen, runs_seen

    plans_seen, runs_seen = asyncio.run(scenario())
    assert plans_seen == every_plan and len(runs_seen) == 2
