"""The OpenAPI schema: valid without warnings, listing every endpoint, served with a browser
page (obeyed: tests/api/test_schemathesis.py)."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


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
        "/api/v2/approvals",
    }


def test_api_browser_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/docs?script=" in page
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
    assert "<style>" not in page and "<script>" not in page  # the CSP allows neither
    script = client.get("/api/docs?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema" in script.content.decode()
