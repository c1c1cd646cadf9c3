"""Fixtures for the API tests: clients per persona and envelope checks. Tasks come from
tests/factories.py; the contract tests also run real tasks through the engine in-process.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.conftest import basic_client
from tests.factories import make_user

PASSWORD = "Pa55word!long"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?[+-]\d\d:\d\d$")


@pytest.fixture(autouse=True)
def sends_recorded(no_broker):
    """Every API test records the attempts its operations enqueue (tests.conftest)."""
    return no_broker


@pytest.fixture
def as_viewer(viewer):
    return basic_client("viewer")


@pytest.fixture
def as_operator(operator):
    return basic_client("operator")


@pytest.fixture
def as_admin(admin):
    return basic_client("admin")


@pytest.fixture
def anonymous():
    return Client()


def persona_client(name: str) -> Client:
    """A Basic-authenticated client for a persona created on the spot ('anonymous': none)."""
    from taskcenter.accounts import roles

    role = {"viewer": roles.VIEWER, "operator": roles.MANAGER, "admin": roles.ADMIN}
    if name == "anonymous":
        return Client()
    make_user(name, role[name])
    return basic_client(name)


# --- Envelope checks ---------------------------------------------------------------------------------


ENVELOPE_TYPES = {
    "successful": bool,
    "timestamp": str,
    "duration": int,
    "status": int,
    "traceId": str,
    "server": str,
}


def check_envelope(response, status: int = 200) -> dict:
    """The body of an enveloped response, after checking the envelope itself."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    for key, kind in ENVELOPE_TYPES.items():
        assert isinstance(body[key], kind), (key, body)
    assert body["status"] == status
    assert body["successful"] is (status < 400)
    assert ISO_WITH_OFFSET.match(body["timestamp"]), body["timestamp"]
    assert body["duration"] >= 0
    assert body["traceId"] and body["traceId"] == response["X-Trace-Id"]
    if status < 400:
        assert "data" in body
    else:
        error = body["error"]
        assert set(error) >= {"code", "message", "debugMessage", "target", "subErrors"}
        assert isinstance(error["code"], int) and error["message"]
    return body


def check_error(response, status: int, code: int) -> dict:
    body = check_envelope(response, status)
    assert body["error"]["code"] == code, body
    return body["error"]
