"""The list and the detail read tuples, not model instances (selectors.TaskRow and
SubtaskRow): their JSON must be exactly the serializers' output from the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.api import serializers as s
from taskcenter.api.envelope import MicrosIso, iso
from taskcenter.tasks import selectors
from taskcenter.tasks.models import SubtaskInstance, TaskInstance
from tests.api.conftest import check_envelope
from tests.conftest import client_for
from tests.factories import (
    failed_task,
    failed_task_on,
    grant_scoped,
    make_cluster,
    make_task,
    make_user,
    running_task_on,
    waiting_approval,
)


def _every_field_set() -> TaskInstance:
    """A task with cluster, tenant, creator, every time (one with milliseconds, one with
    microseconds) and subtasks with results, of which one approval gate."""
    task = failed_task()
    moment = timezone.now().replace(microsecond=740_123)
    TaskInstance.objects.filter(pk=task.pk).update(
        start_time=moment, finish_time=moment + timedelta(seconds=3, microseconds=7)
    )
    SubtaskInstance.objects.filter(task=task).update(
        result={"rows": [1, 2.5, None, "ü\u2028"], "ok": True}, start_time=moment
    )
    return task


def _from_models(task_id: int) -> dict:
    """The list's dict of a task the way it was built before: model instances."""
    queryset = TaskInstance.objects.filter(pk=task_id).order_by("-id")
    rows, _ = selectors.task_page(queryset=queryset, page=1, size=1)
    return s.BasicTaskInstanceSerializer.represent(rows[0])


def _from_row(task_id: int) -> dict:
    queryset = TaskInstance.objects.filter(pk=task_id).order_by("-id")
    rows, _ = selectors.task_list_page(queryset=queryset, page=1, size=1)
    return s.BasicTaskInstanceSerializer.represent_row(rows[0])


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_a_listed_task_is_the_same_json_from_a_row_as_from_its_models(db):
    tasks = [
        _every_field_set(),
        make_task(["SUCCESSFUL", "SUCCESSFUL"], with_tenant=False, with_creator=False),
        waiting_approval(),
    ]
    for task in tasks:
        assert _json(_from_row(task.pk)) == _json(_from_models(task.pk))
    full = _from_row(tasks[0].pk)
    assert full["cluster"] and full["tenant"] and full["creator"] and full["finishTime"]
    assert full["subtasks"] and full["subtaskSuccessful"] == 1
    bare = _from_row(tasks[1].pk)
    assert (bare["cluster"], bare["tenant"], bare["creator"]) == (None, None, None)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Paris", "America/St_Johns"])
def test_a_listed_task_is_the_same_json_in_any_zone(db, zone):
    """Its times read as microseconds: at a clock change, before 1970, none at all."""
    task = make_task(["SUCCESSFUL"])
    TaskInstance.objects.filter(pk=task.pk).update(
        create_time=datetime(1969, 12, 31, 23, 59, 59, 5_000, tzinfo=UTC),
        start_time=datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC),
        finish_time=datetime(2026, 3, 29, 1, 0, 0, 120_000, tzinfo=UTC),
    )
    unstarted = make_task(["PENDING"], name="Ünïcode\u2028task")
    TaskInstance.objects.filter(pk=unstarted.pk).update(start_time=None, finish_time=None)
    with override_settings(TIME_ZONE=zone):
        for task_id in (task.pk, unstarted.pk):
            assert _json(_from_row(task_id)) == _json(_from_models(task_id))
        assert _from_row(unstarted.pk)["startTime"] is None


def _details(task_id: int) -> tuple[dict, dict]:
    """A task's detail built from its subtask rows, and from its subtask models."""
    task = selectors.task_get(task_id=task_id)
    represent = s.WrappedTaskInstanceSerializer.represent
    return (
        represent(task, selectors.task_subtask_rows(task_id=task_id)),
        represent(task, selectors.task_subtasks(task=task)),
    )


def test_a_task_detail_is_the_same_json_from_rows_as_from_its_models(db):
    for task in (_every_field_set(), waiting_approval()):
        from_rows, from_models = _details(task.pk)
        assert _json(from_rows) == _json(from_models)
        assert any(sub["result"] for sub in from_rows["subtasks"]) or any(
            "approval" in sub for sub in from_rows["subtasks"]
        )


