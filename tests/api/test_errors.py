"""Every failure under /api/ is OCP's error envelope with a clear message, never HTML or a 500."""

from __future__ import annotations

import io
import logging

import pytest

from taskcenter.core.trace import TraceIdFilter
from tests.api.conftest import check_envelope, check_error
from tests.factories import failed_task, make_task

LIST = "/api/v2/tasks/instances"


def test_unknown_path_is_a_json_404(as_viewer, anonymous):
    for client in (as_viewer, anonymous):
        error = check_error(client.get("/api/v2/no/such/thing"), 404, 10002)
        assert "/api/v2/no/such/thing" in error["message"]
    check_error(as_viewer.delete("/api/"), 404, 10002)
    check_error(as_viewer.get("/api/v2/tasks/instances/1/subtasks"), 404, 10002)


def test_task_not_found_is_code_20000(as_viewer):
    error = check_error(as_viewer.get(f"{LIST}/987654"), 404, 20000)
    assert "987654" in error["message"]
    check_error(as_viewer.get("/api/v2/tasks/987654"), 404, 20000)
    task = failed_task()
    error = check_error(as_viewer.get(f"{LIST}/{task.pk}/subtasks/987654/log"), 404, 20000)
    assert "987654" in error["message"]


def test_subtask_of_another_task_is_not_found(as_operator):
    first, second = failed_task(), failed_task()
    foreign = second.subtasks.get(status="FAILED")
    check_error(as_operator.post(f"{LIST}/{first.pk}/subtasks/{foreign.pk}/retry"), 404, 20000)


def test_invalid_state_is_code_20003(as_operator):
    task = make_task(["SUCCESSFUL"])
    error = check_error(as_operator.post(f"{LIST}/{task.pk}/retry"), 400, 20003)
    assert "SUCCESSFUL" in error["message"]
    check_error(as_operator.post(f"{LIST}/{task.pk}/rollback"), 400, 20003)
    sub = task.subtasks.get()
    for operation in ("retry", "skip", "cancel"):
        check_error(as_operator.post(f"{LIST}/{task.pk}/subtasks/{sub.pk}/{operation}"), 400, 20003)


def test_rollback_prohibited_is_code_20004(as_operator):
    task = make_task(["SUCCESSFUL", "FAILED"], prohibit=(0,))
    check_error(as_operator.post(f"{LIST}/{task.pk}/rollback"), 400, 20004)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        (f"{LIST}/abc", "taskInstanceId"),
        (f"{LIST}/-1", "taskInstanceId"),
        (f"{LIST}/0", "taskInstanceId"),
        (f"{LIST}/1.5/retry", "taskInstanceId"),
        (f"{LIST}/99999999999999999999999", "taskInstanceId"),
        ("/api/v2/tasks/x1", "taskInstanceId"),
        (f"{LIST}/1/subtasks/abc/log", "subtaskInstanceId"),
    ],
)
def test_malformed_ids_name_the_parameter(as_operator, path, parameter):
    method = as_operator.post if path.endswith("retry") else as_operator.get
    error = check_error(method(path), 400, 10001)
    assert error["target"] == parameter and parameter in error["message"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=DONE", "status"),
        ("status=RUNNING,BOGUS", "status"),
        ("type=WEEKLY", "type"),
        ("clusterId=abc", "clusterId"),
        ("clusterId=99999999999999999999", "clusterId"),
        ("tenantId=1.5", "tenantId"),
        ("hostId=-3", "hostId"),
        ("createdFrom=yesterday", "createdFrom"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=-1", "page"),
        ("size=0", "size"),
        ("size=2001", "size"),
        ("size=ten", "size"),
        ("sort=bogus,asc", "sort"),
        ("sort=name,sideways", "sort"),
        ("name=a%00b", "name"),
        ("keyword=a%00b", "keyword"),
    ],
)
def test_bad_list_parameters_name_the_parameter(as_viewer, query, parameter):
    error = check_error(as_viewer.get(f"{LIST}?{query}"), 400, 10001)
    assert error["target"] == parameter, error
    assert f"'{parameter}'" in error["message"]


