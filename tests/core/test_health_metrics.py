"""/healthz, /readyz, /metrics, and a clear 503 while the database is down."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from taskcenter import urls
from taskcenter.engine.metrics import count_reaper_action, observe_attempt
from tests.conftest import basic_client, client_for
from tests.factories import failed_task, make_user

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_is_alive():
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_and_the_broker_answer():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_readyz_is_503_and_names_what_does_not_answer(monkeypatch):
    monkeypatch.setattr(urls, "broker_answers", lambda: False)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unavailable"}


def test_metrics_in_the_prometheus_text_format():
    failed_task()
    # Counted in the scheduler and the workers; they reach /metrics through the shared
    # multiprocess folder (a series appears once it has a sample).
    count_reaper_action("worker_lost")
    observe_attempt(succeeded=True, seconds=0.3)
    client = client_for(make_user("viewer", "TASK_VIEWER"))
    assert client.get("/tasks/").status_code == 200
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'taskcenter_tasks{status="FAILED"} 1.0' in text
    assert 'taskcenter_subtasks{status="FAILED"} 1.0' in text
    assert "taskcenter_queue_lag_seconds " in text
    assert "taskcenter_scheduler_fires_total" in text or "# HELP taskcenter_scheduler_fires" in text
    assert 'taskcenter_reaper_actions_total{action="worker_lost"}' in text
    assert 'taskcenter_subtask_duration_seconds_bucket{le="0.5",outcome="succeeded"}' in text
    # Labelled by the resolved view name, never by the raw path.
    assert 'view="dashboard:task_list"' in text
    assert "taskcenter_metrics_database_up 1.0" in text


def test_metrics_from_another_machine_are_refused_until_a_token_is_set():
    """Unset, the token leaves /metrics to this machine's own connections only."""
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert response.status_code == 403
    assert "TASKCENTER_METRICS_TOKEN" in response.content.decode()
    assert "taskcenter_tasks" not in response.content.decode()


def test_with_a_token_metrics_need_it_from_everywhere(settings):
    settings.TASKCENTER_METRICS_TOKEN = "scrape-3f9a1c"
    local, remote = Client(), Client(REMOTE_ADDR="203.0.113.9")
    assert local.get("/metrics").status_code == 401
    wrong = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-0000")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert "scrape-3f9a1c" not in wrong.content.decode()
    right = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-3f9a1c")
    assert right.status_code == 200 and "taskcenter_metrics_database_up" in right.content.decode()


def database_goes_down(monkeypatch) -> None:
    """Every statement from now on fails as with a database that stopped."""
    from django.db.backends import utils

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(utils.CursorWrapper, "execute", refuse)
    monkeypatch.setattr(utils.CursorWrapper, "executemany", refuse)


def test_a_page_answers_503_with_a_clear_message_while_the_database_is_down(monkeypatch):
    task = failed_task()
    client = client_for(make_user("viewer", "TASK_VIEWER"))
    database_goes_down(monkeypatch)
    client.raise_request_exception = False
    response = client.get(f"/tasks/{task.pk}/")
    assert response.status_code == 503
    assert b"database does not answer" in response.content
    assert response["Retry-After"] == "5"


def test_the_api_answers_a_503_envelope_while_the_database_is_down(monkeypatch):
    task = failed_task()
    make_user("viewer", "TASK_VIEWER")
    client = basic_client("viewer")
    database_goes_down(monkeypatch)
    client.raise_request_exception = False
    response = client.get(f"/api/v2/tasks/instances/{task.pk}")
    assert response.status_code == 503
    body = response.json()
    assert body["successful"] is False
    assert "database does not answer" in body["error"]["message"]


def test_an_error_outside_any_view_is_a_503_too(rf):
    try:
        raise OperationalError("the server closed the connection unexpectedly")
    except OperationalError:
        response = urls.server_error(rf.get("/tasks/"))
    assert response.status_code == 503
