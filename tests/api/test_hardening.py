"""Access and input hardening of the API: replayed signatures, remembered Basic
credentials, strict ids and bounded bodies and filters (each a defect seen before)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client

from taskcenter.accounts import services as account_services
from taskcenter.api import authentication
from tests.api.conftest import PASSWORD, check_envelope, check_error
from tests.api.test_signature import http_date, operator_key, signed_request  # noqa: F401
from tests.conftest import basic_client
from tests.factories import failed_task

# --- Replayed signatures ---------------------------------------------------------------------


def test_a_signed_post_is_accepted_once(db, operator_key):  # noqa: F811
    task = failed_task()
    path = f"/api/v2/tasks/instances/{task.pk}/retry"
    date = http_date()
    check_envelope(signed_request(Client(), operator_key, "POST", path, date=date))
    again = signed_request(Client(), operator_key, "POST", path, date=date)
    assert "replay" in check_error(again, 401, 30004)["message"]
    assert task.audit_entries.filter(action="RETRY").count() == 1


def test_a_signed_get_may_be_repeated(db, operator_key):  # noqa: F811
    date = http_date()
    for _ in range(2):
        check_envelope(
            signed_request(Client(), operator_key, "GET", "/api/v2/tasks/instances", date=date)
        )


# --- Remembered Basic credentials ------------------------------------------------------------


@pytest.fixture
def counted_hashing(settings, monkeypatch):
    """Count full password checks (MD5 hasher, as the API tests use)."""
    authentication.verified_credentials.clear()
    checks = []
    real_verify = MD5PasswordHasher.verify

    def verify(self, password, encoded):
        checks.append(password)
        return real_verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", verify)
    return checks


def test_basic_credentials_are_hashed_once_then_remembered(operator, counted_hashing):
    client = basic_client("operator")
    for _ in range(5):
        check_envelope(client.get("/api/v2/tasks/instances"))
    assert len(counted_hashing) == 1


def test_a_wrong_password_is_never_taken_from_the_cache(operator, counted_hashing):
    check_envelope(basic_client("operator").get("/api/v2/tasks/instances"))
    assert basic_client("operator", "wrong").get("/api/v2/tasks/instances").status_code == 401


def test_a_password_change_drops_remembered_credentials(operator, counted_hashing):
    check_envelope(basic_client("operator").get("/api/v2/tasks/instances"))
    account_services.user_set_password(user_id=operator.pk, password="An0ther-passw0rd!")
    assert basic_client("operator").get("/api/v2/tasks/instances").status_code == 401
    check_envelope(basic_client("operator", "An0ther-passw0rd!").get("/api/v2/tasks/instances"))


def test_deactivation_drops_remembered_credentials(operator, counted_hashing):
    check_envelope(basic_client("operator").get("/api/v2/tasks/instances"))
    account_services.user_deactivate(user_id=operator.pk)
    assert basic_client("operator").get("/api/v2/tasks/instances").status_code == 401


def test_a_throttle_holds_against_remembered_credentials(operator, counted_hashing, settings):
    settings.TASKCENTER_SIGNIN_FAILURE_LIMIT = 2
    check_envelope(basic_client("operator").get("/api/v2/tasks/instances"))
    for _ in range(2):
        assert basic_client("operator", "wrong").get("/api/v2/tasks/instances").status_code == 401
    assert basic_client("operator").get("/api/v2/tasks/instances").status_code == 429


def test_the_cache_holds_no_password(operator, counted_hashing):
    basic_client("operator").get("/api/v2/tasks/instances")
    stored = repr(authentication.verified_credentials.__dict__)
    assert PASSWORD not in stored and PASSWORD.encode().hex() not in stored


# --- Strict ids, dates, texts and bodies ------------------------------------------------------


@pytest.mark.parametrize("raw", ["%20{pk}", "{pk}%20", "+{pk}", "%EF%BC%91"])
def test_ids_are_ascii_digits_only(as_operator, raw):
    task = failed_task()
    response = as_operator.post(
        f"/api/v2/tasks/instances/{raw.format(pk=task.pk)}/retry", content_type="application/json"
    )
    assert response.status_code in (400, 404), response.content
    assert not task.audit_entries.filter(action="RETRY").exists()


def test_a_full_width_digit_is_not_an_id(as_operator):
    failed_task()  # id 1 may exist
    response = as_operator.get("/api/v2/tasks/instances/１")
    assert response.status_code in (400, 404)
    assert response.json()["successful"] is False


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("createdFrom=0001-01-01T00:00:00%2B14:00", "createdFrom"),
        ("createdTo=9999-12-31T23:59:59-14:00", "createdTo"),
        ("createdFrom=tomorrow", "createdFrom"),
        ("name=" + "x" * 60_000, "name"),
        ("keyword=" + "x" * 5_000, "keyword"),
        ("clusterId=99999999999999999999999", "clusterId"),
        ("clusterId=%EF%BC%91", "clusterId"),
    ],
)
def test_bad_list_filters_are_400_naming_the_parameter(as_viewer, query, parameter):
    response = as_viewer.get(f"/api/v2/tasks/instances?{query}")
    error = check_error(response, 400, 10001)
    assert parameter in error["message"]


def test_a_date_filter_in_range_still_works(as_viewer):
    failed_task()
    response = as_viewer.get("/api/v2/tasks/instances?createdFrom=2000-01-01T00:00:00%2B14:00")
    assert check_envelope(response)["data"]["page"]["totalElements"] == 1


def test_a_deeply_nested_body_is_a_400_and_changes_nothing(as_operator):
    task = failed_task()
    body = "[" * 100_000 + "]" * 100_000
    response = as_operator.post(
        f"/api/v2/tasks/instances/{task.pk}/retry", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    assert "deeper" in response.json()["error"]["message"]
    assert not task.audit_entries.filter(action="RETRY").exists()


def test_a_body_over_the_size_limit_is_refused(as_operator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    task = failed_task()
    body = json.dumps({"reason": "x" * 2000})
    response = as_operator.post(
        f"/api/v2/tasks/instances/{task.pk}/retry", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert not task.audit_entries.filter(action="RETRY").exists()


def test_a_flat_body_with_brackets_in_strings_is_accepted(as_operator):
    task = failed_task()
    body = json.dumps({"reason": "[[[[" * 100})
    response = as_operator.post(
        f"/api/v2/tasks/instances/{task.pk}/retry", body, content_type="application/json"
    )
    check_envelope(response)


def test_the_schema_documents_the_time_range_and_id_minimums(as_viewer):
    document = json.loads(Client().get("/api/schema?format=json").content)
    listing = document["paths"]["/api/v2/tasks/instances"]["get"]["parameters"]
    names = {p["name"]: p for p in listing}
    # An ISO 8601 date-time, or nothing (an empty value is no filter).
    formats = [choice.get("format") for choice in names["createdFrom"]["schema"]["anyOf"]]
    assert "date-time" in formats
    assert "createdTo" in names
    detail = document["paths"]["/api/v2/tasks/instances/{taskInstanceId}"]["get"]["parameters"]
    assert detail[0]["schema"]["minimum"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_replay_racing_the_original_is_refused(operator):
    """Two copies of one signed POST at the same moment (separate connections, as separate
    web processes would be): the unique digest lets exactly one through."""
    from tests.accounts.test_throttle import run_concurrently

    key, secret = account_services.access_key_create(owner=operator, actor=operator)
    task = failed_task()
    path, date = f"/api/v2/tasks/instances/{task.pk}/retry", http_date()

    def send(_index: int) -> str:
        response = signed_request(Client(), (key.key_id, secret), "POST", path, date=date)
        return str(response.status_code)

    assert sorted(run_concurrently(2, send)) == ["200", "401"]
    assert task.audit_entries.filter(action="RETRY").count() == 1
