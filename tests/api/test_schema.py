"""The OpenAPI schema: valid without warnings, served with a browser page, and obeyed.

Schemathesis generates requests for every operation of the schema (at least 100 examples
each, authenticated as an admin, with ids that sometimes exist) and checks each answer:
no 5xx, a documented status code and content type, a body that matches the schema.
"""

from __future__ import annotations

import base64
from io import StringIO

import pytest
import schemathesis
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import PASSWORD
from tests.factories import failed_task, make_task, make_user, running_task

schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", get_wsgi_application())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Real ids for the path parameters, so that generated requests also reach the services.
KNOWN_IDS: dict[str, list[int]] = {"taskInstanceId": [], "subtaskInstanceId": []}


@schema.hook
def map_path_parameters(ctx, path_parameters):
    """Half of the generated ids are replaced by ids that exist."""
    if path_parameters and KNOWN_IDS["taskInstanceId"]:
        task_id = path_parameters.get("taskInstanceId")
        if isinstance(task_id, int) and task_id % 2 == 0:
            index = task_id // 2 % len(KNOWN_IDS["taskInstanceId"])
            path_parameters["taskInstanceId"] = KNOWN_IDS["taskInstanceId"][index]
            if "subtaskInstanceId" in path_parameters:
                path_parameters["subtaskInstanceId"] = KNOWN_IDS["subtaskInstanceId"][index]
    return path_parameters


@pytest.fixture
def keep_test_connection():
    """Django closes the connection after each WSGI request; the test transaction needs it
    open (django.test.Client does the same around its requests)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(db, keep_test_connection):
    make_user("schema-admin", "ADMIN")
    tasks = [failed_task(), running_task(), make_task(["SUCCESSFUL"])]
    KNOWN_IDS["taskInstanceId"] = [t.pk for t in tasks]
    KNOWN_IDS["subtaskInstanceId"] = [t.subtasks.order_by("-status").first().pk for t in tasks]
    token = base64.b64encode(f"schema-admin:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_obeys_its_schema(case, api_world):
    response = case.call(headers=api_world)
    case.validate_response(response, checks=CHECKS)


def test_schema_validates_without_warnings():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    text = out.getvalue()
    assert "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/log" in text
    assert "ocpAccessKey" in text and "basicAuth" in text


def test_schema_lists_every_endpoint(client):
    paths = client.get("/api/schema?format=json").json()["paths"]
    assert set(paths) == {
        "/api/v2/info",
        "/api/v2/tasks/instances",
        "/api/v2/tasks/instances/creators",
        "/api/v2/tasks/instances/filters",
        "/api/v2/tasks/instances/{taskInstanceId}",
        "/api/v2/tasks/{taskInstanceId}",
        "/api/v2/tasks/instances/{taskInstanceId}/retry",
        "/api/v2/tasks/instances/{taskInstanceId}/rollback",
        "/api/v2/tasks/instances/{taskInstanceId}/cancel",
        "/api/v2/tasks/instances/{taskInstanceId}/downloadDiagnosis",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/retry",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/skip",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/cancel",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/approve",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/reject",
        "/api/v2/tasks/instances/{taskInstanceId}/subtasks/{subtaskInstanceId}/log",
        "/api/v2/jobs",
        "/api/v2/jobs/{name}",
        "/api/v2/jobs/{name}/runs",
        "/api/v2/tasks/instances/bulk/retry",
        "/api/v2/tasks/instances/bulk/rollback",
        "/api/v2/tasks/instances/bulk/cancel",
        "/api/v2/tasks/instances/bulk/{bulkId}",
        "/api/v2/tasks/instances/bulk/{bulkId}/stop",
        "/api/v2/notifications/channels",
        "/api/v2/notifications/channels/{channelId}",
        "/api/v2/notifications/channels/{channelId}/test",
        "/api/v2/notifications/rules",
        "/api/v2/notifications/rules/{ruleId}",
        "/api/v2/notifications/deliveries",
    }


def test_api_browser_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema" in page
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
