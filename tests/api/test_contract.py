"""Contract tests: every endpoint's response, field by field, against the seed documents.

The reference shapes are the sample response of seed 002 (kept verbatim in
ocp_sample_task.json) and the field tables of seed 000; a response must have every field
they name, with the same JSON type and nesting. Extra fields are allowed (both spellings
of a field, result, retryCount, ...), missing or retyped ones are not.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from taskcenter.accounts import roles
from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import SubtaskInstance, TaskInstance
from tests.api.conftest import ISO_WITH_OFFSET, check_envelope
from tests.conftest import basic_client
from tests.factories import (
    failed_task,
    first_subtask_with,
    make_cluster_and_tenant,
    make_task,
    make_user,
    running_task,
)

SAMPLE = json.loads((Path(__file__).parent / "ocp_sample_task.json").read_text())


def shape(value):
    """The JSON type tree of a value: {"key": "string", ...}, [item shape], "integer"..."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def assert_conforms(actual, expected, path: str = "$") -> None:
    """`actual` has every field of the `expected` shape, with its type and nesting."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, sub_shape in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            assert_conforms(actual[key], sub_shape, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        if expected:
            assert actual, f"{path}: expected a non-empty array to compare items"
            for index, item in enumerate(actual):
                assert_conforms(item, expected[0], f"{path}[{index}]")
    else:
        assert shape(actual) == expected, f"{path}: expected {expected}, got {actual!r}"


SAMPLE_ENVELOPE = {key: shape(value) for key, value in SAMPLE.items() if key != "data"}
WRAPPED_TASK = shape(SAMPLE["data"])
SUBTASK = WRAPPED_TASK["subtasks"][0]

# Seed 000's tables (cluster, tenant, creator, BasicTaskInstance, BasicSubtaskInstance)
# and seed 002's tenant (obTenantId).
CLUSTER = {"id": "integer", "name": "string", "obClusterId": "integer", "type": "string"}
TENANT = {
    "id": "integer",
    "name": "string",
    "obClusterId": "integer",
    "obTenantId": "integer",
    "mode": "string",
}
CREATOR = {"id": "integer", "name": "string"}
BASIC_SUBTASK = {
    "id": "integer",
    "name": "string",
    "description": "string",
    "status": "string",
    "operation": "string",
}
BASIC_TASK = {
    "id": "integer",
    "name": "string",
    "cluster": CLUSTER,
    "tenant": TENANT,
    "creator": CREATOR,
    "status": "string",
    "startTime": "string",
    "finishTime": "string",
    "subtasks": [BASIC_SUBTASK],
}
PAGE = {"totalElements": "integer", "totalPages": "integer", "number": "integer", "size": "integer"}
# Seed 000's spellings of SubtaskInstance fields, next to the servers' spellings.
DOC_SUBTASK = {**SUBTASK, "paralleIdx": "integer", "downstream": ["integer"]}
WRAPPED_WITH_OBJECTS = {
    **WRAPPED_TASK,
    "cluster": CLUSTER,
    "tenant": TENANT,
    "tenantInfo": TENANT,
}

TASK_STATUSES = {"RUNNING", "FAILED", "SUCCESSFUL"}
SUBTASK_STATUSES = {"PENDING", "READY", "RUNNING", "CANCELING", "FAILED", "SUCCESSFUL"}


def enveloped(response, status: int = 200) -> dict:
    body = check_envelope(response, status)
    assert_conforms({k: v for k, v in body.items() if k != "data"}, SAMPLE_ENVELOPE)
    return body["data"]


TIMES = ("createTime", "startTime", "finishTime")
EDGES = ("upstreams", "downstreams", "downstream")


def check_times(data: dict, finished: bool) -> None:
    """Times are ISO-8601 with an offset; start and finish are null until they happen."""
    assert ISO_WITH_OFFSET.match(data["createTime"]), data["createTime"]
    for key in ("startTime", "finishTime"):
        if data[key] is None:
            assert key == "startTime" or not finished or data["status"] not in ("SUCCESSFUL",)
        else:
            assert ISO_WITH_OFFSET.match(data[key]), data[key]


def check_wrapped_task(data: dict, finished: bool = True) -> None:
    """The sample's fields; subtasks, edges and times are checked one by one below."""
    top = {k: v for k, v in WRAPPED_WITH_OBJECTS.items() if k not in (*TIMES, "subtasks")}
    assert_conforms(data, top)
    assert isinstance(data["subtasks"], list) and data["subtasks"]
    assert data["status"] in TASK_STATUSES
    check_times(data, finished)
    for sub in data["subtasks"]:
        check_subtask(sub)
    assert data["tenant"] == data["tenantInfo"]


