"""OCP access-key signatures, built here from the documented string to sign.

The signing code below is written from docs/api.md (and OCP's description), not
imported from the server, so the two implementations check each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from taskcenter.accounts import services as account_services
from taskcenter.accounts.models import AccessKey
from taskcenter.core.errors import NotPermitted
from taskcenter.tasks.models import AuditEntry, TaskInstance
from tests.api.conftest import check_envelope, check_error
from tests.factories import failed_task

HOST = "testserver:8000"


def http_date(delta: timedelta = timedelta(0)) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


def signature(secret: str, string_to_sign: str) -> str:
    mac = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signed_request(
    client: Client,
    key: tuple[str, str],
    method: str,
    path_and_query: str,
    *,
    body: bytes = b"",
    content_type: str = "",
    date: str | None = None,
    ocp_headers: dict[str, str] | None = None,
    sign_body: bytes | None = None,
    sign_path: str | None = None,
    secret: str | None = None,
    extra_headers: dict[str, str] | None = None,
):
    """Sign as an OCP client does, then send (optionally something else than was signed)."""
    key_id, key_secret = key
    date = http_date() if date is None else date
    signed_body = body if sign_body is None else sign_body
    md5 = hashlib.md5(signed_body).hexdigest().upper() if signed_body else ""
    ocp = "\n".join(
        f"{name}:{value}"
        for name, value in sorted((k.lower(), v.strip()) for k, v in (ocp_headers or {}).items())
    )
    string_to_sign = "\n".join(
        [method, md5, content_type, date, HOST, ocp, sign_path or path_and_query]
    )
    headers = {
        "HTTP_AUTHORIZATION": f"OCP-ACCESS-KEY-HMACSHA1 {key_id}:"
        + signature(secret or key_secret, string_to_sign),
        "HTTP_HOST": HOST,
    }
    if date:
        headers["HTTP_DATE"] = date
    if content_type:  # sent even without a body, as OCP clients do
        headers["CONTENT_TYPE"] = content_type
    for name, value in {**(ocp_headers or {}), **(extra_headers or {})}.items():
        headers["HTTP_" + name.upper().replace("-", "_")] = value
    kwargs = {"content_type": content_type} if content_type else {}
    return client.generic(method, path_and_query, body, **kwargs, **headers)


@pytest.fixture
def operator_key(operator) -> tuple[str, str]:
    out = StringIO()
    call_command("create_access_key", "operator", stdout=out)
    key_id, secret = out.getvalue().strip().split(" ")
    return key_id, secret


@pytest.fixture
def viewer_key(viewer) -> tuple[str, str]:
    key, secret = account_services.access_key_create(owner=viewer, actor=viewer)
    return key.key_id, secret


# --- Accepted --------------------------------------------------------------------------------------


def test_command_prints_key_id_and_secret_on_one_line(operator):
    out = StringIO()
    call_command("create_access_key", "operator", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    key_id, secret = lines[0].split(" ")
    key = AccessKey.objects.get(key_id=key_id)
    assert key.owner == operator and key.revoked_at is None
    assert len(secret) >= 32
    assert AuditEntry.objects.filter(action="ACCESS_KEY_CREATE", target__contains=key_id).exists()


def test_secret_is_not_readable_from_a_database_dump(operator_key):
    key_id, secret = operator_key
    dump = StringIO()
    call_command("dumpdata", "accounts", "tasks.auditentry", stdout=dump)
    assert key_id in dump.getvalue()
    assert secret not in dump.getvalue()
    stored = AccessKey.objects.get(key_id=key_id).secret_encrypted
    assert secret not in stored and base64.urlsafe_b64decode(stored)  # a Fernet token


@pytest.mark.parametrize(
    "query",
    [
        "page=1&size=10&status=FAILED%2CRUNNING",  # sorted and encoded, as OCP clients send
        "status=FAILED,RUNNING&size=10",  # commas as they are
        "clusterName=meta&name=Migrate%20tenant&status=FAILED&status=RUNNING",
    ],
)
def test_signed_list_with_query_strings(db, operator_key, query):
    failed_task()
    response = signed_request(Client(), operator_key, "GET", f"/api/v2/tasks/instances?{query}")
    body = check_envelope(response)
    assert body["data"]["page"]["totalElements"] == 1


def test_signed_get_with_a_json_content_type_and_no_body(db, operator_key):
    response = signed_request(
        Client(), operator_key, "GET", "/api/v2/tasks/instances", content_type="application/json"
    )
    check_envelope(response)


def test_signed_post_without_a_body(db, operator_key):
    task = failed_task()
    response = signed_request(
        Client(), operator_key, "POST", f"/api/v2/tasks/instances/{task.pk}/retry"
    )
    assert check_envelope(response)["data"]["status"] == "RUNNING"
    assert task.audit_entries.get(action="RETRY").actor_name == "operator"


def test_signed_post_with_a_json_body(db, operator_key):
    task = failed_task()
    body = json.dumps({"reason": "disk replaced"}).encode()
    response = signed_request(
        Client(),
        operator_key,
        "POST",
        f"/api/v2/tasks/instances/{task.pk}/retry",
        body=body,
        content_type="application/json",
    )
    check_envelope(response)
    assert task.audit_entries.get(action="RETRY").reason == "disk replaced"


def test_signed_request_with_x_ocp_headers(db, operator_key):
    response = signed_request(
        Client(),
        operator_key,
        "GET",
        "/api/v2/tasks/instances?size=1",
        ocp_headers={"X-Ocp-Request-Id": "r-42", "x-ocp-client": "mcp-server", "X-OCP-A": " 1 "},
    )
    check_envelope(response)


def test_date_within_fifteen_minutes_is_accepted(db, operator_key):
    response = signed_request(
        Client(), operator_key, "GET", "/api/v2/info", date=http_date(timedelta(minutes=-14))
    )
    check_envelope(response)
    response = signed_request(
        Client(),
        operator_key,
        "GET",
        "/api/v2/tasks/instances",
        date=http_date(timedelta(minutes=14)),
    )
    check_envelope(response)
    assert AccessKey.objects.get(key_id=operator_key[0]).last_used_at is not None


def test_viewer_key_reads_but_may_not_operate(db, viewer_key):
    task = failed_task()
    check_envelope(signed_request(Client(), viewer_key, "GET", f"/api/v2/tasks/{task.pk}"))
    response = signed_request(
        Client(), viewer_key, "POST", f"/api/v2/tasks/instances/{task.pk}/retry"
    )
    check_error(response, 403, 30014)


def test_signed_request_skips_csrf(db, operator_key):
    task = failed_task()
    client = Client(enforce_csrf_checks=True)
    response = signed_request(
        client, operator_key, "POST", f"/api/v2/tasks/instances/{task.pk}/retry"
    )
    check_envelope(response)


# --- Refused ------------------------------------------------------------------------------------------


def refused(response) -> dict:
    error = check_error(response, 401, 30004)
    assert TaskInstance.objects.filter(status="RUNNING").count() == 0
    return error


@pytest.mark.parametrize("minutes", [-16, 16, -24 * 60])
def test_date_more_than_fifteen_minutes_off_is_refused(db, operator_key, minutes):
    task = failed_task()
    response = signed_request(
        Client(),
        operator_key,
        "POST",
        f"/api/v2/tasks/instances/{task.pk}/retry",
        date=http_date(timedelta(minutes=minutes)),
    )
    assert "15 minutes" in refused(response)["message"]


def test_missing_or_malformed_date_is_refused(db, operator_key):
    refused(signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances", date=""))
    refused(
        signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances", date="yesterday")
    )


def test_wrong_signature_is_refused(db, operator_key):
    task = failed_task()
    response = signed_request(
        Client(), operator_key, "POST", f"/api/v2/tasks/instances/{task.pk}/retry", secret="guess"
    )
    refused(response)


def test_changed_body_is_refused(db, operator_key):
    task = failed_task()
    audit = list(task.audit_entries.values_list("pk", flat=True))
    response = signed_request(
        Client(),
        operator_key,
        "POST",
        f"/api/v2/tasks/instances/{task.pk}/retry",
        body=b'{"reason": "tampered"}',
        sign_body=b'{"reason": "signed"}',
        content_type="application/json",
    )
    refused(response)
    assert list(task.audit_entries.values_list("pk", flat=True)) == audit  # nothing new


def test_body_added_to_a_signed_empty_post_is_refused(db, operator_key):
    task = failed_task()
    response = signed_request(
        Client(),
        operator_key,
        "POST",
        f"/api/v2/tasks/instances/{task.pk}/retry",
        body=b'{"reason": "x"}',
        sign_body=b"",
        content_type="application/json",
    )
    refused(response)


def test_changed_query_is_refused(db, operator_key):
    response = signed_request(
        Client(),
        operator_key,
        "GET",
        "/api/v2/tasks/instances?status=FAILED%2CRUNNING",
        sign_path="/api/v2/tasks/instances?status=FAILED",
    )
    refused(response)


def test_unsigned_x_ocp_header_is_refused(db, operator_key):
    response = signed_request(
        Client(),
        operator_key,
        "GET",
        "/api/v2/tasks/instances",
        extra_headers={"X-Ocp-Impersonate": "admin"},
    )
    refused(response)


def test_revoked_key_is_refused(db, operator, operator_key):
    check_envelope(signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances"))
    account_services.access_key_revoke(key_id=operator_key[0], actor=operator)
    refused(signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances"))
    assert AuditEntry.objects.filter(action="ACCESS_KEY_REVOKE").count() == 1


def test_unknown_key_and_malformed_header_are_refused(db, operator_key):
    refused(signed_request(Client(), ("AKNOSUCHKEY", "secret"), "GET", "/api/v2/tasks/instances"))
    response = Client().get(
        "/api/v2/tasks/instances",
        HTTP_AUTHORIZATION="OCP-ACCESS-KEY-HMACSHA1 missing-colon",
        HTTP_DATE=http_date(),
    )
    refused(response)


def test_key_of_an_inactive_user_is_refused(db, operator, operator_key):
    operator.is_active = False
    operator.save()
    refused(signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances"))


# --- Who may create and revoke keys ---------------------------------------------------------------------


def test_keys_are_created_and_revoked_by_their_owner_or_an_admin(db, viewer, operator, admin):
    with pytest.raises(NotPermitted):
        account_services.access_key_create(owner=viewer, actor=operator)
    key, _ = account_services.access_key_create(owner=viewer, actor=admin)
    with pytest.raises(Exception) as refused_revoke:
        account_services.access_key_revoke(key_id=key.key_id, actor=operator)
    assert refused_revoke.value.code == 10002
    account_services.access_key_revoke(key_id=key.key_id, actor=viewer)
    own, _ = account_services.access_key_create(owner=operator, actor=operator)
    account_services.access_key_revoke(key_id=own.key_id, actor=admin)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [
        ("ACCESS_KEY_CREATE", "admin"),
        ("ACCESS_KEY_REVOKE", "viewer"),
        ("ACCESS_KEY_CREATE", "operator"),
        ("ACCESS_KEY_REVOKE", "admin"),
    ]


def test_command_refuses_an_unknown_user(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("create_access_key", "nobody")


# --- Over real HTTP ----------------------------------------------------------------------------------------


def test_signed_requests_over_http(live_server, operator):
    """The Python example of docs/api.md, against a real server socket."""
    import httpx

    out = StringIO()
    call_command("create_access_key", "operator", stdout=out)
    key_id, secret = out.getvalue().split()
    task = failed_task()

    def call(method: str, path: str, body: bytes = b"", content_type: str = ""):
        date = http_date()
        host = live_server.url.removeprefix("http://")
        md5 = hashlib.md5(body).hexdigest().upper() if body else ""
        text = "\n".join([method, md5, content_type, date, host, "", path])
        headers = {
            "Date": date,
            "Authorization": f"OCP-ACCESS-KEY-HMACSHA1 {key_id}:{signature(secret, text)}",
        }
        if content_type:
            headers["Content-Type"] = content_type
        return httpx.request(method, live_server.url + path, content=body, headers=headers)

    listed = call("GET", "/api/v2/tasks/instances?page=1&size=10&status=FAILED%2CRUNNING")
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"]["page"]["totalElements"] == 1
    retried = call(
        "POST",
        f"/api/v2/tasks/instances/{task.pk}/retry",
        json.dumps({"reason": "over http"}).encode(),
        "application/json",
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["status"] == "RUNNING"