def test_good_list_parameters_are_accepted(as_viewer):
    failed_task()
    for query in (
        "status=FAILED&status=RUNNING",
        "status=FAILED%2CRUNNING",
        "sort=name,desc&sort=id,asc",
        "sort=createTime",
        "size=2000&page=1000000000",
        "keyword=99999999999999999999999",
        "keyword=%C2%B2",
        "tenantName=sys&clusterId=1",
        "creator=task-owner,admin",
        "unknownParameter=ignored",
    ):
        check_envelope(as_viewer.get(f"{LIST}?{query}"))


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("tail=0", "tail"),
        ("attempt=0", "attempt"),
        ("attempt=9", "attempt"),
    ],
)
def test_bad_log_parameters_name_the_parameter(as_viewer, query, parameter):
    task = failed_task()
    sub = task.subtasks.get(status="FAILED")
    error = check_error(
        as_viewer.get(f"{LIST}/{task.pk}/subtasks/{sub.pk}/log?{query}"), 400, 10001
    )
    assert error["target"] == parameter


def test_malformed_json_body_is_refused_and_changes_nothing(as_operator):
    task = failed_task()
    audit = list(task.audit_entries.values_list("pk", flat=True))
    response = as_operator.post(
        f"{LIST}/{task.pk}/retry", data="{not json", content_type="application/json"
    )
    error = check_error(response, 400, 10001)
    assert error["target"] == "body"
    response = as_operator.post(
        f"{LIST}/{task.pk}/retry", data="[1, 2]", content_type="application/json"
    )
    check_error(response, 400, 10001)
    response = as_operator.post(
        f"{LIST}/{task.pk}/retry", data='{"reason": ["a", "list"]}', content_type="application/json"
    )
    assert check_error(response, 400, 10001)["target"] == "reason"
    task.refresh_from_db()
    assert (
        task.status == "FAILED" and list(task.audit_entries.values_list("pk", flat=True)) == audit
    )  # nothing new


def test_unsupported_body_type_is_415(as_operator):
    task = failed_task()
    response = as_operator.post(f"{LIST}/{task.pk}/retry", data="reason", content_type="text/csv")
    check_error(response, 415, 10001)


def test_method_not_allowed_is_405_in_the_envelope(as_viewer):
    check_error(as_viewer.put(LIST), 405, 10001)
    check_error(as_viewer.options(LIST), 405, 10001)


def test_unexpected_error_is_a_500_envelope_with_the_trace_id_logged(
    as_viewer, monkeypatch, caplog
):
    def explode(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("taskcenter.tasks.selectors.task_list_with_tally", explode)
    with caplog.at_level(logging.ERROR):
        response = as_viewer.get(LIST)
    body = check_envelope(response, 500)
    assert body["error"]["code"] == 10010
    assert "fire" not in response.content.decode()  # no internals leak to the client
    assert "database on fire" in caplog.text


def test_disallowed_host_is_a_json_400(as_viewer):
    response = as_viewer.get(LIST, HTTP_HOST="evil.example.com")
    body = check_envelope(response, 400)
    assert body["error"]["code"] == 10001


def test_trace_id_is_in_the_response_and_in_the_log_lines(as_viewer):
    """The server's own id is the trace id; a caller's id is kept beside it, and one that
    is not a plain short id is refused, naming the header."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(logging.Formatter("[%(trace_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        given = as_viewer.get(LIST, HTTP_X_TRACE_ID="0bc49000675d41af")
        made = as_viewer.get(f"{LIST}/424242")
        forged = as_viewer.get(LIST, HTTP_X_TRACE_ID="bad id\nINJECTED")
        too_long = as_viewer.get(LIST, HTTP_X_TRACE_ID="a" * 65)
    finally:
        root.removeHandler(handler)
    given_id = check_envelope(given)["traceId"]
    assert given_id != "0bc49000675d41af"
    assert given["X-Trace-Id"] == given_id
    assert given["X-Caller-Trace-Id"] == "0bc49000675d41af"
    made_id = check_envelope(made, 404)["traceId"]
    for refused in (forged, too_long):
        error = check_error(refused, 400, 10001)
        assert error["target"] == "X-Trace-Id"
    lines = stream.getvalue().splitlines()
    assert any(
        line.startswith(f"[{given_id}] taskcenter.request: GET /api/v2/tasks/instances")
        and "caller trace 0bc49000675d41af" in line
        for line in lines
    )
    assert any(line.startswith(f"[{made_id}]") and "404" in line for line in lines)
    assert not any("INJECTED" in line for line in lines)


def test_audit_rows_carry_the_request_trace_id(as_operator):
    task = failed_task()
    response = as_operator.post(f"{LIST}/{task.pk}/retry", HTTP_X_TRACE_ID="trace-for-audit")
    trace_id = check_envelope(response)["traceId"]
    row = task.audit_entries.get(action="RETRY")
    assert (row.trace_id, row.caller_trace_id) == (trace_id, "trace-for-audit")
