"""Fixtures for the API tests: clients per persona, task factories, envelope checks.

Tasks are built row by row here (test set-up, not a status change in the product), so a
test gets the exact state it needs without running an engine; the contract tests also
run real tasks through the engine in-process.
"""

from __future__ import annotations

import base64
import re

import pytest
from django.test import Client

from taskcenter.tasks.models import (
    Cluster,
    SubtaskInstance,
    TaskInstance,
    TaskStatus,
    Tenant,
)
from tests.conftest import make_user

PASSWORD = "Pa55word!long"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?[+-]\d\d:\d\d$")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Basic authentication checks the password on every request; PBKDF2's million rounds
    # would make the permission matrix take minutes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Record the attempts the API's operations enqueue instead of sending them."""
    from taskcenter.celery import app
    from taskcenter.engine import dispatch

    sent: list[tuple[int, int]] = []
    real_send = dispatch._send

    def send(subtask_id: int, attempt: int, producer=None) -> None:
        if app.conf.task_always_eager:  # the eager_engine fixture runs attempts in-process
            real_send(subtask_id, attempt)
        else:
            sent.append((subtask_id, attempt))

    monkeypatch.setattr(dispatch, "_send", send)
    return sent


def basic_client(username: str | None, password: str = PASSWORD, **defaults) -> Client:
    client = Client(**defaults)
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        client.defaults["HTTP_AUTHORIZATION"] = f"Basic {token}"
    return client


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


# --- Factories -------------------------------------------------------------------------------------


def make_cluster_and_tenant() -> tuple[Cluster, Tenant]:
    cluster, _ = Cluster.objects.get_or_create(
        name="meta", defaults={"ob_cluster_id": 1001, "type": Cluster.Type.PRIMARY}
    )
    tenant, _ = Tenant.objects.get_or_create(
        cluster=cluster, name="sys", defaults={"ob_tenant_id": 1, "mode": Tenant.Mode.MYSQL}
    )
    return cluster, tenant


def make_task(
    subtask_statuses: list[str],
    *,
    status: str = TaskStatus.FAILED,
    name: str = "Migrate tenant",
    creator=None,
    with_tenant: bool = True,
    with_creator: bool = True,
    prohibit: tuple[int, ...] = (),
) -> TaskInstance:
    """A task whose subtasks form a chain with the given statuses (already 'run' ones
    have start times, so rollback sees them as started)."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    cluster, tenant = make_cluster_and_tenant() if with_tenant else (None, None)
    if creator is None and with_creator:
        creator, _ = User.objects.get_or_create(username="task-owner")
    now = timezone.now()
    task = TaskInstance.objects.create(
        name=name,
        cluster=cluster,
        tenant=tenant,
        creator=creator,
        status=status,
        start_time=now,
        finish_time=None if status == TaskStatus.RUNNING else now,
        executor="127.0.0.1",
        subtask_total=len(subtask_statuses),
    )
    rows = []
    for index, sub_status in enumerate(subtask_statuses):
        started = sub_status != "PENDING"
        rows.append(
            SubtaskInstance.objects.create(
                task=task,
                name=f"step {index}",
                series_id=index,
                description=f"Step number {index}",
                status=sub_status,
                node_type="PYTHON_TASK",
                run_time=1 if started else 0,
                attempt=1 if started else 0,
                executor="127.0.0.1" if started else "",
                start_time=now if started else None,
                finish_time=now if sub_status in ("SUCCESSFUL", "FAILED") else None,
                heartbeat_at=now if sub_status == "RUNNING" else None,
                prohibit_rollback=index in prohibit,
                action={"callable": "demo.noop", "kwargs": {}},
            )
        )
    for before, after in zip(rows, rows[1:], strict=False):
        before.downstream_ids = [after.pk]
        after.upstream_ids = [before.pk]
    SubtaskInstance.objects.bulk_update(rows, ["upstream_ids", "downstream_ids"])
    return task


def failed_task(**kwargs) -> TaskInstance:
    return make_task(["SUCCESSFUL", "FAILED", "PENDING"], **kwargs)


def running_task(**kwargs) -> TaskInstance:
    return make_task(["SUCCESSFUL", "RUNNING", "PENDING"], status=TaskStatus.RUNNING, **kwargs)


def first_subtask_with(task: TaskInstance, status: str) -> SubtaskInstance:
    return task.subtasks.filter(status=status).order_by("series_id").first()


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