def check_subtask(sub: dict) -> None:
    # Edges may legitimately be empty: compare them as arrays of integers.
    items = {k: v for k, v in DOC_SUBTASK.items() if k not in (*EDGES, *TIMES)}
    assert_conforms(sub, items)
    check_times(sub, finished=sub["status"] in ("SUCCESSFUL", "FAILED"))
    for key in EDGES:
        assert isinstance(sub[key], list) and all(isinstance(i, int) for i in sub[key]), key
    assert sub["downstream"] == sub["downstreams"]
    assert sub["paralleIdx"] == sub["parallelIdx"]
    assert sub["status"] in SUBTASK_STATUSES


# --- A real task, run by the engine in-process: detail, alias and list -----------------------------


@pytest.fixture
def reinstall_task(eager_engine):
    """The seed sample's own task, "Reinstall OCP agent", really run (shell steps)."""
    operator = make_user("operator", roles.MANAGER)
    cluster, tenant = make_cluster_and_tenant()
    task = verbs.task_start(
        definition_name="Reinstall OCP agent", creator=operator, cluster=cluster, tenant=tenant
    )
    task = selectors.task_get(task_id=task.pk)
    assert task.status == "SUCCESSFUL"
    return task


def test_detail_matches_the_seed_sample_field_by_field(reinstall_task):
    client = basic_client("operator")
    for path in (
        f"/api/v2/tasks/instances/{reinstall_task.pk}",
        f"/api/v2/tasks/{reinstall_task.pk}",
    ):
        data = enveloped(client.get(path))
        # A finished real task has every field of the sample, times included.
        assert_conforms(data, {k: v for k, v in WRAPPED_WITH_OBJECTS.items() if k != "subtasks"})
        for sub in data["subtasks"]:
            assert_conforms(sub, {k: v for k, v in DOC_SUBTASK.items() if k not in EDGES})
        check_wrapped_task(data)
        assert data["name"] == SAMPLE["data"]["name"] == "Reinstall OCP agent"
        assert [s["name"] for s in data["subtasks"]] == [
            "Prepare reinstalling OCP agent",
            "Uninstall ocp agent",
            "Install ocp agent",
            "Finish reinstalling OCP agent",
        ]
        assert [s["seriesId"] for s in data["subtasks"]] == [0, 1, 2, 3]
        assert data["taskDefinitionId"] == reinstall_task.definition_id
        assert data["creator"] == {"id": reinstall_task.creator_id, "name": "operator"}
        # The chain's edges, as in the sample: each subtask's upstream is the one before.
        ids = [s["id"] for s in data["subtasks"]]
        for before, after in zip(data["subtasks"], data["subtasks"][1:], strict=False):
            assert after["upstreams"] == [before["id"]] and before["downstreams"] == [after["id"]]
        assert data["subtasks"][-1]["downstreams"] == [] and data["subtasks"][0]["upstreams"] == []
        assert len(set(ids)) == 4


def test_list_matches_the_documented_basic_task_instance(reinstall_task):
    client = basic_client("operator")
    data = enveloped(client.get("/api/v2/tasks/instances?status=SUCCESSFUL,FAILED&size=5"))
    assert_conforms(data, {"contents": [BASIC_TASK], "page": PAGE})
    assert data["page"] == {"totalElements": 1, "totalPages": 1, "number": 1, "size": 5}
    item = data["contents"][0]
    assert item["id"] == reinstall_task.pk and item["tenantInfo"] == item["tenant"]
    assert [s["name"] for s in item["subtasks"]][0] == "Prepare reinstalling OCP agent"


def test_empty_list_keeps_the_page_shape(as_viewer):
    data = enveloped(as_viewer.get("/api/v2/tasks/instances?status=RUNNING"))
    assert data == {
        "contents": [],
        "page": {"totalElements": 0, "totalPages": 0, "number": 1, "size": 10},
    }


