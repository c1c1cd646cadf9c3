"""Durations that tell the truth, a task's inputs and outputs on its page, sorting by
duration (page and API), and the time zone a user chooses for the pages."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from taskcenter.demo.history import attempts_not_sent
from taskcenter.tasks import services, verbs
from taskcenter.tasks.models import SubtaskStatus, TaskDefinition
from tests.conftest import client_for
from tests.factories import drive, first_subtask_with, start, subtask_named

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))


def _element(response, element_id: str, tag: str = "dd|div|p|section") -> str:
    """The text inside the element with this id up to the first closing `tag` (its tags
    removed, spaces squeezed)."""
    body = response.content.decode()
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</({tag})>', body, re.S)
    assert match, f"no #{element_id} in the page"
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


# --- Durations ---------------------------------------------------------------------------------


def test_a_subtask_skipped_days_after_it_failed_shows_skipped_not_days(operator):
    ten_days_ago = timezone.now() - timedelta(days=10)
    with time_machine.travel(ten_days_ago, tick=False):
        task = start(creator=operator)
    with time_machine.travel(ten_days_ago + timedelta(minutes=2), tick=False):
        task = drive(task, fail={"Copy tenant data"})
    failed = first_subtask_with(task, SubtaskStatus.FAILED)
    with attempts_not_sent():
        verbs.subtask_skip(task_id=task.pk, subtask_id=failed.pk, actor=operator)
    task = drive(task)
    assert task.status == "SUCCESSFUL"

    client = client_for(operator)
    url = reverse("dashboard:task_detail", args=[task.pk])
    panel = client.get(f"{url}?subtask={failed.pk}")
    assert _element(panel, "subtask-duration") == "Skipped"

    # The log view's list says the same of the skipped row.
    listed = client.get(f"{url}?view=log&subtask={failed.pk}").content.decode()
    row = re.search(rf'data-sid="{failed.pk}".*?</li>', listed, re.S)
    assert row and "Skipped" in row.group(0) and "10d" not in row.group(0)

    # The task's own duration runs from start to finish, ten days; the page says that
    # almost all of it was spent waiting for an operator.
    header = _element(panel, "task-duration")
    assert header.startswith("10d 00h"), header
    assert "waiting for an operator" in header
    worked = re.search(r"\((.*?) working", header)
    assert worked and not worked.group(1).endswith(("d", "h")), header


def test_a_running_duration_names_its_start_for_the_page_to_tick(operator, running_task):
    client = client_for(operator)
    body = client.get(reverse("dashboard:task_detail", args=[running_task.pk])).content.decode()
    since = running_task.start_time.isoformat()
    pattern = 'id="task-duration"><span class="duration" data-since="' + since + '"'
    assert pattern in body
    listed = client.get(reverse("dashboard:task_list")).content.decode()
    row = re.search(rf'id="task-row-{running_task.pk}".*?</tr>', listed, re.S)
    assert row and f'data-since="{since}"' in row.group(0)


# --- Inputs and outputs ------------------------------------------------------------------------

TABLE = {
    "schema": [{"name": "tenant", "type": "string"}, {"name": "rows", "type": "number"}],
    "data": [["t1", 120], ["<b>t2</b>", 7]] + [[f"extra{n}", n] for n in range(40)],
}


def _io_task(operator):
    spec = {
        "description": "Checks a tenant",
        "parameters": [{"name": "tenant"}, {"name": "note"}],
        "subtasks": [
            {
                "key": "check",
                "name": "Check tenant",
                "kind": "SHELL_TASK",
                "action": {"command": "true"},
                "description": "Counts the rows of each <table>",
                "timeout": 90,
                "retryCount": 3,
            }
        ],
    }
    definition = services.definition_create_from_data(name="IO check", spec=spec)
    with attempts_not_sent():
        task = verbs.task_start(
            definition_name="IO check",
            parameters={"tenant": "<script>alert(1)</script>", "note": "x" * 5000},
            creator=operator,
        )
    sub = subtask_named(task, "Check tenant")
    claimed = services.attempt_claim(subtask_id=sub.pk, attempt=sub.attempt, executor="h")
    assert claimed is not None
    services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True, result=TABLE)
    return definition, task, sub


def test_the_task_page_shows_inputs_and_outputs_escaped(operator):
    definition, task, sub = _io_task(operator)
    response = client_for(operator).get(
        reverse("dashboard:task_detail", args=[task.pk]) + f"?subtask={sub.pk}"
    )
    body = response.content.decode()

    # The definition and its version, and the parameters (escaped; a long one cut, whole
    # behind "show all").
    assert TaskDefinition.objects.get(pk=definition.pk).version == 1
    assert "IO check" in _element(response, "task-definition")
    assert "version 1" in _element(response, "task-definition")
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'class="value-more"' in body and "x" * 5000 in body and "x" * 200 + "…" in body

    # The subtask: description, timeout, automatic retries.
    assert "Counts the rows of each &lt;table&gt;" in body
    inputs = _element(response, "subtask-inputs", "dl")
    assert "Timeout 1m 30s" in inputs and "Automatic retries 3" in inputs

    # The tabular result as a table: its columns, its rows (escaped), the first 20 shown
    # and the others one click away.
    table = re.search(r'<table class="table table-result".*?</table>', body, re.S)
    assert table
    headers = re.findall(r"<th scope=\"col\">(.*?)</th>", table.group(0))
    assert headers == ["tenant", "rows"]
    rows = re.findall(r"<tr( class=\"result-more\" hidden)?>(.*?)</tr>", table.group(0), re.S)
    assert len(rows) == 1 + 42  # the header row, then every data row
    assert "&lt;b&gt;t2&lt;/b&gt;" in rows[2][1] and "<b>t2</b>" not in body
    assert sum(1 for hidden, _ in rows if hidden) == 42 - 20
    assert "Show all 42 rows" in body


# --- Sort by duration --------------------------------------------------------------------------


def _tasks_of_durations(operator):
    """Three finished tasks of 1, 5 and 30 minutes and one running for two hours."""
    now = timezone.now()
    made = {}
    for name, minutes in (("one", 1), ("thirty", 30), ("five", 5)):
        begin = now - timedelta(hours=3)
        with time_machine.travel(begin, tick=False):
            task = start("Reinstall OCP agent", creator=operator)
        with time_machine.travel(begin + timedelta(minutes=minutes), tick=False):
            made[name] = drive(task)
    with time_machine.travel(now - timedelta(hours=2), tick=False):
        made["running"] = drive(
            start("Back up cluster", creator=operator), stop_at={"Back up data files"}
        )
    return made


def test_sort_by_duration_in_the_api_both_ways(operator):
    made = _tasks_of_durations(operator)
    client = client_for(operator)
    url = reverse("api:task-list")
    shortest_first = [made[n].pk for n in ("one", "five", "thirty", "running")]
    asc = client.get(url, {"sort": "duration,asc", "size": 50}).json()
    assert [t["id"] for t in asc["data"]["contents"]] == shortest_first
    desc = client.get(url, {"sort": "duration,desc", "size": 50}).json()
    assert [t["id"] for t in desc["data"]["contents"]] == shortest_first[::-1]

    refused = client.get(url, {"sort": "duration,sideways"})
    assert refused.status_code == 400 and "sort" in refused.json()["error"]["message"]


def test_sort_by_duration_on_the_list_page_both_ways(operator):
    made = _tasks_of_durations(operator)
    client = client_for(operator)
    url = reverse("dashboard:task_list")
    shortest_first = [made[n].pk for n in ("one", "five", "thirty", "running")]
    for direction, expected in (("asc", shortest_first), ("desc", shortest_first[::-1])):
        body = client.get(url, {"sort": f"duration,{direction}"}).content.decode()
        shown = [int(pk) for pk in re.findall(r'<tr id="task-row-(\d+)"', body)]
        assert shown == expected, direction
    # The column header sorts: longest first on the first click.
    body = client.get(url).content.decode()
    header = re.search(r'<th scope="col" class="col-duration"[^>]*><a href="([^"]+)"', body)
    assert header and "sort=duration%2Cdesc" in htmllib.unescape(header.group(1))


# --- The time zone preference ------------------------------------------------------------------


def test_the_chosen_time_zone_is_saved_and_given_to_every_page(operator):
    from taskcenter.accounts.models import Preference

    client = client_for(operator)
    page = client.get(reverse("accounts:account")).content.decode()
    assert 'name="time_zone"' in page and "data-time-zone" not in page

    response = client.post(reverse("accounts:account_time_zone"), {"time_zone": "Asia/Shanghai"})
    assert response.status_code == 302
    assert Preference.objects.get(user=operator).time_zone == "Asia/Shanghai"
    for url in (reverse("dashboard:task_list"), reverse("accounts:account")):
        assert 'data-time-zone="Asia/Shanghai"' in client.get(url).content.decode()

    refused = client.post(reverse("accounts:account_time_zone"), {"time_zone": "Mars/Olympus"})
    assert refused.status_code == 400
    assert "Mars/Olympus is not one of the available choices" in _text(refused)
    assert Preference.objects.get(user=operator).time_zone == "Asia/Shanghai"

    # Back to the browser's zone.
    client.post(reverse("accounts:account_time_zone"), {"time_zone": ""})
    assert "data-time-zone" not in client.get(reverse("dashboard:task_list")).content.decode()


# --- The words, case by case -------------------------------------------------------------------


def test_subtask_durations_by_state():
    from taskcenter.dashboard import presenters

    start = timezone.now() - timedelta(days=10)
    finish = start + timedelta(minutes=3, seconds=5)
    later = timezone.now()
    duration = presenters.subtask_duration
    assert duration("SUCCESSFUL", "EXECUTE", start, finish).text == "3m 05s"
    assert duration("SUCCESSFUL", "SKIP", start, later).text == "Skipped"
    assert duration("PENDING", "ROLLBACK_SKIP", start, later).text == "Skipped"
    assert duration("PENDING", "ROLLBACK", start, finish).text == "3m 05s"  # rolled back
    assert duration("READY", "RETRY", start, None) is presenters.NO_DURATION  # queued again
    assert duration("PENDING", "EXECUTE", None, None) is presenters.NO_DURATION
    running = duration("RUNNING", "EXECUTE", start, None)
    assert running.text == "10d 00h" and running.since == start.isoformat()


def test_results_of_every_shape_become_tables():
    from taskcenter.dashboard import presenters

    records = presenters.result_table([{"a": 1, "b": "x"}, {"a": 2, "c": None}])
    assert records and records["columns"] == ["a", "b", "c"]
    assert [[v.short for v in row] for row in records["rows"]] == [
        ["1", "x", ""],
        ["2", "", "null"],
    ]
    pairs = presenters.result_table({"rows": 3, "ok": True})
    assert pairs and [[v.short for v in row] for row in pairs["rows"]] == [
        ["rows", "3"],
        ["ok", "true"],
    ]
    listed = presenters.result_table(["a", "b"])
    assert listed and listed["columns"] == ["Value"] and listed["total"] == 2
    scalar = presenters.result_table(42)
    assert scalar and scalar["kind"] == "value" and scalar["value"].short == "42"
    big = presenters.result_table({"schema": [{"name": "n"}], "data": [[n] for n in range(900)]})
    assert big and big["total"] == 900 and big["held"] == 500 and big["clipped"]
    assert presenters.result_table(None) is None


def test_a_time_typed_without_a_zone_is_read_in_the_readers_zone_on_pages_only(operator):
    task = start("Reinstall OCP agent", creator=operator)
    # A minute after the task was created, written as a UTC wall time without a zone.
    wall = (task.create_time + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    pages, api = reverse("dashboard:task_list"), reverse("api:task-list")

    def listed(client) -> bool:
        return (
            f'id="task-row-{task.pk}"' in client.get(pages, {"createdFrom": wall}).content.decode()
        )

    utc_reader = client_for(operator)
    assert not listed(utc_reader)  # read in UTC: the task is older than that

    # The browser's zone (the page's script keeps it in the `tz` cookie): read in Shanghai,
    # that wall time is 8 hours earlier, so the task is newer than it. The field says so.
    shanghai = client_for(operator)
    shanghai.cookies["tz"] = "Asia/Shanghai"
    assert listed(shanghai)
    body = shanghai.get(pages).content.decode()
    assert 'Created from <span class="muted">(Asia/Shanghai)</span>' in body
    # The cookie exactly as the page's script leaves it in Chromium: URL-encoded.
    encoded = client_for(operator)
    encoded.cookies["tz"] = "Asia%2FShanghai"
    assert listed(encoded)
    body = encoded.get(pages).content.decode()
    assert 'Created from <span class="muted">(Asia/Shanghai)</span>' in body

    # The API reads it in the server's zone whatever the cookie says.
    ids = [t["id"] for t in shanghai.get(api, {"createdFrom": wall}).json()["data"]["contents"]]
    assert task.pk not in ids

    # A zone chosen on the account page wins over the browser's; a bogus cookie is ignored.
    from taskcenter.accounts import services as account_services

    account_services.preference_set_time_zone(user=operator, time_zone="America/New_York")
    assert "(America/New_York)" in shanghai.get(pages).content.decode()
    bogus = client_for(operator)
    bogus.cookies["tz"] = "Not/AZone"
    assert "(America/New_York)" in bogus.get(pages).content.decode()
    account_services.preference_set_time_zone(user=operator, time_zone="")
    assert "(UTC)" in bogus.get(pages).content.decode()
