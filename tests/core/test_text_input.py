"""Input is text, not bytes: a NUL or a lone surrogate anywhere in a request is a 400 naming
where it was, before any database query (PostgreSQL refuses NUL in text: a 500 before);
ids are ASCII digits everywhere."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from taskcenter.accounts import roles
from taskcenter.core.text_input import why_bad
from taskcenter.tasks.models import AuditEntry
from tests.api.conftest import check_error
from tests.conftest import basic_client, client_for
from tests.factories import make_task, make_user

NOTEBOOK_JOB = "com.hengshi.nangaparbat.schedulejob.NotebookJob"


@pytest.fixture
def as_admin(admin, no_broker):
    return basic_client("admin")


@pytest.fixture
def as_operator(operator, no_broker):
    return basic_client("operator")


def test_the_checker_knows_nul_and_lone_surrogates():
    assert why_bad("plain text, 中文, emoji 🙂") is None
    assert "NUL" in why_bad("a\x00b")
    assert "surrogate" in why_bad("a\ud800")
    assert "surrogate" in why_bad("\udfff")


@pytest.mark.parametrize("path", ["/api/v2/tasks/instances", "/api/schedules", "/api/v2/jobs"])
def test_a_nul_in_basic_credentials_is_refused_before_any_query(db, path):
    client = Client(HTTP_AUTHORIZATION="Basic b3AAZXJhdG9yOnB3")  # "op\0erator:pw"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 400
    assert len(queries) == 0
    body = response.json()
    target = body["field"] if path.startswith("/api/schedules") else body["error"]["target"]
    assert target == "Authorization (user name)"


def test_a_nul_in_the_sign_in_form_is_refused(db):
    response = Client().post("/login/", {"username": "op\x00erator", "password": "x"})
    assert response.status_code == 400
    assert "username" in response.content.decode()


@pytest.mark.parametrize(
    "method, url, field",
    [
        ("get", "/tasks/?creator=%00", "creator"),
        ("get", "/audit/?action=%00", "action"),
        ("get", "/manage/users/?q=%00", "q"),
        ("get", "/manage/audit/?user=%00", "user"),
        ("get", "/jobs/%00/", "path"),
        ("post", "/manage/keys/AK%00/revoke/", "path"),
        ("post", "/account/keys/AK%00/revoke/", "path"),
        ("get", "/tasks/?q%00=x", "query parameter name q\\u0000"),
    ],
)
def test_a_nul_in_a_page_request_is_a_400_naming_the_field(db, method, url, field):
    client = client_for(make_user("root-admin", roles.ADMIN))
    response = getattr(client, method)(url)
    assert response.status_code == 400
    assert f"Invalid parameter '{field}'" in response.content.decode()


def _plan(**changes) -> dict:
    body = {
        "entityGroup": "NOTEBOOK",
        "entityKey": "1",
        "planItems": [
            {"triggerType": "CRON_JOB", "cronDesc": "0 * * * * ?", "cronType": "CRON"},
            {
                "triggerType": "DEPENDENCY",
                "triggerByJobs": [{"entityGroup": "PIPELINE", "entityKey": "2"}],
            },
        ],
        "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 1}},
    }
    for path, value in changes.items():
        target = body
        *parents, last = path.split("/")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return body


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"])
@pytest.mark.parametrize(
    "where, field",
    [
        ("execDetail/jobParams/notebook", "execDetail.jobParams.notebook"),
        ("entityKey", "entityKey"),
        ("planItems/1/triggerByJobs/0/entityGroup", "planItems[1].triggerByJobs[0].entityGroup"),
    ],
)
def test_a_bad_character_in_a_plan_is_a_400_naming_the_field(as_admin, bad, where, field):
    text = json.dumps(_plan(**{where: bad}))  # ensure_ascii: "\\u0000", "\\ud800"
    response = as_admin.post("/api/schedules", text, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field and field in body["msg"]
    assert not AuditEntry.objects.exists()


def test_a_lone_surrogate_in_a_cancel_is_a_400(as_admin):
    text = json.dumps({"entityGroup": "NOTEBOOK", "entityKey": "\ud800"})
    response = as_admin.post("/api/schedules/cancel", text, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "entityKey"


def test_a_nul_in_an_ocp_body_is_a_400_in_the_ocp_envelope(as_operator):
    response = as_operator.post(
        "/api/v2/jobs/demo/runs", '{"parameters": {"x\\u0000": 1}}', content_type="application/json"
    )
    assert check_error(response, 400, 10001)["target"] == "parameters.x\\u0000"


def test_an_escaped_backslash_before_u0000_is_plain_text(as_admin):
    """ "\\\\u0000" in JSON is a backslash and "u0000": text, not a NUL."""
    text = _plan(**{"execDetail/jobParams/notebook": "\\u0000"})
    response = as_admin.post("/api/schedules", json.dumps(text), content_type="application/json")
    assert response.status_code != 400 or response.json()["field"] != (
        "execDetail.jobParams.notebook"
    )


@pytest.mark.parametrize("zero", [0xFF10, 0x0660, 0x06F0, 0x0966])  # full-width, Arabic, ...
def test_a_definition_is_opened_by_ascii_digits_only(db, zero):
    definition = make_task(["SUCCESSFUL"]).definition
    client = client_for(make_user("runner", roles.MANAGER))
    assert client.get(f"/jobs/{definition.pk}/").status_code == 200
    lookalike = "".join(chr(zero + int(digit)) for digit in str(definition.pk))
    assert lookalike.isdigit() and int(lookalike) == definition.pk
    assert client.get(f"/jobs/{lookalike}/").status_code == 404