def test_task_without_cluster_tenant_or_creator_reports_nulls(as_viewer):
    task = make_task(["SUCCESSFUL"], with_tenant=False, with_creator=False)
    # A hand-built corner case: the services always record a definition; a row without one
    # (written by another system) must still read as OCP's -1.
    TaskInstance.objects.filter(pk=task.pk).update(definition=None)
    data = enveloped(as_viewer.get(f"/api/v2/tasks/instances/{task.pk}"))
    assert data["cluster"] is None and data["tenant"] is None and data["tenantInfo"] is None
    assert data["creator"] is None and data["taskDefinitionId"] == -1


# --- Operations --------------------------------------------------------------------------------------


def test_retry_returns_the_wrapped_task_after_the_change(eager_engine):
    operator = make_user("operator", roles.MANAGER)
    cluster, tenant = make_cluster_and_tenant()
    task = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"fail_step": "copy", "fail_times": 1, "step_seconds": 0},
        creator=operator,
        cluster=cluster,
        tenant=tenant,
    )
    assert selectors.task_get(task_id=task.pk).status == "FAILED"
    data = enveloped(basic_client("operator").post(f"/api/v2/tasks/instances/{task.pk}/retry"))
    check_wrapped_task(data)
    # The engine ran the retry in-process on commit, so the task has already finished.
    assert (data["status"], data["operation"]) == ("SUCCESSFUL", "RETRY")
    copy = next(s for s in data["subtasks"] if s["name"] == "Copy tenant data")
    assert (copy["operation"], copy["runTime"]) == ("RETRY", 2)


def test_rollback_returns_the_wrapped_task_after_the_change(
    as_operator, no_broker, django_capture_on_commit_callbacks
):
    task = failed_task()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_operator.post(f"/api/v2/tasks/instances/{task.pk}/rollback")
    data = enveloped(response)
    check_wrapped_task(data, finished=False)
    assert (data["status"], data["operation"]) == ("RUNNING", "ROLLBACK")
    failed = next(s for s in data["subtasks"] if s["name"] == "step 1")
    assert (failed["status"], failed["operation"]) == ("READY", "ROLLBACK")
    assert len(no_broker) == 1  # the failed step's rollback was enqueued


@pytest.mark.parametrize(
    ("operation", "make", "from_status", "to_status", "to_operation"),
    [
        ("retry", failed_task, "FAILED", "READY", "RETRY"),
        ("skip", failed_task, "FAILED", "SUCCESSFUL", "SKIP"),
        ("cancel", running_task, "RUNNING", "CANCELING", "CANCEL"),
    ],
)
def test_subtask_operations_return_the_subtask_instance(
    as_operator, operation, make, from_status, to_status, to_operation
):
    task = make()
    subtask = first_subtask_with(task, from_status)
    response = as_operator.post(
        f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}/{operation}"
    )
    data = enveloped(response)
    check_subtask(data)
    assert (data["id"], data["status"], data["operation"]) == (subtask.pk, to_status, to_operation)
    assert SubtaskInstance.objects.get(pk=subtask.pk).status == to_status


def test_operation_reason_is_kept_in_the_audit_trail(as_operator):
    task = failed_task()
    response = as_operator.post(
        f"/api/v2/tasks/instances/{task.pk}/retry",
        data={"reason": "network blip"},
        content_type="application/json",
    )
    enveloped(response)
    operation = task.audit_entries.get(action="RETRY")
    assert (operation.reason, operation.actor_name) == ("network blip", "operator")
    assert operation.trace_id == response.json()["traceId"]


# --- Log, creators, info, diagnosis ------------------------------------------------------------------


def test_log_returns_the_whole_log_as_the_docs_say(as_viewer):
    task = running_task()
    subtask = first_subtask_with(task, "RUNNING")
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"line one\nline two\n")
    data = enveloped(as_viewer.get(f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}/log"))
    assert_conforms(data, {"log": "string"})
    assert data["log"] == "line one\nline two\n"
    assert (data["offset"], data["nextOffset"], data["size"]) == (0, 18, 18)
    assert data["finished"] is False and data["truncated"] is False


def test_log_can_be_tailed_incrementally_from_an_offset(as_viewer):
    task = running_task()
    subtask = first_subtask_with(task, "RUNNING")
    url = f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}/log"
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"0123456789")
    first = enveloped(as_viewer.get(url, {"offset": 0, "limit": 4}))
    assert (first["log"], first["nextOffset"], first["size"]) == ("0123", 4, 10)
    rest = enveloped(as_viewer.get(url, {"offset": first["nextOffset"]}))
    assert (rest["log"], rest["nextOffset"]) == ("456789", 10)
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"abc")
    more = enveloped(as_viewer.get(url, {"offset": rest["nextOffset"]}))
    assert (more["log"], more["nextOffset"], more["finished"]) == ("abc", 13, False)
    tail = enveloped(as_viewer.get(url, {"tail": 5}))
    assert (tail["log"], tail["offset"]) == ("89abc", 8)
    done = make_task(["FAILED"])
    sub = done.subtasks.get()
    finished = enveloped(as_viewer.get(f"/api/v2/tasks/instances/{done.pk}/subtasks/{sub.pk}/log"))
    assert finished["finished"] is True and finished["log"] == ""