def _odd_subtasks(task: TaskInstance) -> None:
    """The task's subtasks with what a JSON encoder and a time formatter may trip on:
    floats, non-ASCII and line separators, nulls, nested values, no result at all; times
    at a whole second, at a tenth, before 1970, in the hour a zone's clocks change, and
    none."""
    subtasks = list(SubtaskInstance.objects.filter(task=task).order_by("series_id", "pk"))
    results = [
        {"f": [1.5, -0.0, 1e300, 3.0, 0.1], "u": "é中😀\u2028\u2029\x7f", "n": None, "b": False},
        None,
        [1, "two", {"three": [3.25]}],
    ]
    times = [
        (datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC), None),  # Paris: to +02:00
        (
            datetime(2026, 10, 25, 0, 30, 0, 100_000, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        ),
        (
            datetime(2026, 10, 25, 1, 0, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 0, 0, 1, tzinfo=UTC),
        ),
    ]
    for index, sub in enumerate(subtasks):
        start, finish = times[index % len(times)]
        SubtaskInstance.objects.filter(pk=sub.pk).update(
            result=results[index % len(results)],
            start_time=start,
            finish_time=finish,
            description="línea\u2028«x»",
        )


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "Europe/Paris", "America/St_Johns"])
def test_a_task_detail_is_the_same_json_for_odd_values_in_any_zone(db, zone):
    task = make_task(["SUCCESSFUL", "FAILED", "PENDING", "PENDING"])
    _odd_subtasks(task)
    with override_settings(TIME_ZONE=zone):
        from_rows, from_models = _details(task.pk)
    assert _json(from_rows) == _json(from_models)
    assert from_rows["subtasks"][1]["result"] is None
    assert from_rows["subtasks"][1]["finishTime"] is not None
    assert from_rows["subtasks"][0]["finishTime"] is None


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Africa/Monrovia"]
)
def test_times_from_microseconds_read_as_iso_writes_them(zone):
    """MicrosIso against iso() around the year's clock changes, before 1970 and in the
    zones' first offsets (Monrovia's was -00:44:30)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    moments = [0, -1, 1, 999, 1_000, 740_000, 100_000, 59_999_999]
    for year in (1901, 1969, 2026):
        start = (datetime(year, 1, 1, tzinfo=UTC) - epoch) // timedelta(microseconds=1)
        moments += [start + step * 1_234_567_891 for step in range(0, 26_000)]
    with override_settings(TIME_ZONE=zone):
        formatted = MicrosIso()
        for micros in moments:
            assert formatted(micros) == iso(epoch + timedelta(microseconds=micros)), micros
    assert formatted(None) is None


def test_the_api_list_answers_what_the_serializer_makes_of_the_models(as_viewer):
    tasks = [_every_field_set(), make_task(["SUCCESSFUL"], with_tenant=False)]
    body = check_envelope(as_viewer.get("/api/v2/tasks/instances?size=10"))
    by_id = {item["id"]: item for item in body["data"]["contents"]}
    for task in tasks:
        assert _json(by_id[task.pk]) == _json(_from_models(task.pk))
    detail = check_envelope(as_viewer.get(f"/api/v2/tasks/instances/{tasks[0].pk}"))["data"]
    task = selectors.task_get(task_id=tasks[0].pk)
    expected = s.WrappedTaskInstanceSerializer.represent(task, selectors.task_subtasks(task=task))
    assert _json(detail) == _json(expected)


def test_a_scoped_callers_totals_count_their_clusters_tasks_only(db):
    """The list's total for status, type and cluster filters comes from TaskCount on
    PostgreSQL: the caller's cluster scope applies to it as to the rows."""
    alpha, bravo = make_cluster("alpha"), make_cluster("bravo")
    failed_task_on(alpha, "A1")
    failed_task_on(alpha, "A2")
    running_task_on(alpha, "A3")
    failed_task_on(bravo, "B1")
    scoped = make_user("scoped", roles.VIEWER)
    grant_scoped(scoped, roles.VIEWER, alpha)
    client = client_for(scoped)
    cases = {
        "": 3,
        "status=FAILED": 2,
        "status=RUNNING,FAILED&type=MANUAL": 3,
        f"clusterId={bravo.pk}": 0,
        f"clusterId={alpha.pk}&status=RUNNING": 1,
    }
    for query, expected in cases.items():
        data = check_envelope(client.get(f"/api/v2/tasks/instances?{query}"))["data"]
        assert data["page"]["totalElements"] == expected == len(data["contents"]), query
        assert {item["cluster"]["name"] for item in data["contents"]} <= {"alpha"}
    everyone = client_for(make_user("everyone", roles.VIEWER))
    data = check_envelope(everyone.get("/api/v2/tasks/instances?status=FAILED"))["data"]
    assert data["page"]["totalElements"] == 3
