"""The list and the detail read tuples, not model instances (selectors.TaskRow and
SubtaskRow): their JSON must be exactly the serializers' output from the models."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.api import serializers as s
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


def test_a_task_detail_is_the_same_json_from_rows_as_from_its_models(db):
    for task in (_every_field_set(), waiting_approval()):
        task = selectors.task_get(task_id=task.pk)
        from_models = s.WrappedTaskInstanceSerializer.represent(
            task, selectors.task_subtasks(task=task)
        )
        from_rows = s.WrappedTaskInstanceSerializer.represent(
            task, selectors.task_subtask_rows(task_id=task.pk)
        )
        assert _json(from_rows) == _json(from_models)
        assert any(sub["result"] for sub in from_rows["subtasks"]) or any(
            "approval" in sub for sub in from_rows["subtasks"]
        )


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