def test_log_of_one_attempt_is_that_attempts_text(as_operator):
    task = failed_task()
    sub = first_subtask_with(task, "FAILED")
    url = f"/api/v2/tasks/instances/{task.pk}/subtasks/{sub.pk}/log"
    services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=b"first try\n")
    enveloped(
        as_operator.post(f"{url.removesuffix('/log')}/retry", content_type="application/json")
    )
    retried = SubtaskInstance.objects.get(pk=sub.pk)
    services.log_append(subtask_id=sub.pk, attempt=retried.attempt, data=b"second try\n")
    assert enveloped(as_operator.get(url))["log"] == "first try\nsecond try\n"
    first = enveloped(as_operator.get(url, {"attempt": sub.attempt}))
    assert (first["log"], first["finished"]) == ("first try\n", True)
    second = enveloped(as_operator.get(url, {"attempt": retried.attempt}))
    assert (second["log"], second["finished"]) == ("second try\n", False)


def test_creators_lists_the_users_who_created_tasks(as_viewer, operator, admin):
    make_task(["SUCCESSFUL"], creator=operator)
    make_task(["SUCCESSFUL"], creator=admin)
    make_task(["SUCCESSFUL"], creator=operator)
    make_task(["SUCCESSFUL"], with_creator=False)
    data = enveloped(as_viewer.get("/api/v2/tasks/instances/creators"))
    assert_conforms(data, {"contents": [CREATOR]})
    assert data["contents"] == [
        {"id": admin.pk, "name": "admin"},
        {"id": operator.pk, "name": "operator"},
    ]


def test_info_answers_without_credentials(anonymous):
    data = enveloped(anonymous.get("/api/v2/info"))
    assert_conforms(
        data,
        {"name": "string", "version": "string", "buildVersion": "string", "apiVersion": "string"},
    )
    assert re.match(r"^\d+\.\d+", data["version"])


def test_download_diagnosis_has_summary_and_a_log_per_attempt(eager_engine):
    make_user("operator", roles.MANAGER)
    task = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"fail_step": "copy", "fail_times": 1, "step_seconds": 0},
    )
    client = basic_client("operator")
    enveloped(client.post(f"/api/v2/tasks/instances/{task.pk}/retry"))
    response = client.post(f"/api/v2/tasks/instances/{task.pk}/downloadDiagnosis")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"task-{task.pk}-diagnosis" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    summary = json.loads(archive.read("summary.json"))
    order = [s["name"] for s in summary["subtasks"]]
    assert order == [
        "Pre-check source and target",
        "Take a snapshot",
        "Copy tenant data",
        "Verify row counts",
        "Switch traffic to the target",
    ]
    position = {s["id"]: i for i, s in enumerate(summary["subtasks"])}
    for sub in summary["subtasks"]:  # topological: every upstream comes first
        assert all(position[u] < position[sub["id"]] for u in sub["upstreams"])
    copy_logs = sorted(n for n in names if "copy-tenant-data" in n)
    assert [n.rsplit("/", 1)[1] for n in copy_logs] == ["attempt-1.log", "attempt-2.log"]
    assert b"failed on purpose" in archive.read(copy_logs[0])
    assert len([n for n in names if n.startswith("logs/") and n.endswith(".log")]) == 6


def test_rollback_after_start_of_prohibiting_subtask_is_refused(as_operator):
    task = make_task(["SUCCESSFUL", "FAILED"], prohibit=(0,))
    body = check_envelope(as_operator.post(f"/api/v2/tasks/instances/{task.pk}/rollback"), 400)
    assert body["error"]["code"] == 20004
    assert TaskInstance.objects.get(pk=task.pk).status == "FAILED"
