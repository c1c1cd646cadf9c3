"""The permission matrix: every endpoint x (anonymous, viewer, operator, admin) x method.

Anonymous gets 401 (code 30000) wherever credentials are needed; a viewer reads but gets
403 (code 30014) on every operation; an operator (TASK_MANAGER) and an admin may do all.
Each cell builds its own tasks, so an operation always meets the state it needs and the
status says only what the permission check decided.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from taskcenter.tasks.models import SubtaskInstance, TaskInstance
from tests.api.conftest import check_envelope, persona_client
from tests.conftest import basic_client
from tests.factories import failed_task, first_subtask_with, make_role, make_user, running_task

PERSONAS = ["anonymous", "viewer", "operator", "admin"]
READ = {"anonymous": 401, "viewer": 200, "operator": 200, "admin": 200}
OPERATE = {"anonymous": 401, "viewer": 403, "operator": 200, "admin": 200}
PUBLIC = {"anonymous": 200, "viewer": 200, "operator": 200, "admin": 200}
# A method the endpoint does not have: credentials are checked first, then the method.
WRONG_METHOD = {"anonymous": 401, "viewer": 405, "operator": 405, "admin": 405}
NOT_FOUND = {"anonymous": 404, "viewer": 404, "operator": 404, "admin": 404}


def _task_url(kind: str, suffix: str = ""):
    def build():
        task = failed_task() if kind == "failed" else running_task()
        return f"/api/v2/tasks/instances/{task.pk}{suffix}"

    return build


def _subtask_url(kind: str, status: str, suffix: str):
    def build():
        task = failed_task() if kind == "failed" else running_task()
        subtask = first_subtask_with(task, status)
        return f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}{suffix}"

    return build


def _fixed(url: str):
    return lambda: url


def _alias():
    return f"/api/v2/tasks/{failed_task().pk}"


# (name, method, url builder, expected status by persona)
MATRIX = [
    ("list", "get", _fixed("/api/v2/tasks/instances"), READ),
    ("list?filters", "get", _fixed("/api/v2/tasks/instances?status=FAILED,RUNNING&size=5"), READ),
    ("creators", "get", _fixed("/api/v2/tasks/instances/creators"), READ),
    ("detail", "get", _task_url("failed"), READ),
    ("detail alias", "get", _alias, READ),
    ("subtask log", "get", _subtask_url("failed", "FAILED", "/log"), READ),
    ("download diagnosis", "post", _task_url("failed", "/downloadDiagnosis"), READ),
    ("retry", "post", _task_url("failed", "/retry"), OPERATE),
    ("rollback", "post", _task_url("failed", "/rollback"), OPERATE),
    ("subtask retry", "post", _subtask_url("failed", "FAILED", "/retry"), OPERATE),
    ("subtask skip", "post", _subtask_url("failed", "FAILED", "/skip"), OPERATE),
    ("subtask cancel", "post", _subtask_url("running", "RUNNING", "/cancel"), OPERATE),
    ("info", "get", _fixed("/api/v2/info"), PUBLIC),
    ("schema", "get", _fixed("/api/schema"), PUBLIC),
    ("api browser", "get", _fixed("/api/docs"), PUBLIC),
    # Wrong methods.
    ("list POST", "post", _fixed("/api/v2/tasks/instances"), WRONG_METHOD),
    ("list PUT", "put", _fixed("/api/v2/tasks/instances"), WRONG_METHOD),
    ("detail DELETE", "delete", _task_url("failed"), WRONG_METHOD),
    ("detail PATCH", "patch", _task_url("failed"), WRONG_METHOD),
    ("retry GET", "get", _task_url("failed", "/retry"), WRONG_METHOD),
    ("rollback GET", "get", _task_url("failed", "/rollback"), WRONG_METHOD),
    ("diagnosis GET", "get", _task_url("failed", "/downloadDiagnosis"), WRONG_METHOD),
    ("subtask retry GET", "get", _subtask_url("failed", "FAILED", "/retry"), WRONG_METHOD),
    ("subtask skip DELETE", "delete", _subtask_url("failed", "FAILED", "/skip"), WRONG_METHOD),
    ("subtask cancel GET", "get", _subtask_url("running", "RUNNING", "/cancel"), WRONG_METHOD),
    ("log POST", "post", _subtask_url("failed", "FAILED", "/log"), WRONG_METHOD),
    ("creators DELETE", "delete", _fixed("/api/v2/tasks/instances/creators"), WRONG_METHOD),
    ("list OPTIONS", "options", _fixed("/api/v2/tasks/instances"), WRONG_METHOD),
    ("info POST", "post", _fixed("/api/v2/info"), {p: 405 for p in PERSONAS}),
    # Not an endpoint at all: a JSON 404 for everyone.
    ("unknown path", "get", _fixed("/api/v2/nothing/here"), NOT_FOUND),
    ("unknown path POST", "post", _fixed("/api/v3/tasks"), NOT_FOUND),
]

ERROR_CODES = {401: 30000, 403: 30014, 404: 10002, 405: 10001}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "method", "build_url", "expected"), MATRIX, ids=[row[0] for row in MATRIX]
)
def test_permission_matrix(persona, name, method, build_url, expected):
    client = persona_client(persona)
    url = build_url()
    response = getattr(client, method)(url)
    status = expected[persona]
    assert response.status_code == status, (persona, name, response.content[:300])
    if name in ("schema", "api browser"):
        return
    if name == "download diagnosis" and status == 200:
        assert response["Content-Type"] == "application/zip"
        return
    body = check_envelope(response, status)
    if status >= 400:
        assert body["error"]["code"] == ERROR_CODES[status], body
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Basic")


def test_refused_operations_change_nothing(db):
    task = failed_task()
    audit = list(task.audit_entries.values_list("pk", flat=True))
    failed = first_subtask_with(task, "FAILED")
    client = persona_client("viewer")
    for suffix in (
        "/retry",
        "/rollback",
        f"/subtasks/{failed.pk}/retry",
        f"/subtasks/{failed.pk}/skip",
    ):
        assert client.post(f"/api/v2/tasks/instances/{task.pk}{suffix}").status_code == 403
    assert TaskInstance.objects.get(pk=task.pk).status == "FAILED"
    assert SubtaskInstance.objects.get(pk=failed.pk).status == "FAILED"
    assert list(task.audit_entries.values_list("pk", flat=True)) == audit  # nothing new


def test_a_composed_role_grants_exactly_its_operations(db):
    """One permission per operation: a group with view + skip may skip and nothing else."""
    make_role("SKIPPERS", "view_taskinstance", "skip_subtaskinstance")
    make_user("skipper", "SKIPPERS")
    client = basic_client("skipper")
    task = failed_task()
    failed = first_subtask_with(task, "FAILED")
    base = f"/api/v2/tasks/instances/{task.pk}"
    for suffix in ("/retry", "/rollback", f"/subtasks/{failed.pk}/retry"):
        assert client.post(base + suffix).status_code == 403, suffix
    running = running_task()
    sub = first_subtask_with(running, "RUNNING")
    assert (
        client.post(f"/api/v2/tasks/instances/{running.pk}/subtasks/{sub.pk}/cancel").status_code
        == 403
    )
    assert client.post(f"{base}/subtasks/{failed.pk}/skip").status_code == 200


def test_user_without_any_role_is_refused_reading(db):
    make_user("nobody")
    response = basic_client("nobody").get("/api/v2/tasks/instances")
    assert check_envelope(response, 403)["error"]["code"] == 30014


def test_wrong_password_and_inactive_user_get_401(db):
    user = make_user("viewer2", "TASK_VIEWER")
    response = basic_client("viewer2", password="wrong").get("/api/v2/tasks/instances")
    assert check_envelope(response, 401)["error"]["code"] == 30004
    user.is_active = False
    user.save()
    response = basic_client("viewer2").get("/api/v2/tasks/instances")
    assert response.status_code == 401


def test_data_migration_created_the_builtin_roles(db):
    from taskcenter.accounts import roles

    for role, names in roles.ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        have = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert set(names) <= have, role


# --- Browser sessions: CSRF on unsafe methods ---------------------------------------------------------


def test_session_post_needs_the_csrf_token(db):
    user = make_user("operator", "TASK_MANAGER")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    task = failed_task()
    url = f"/api/v2/tasks/instances/{task.pk}/retry"
    assert client.get("/api/v2/tasks/instances").status_code == 200  # reads need no token
    refused = client.post(url)
    body = check_envelope(refused, 403)
    assert "CSRF" in body["error"]["message"]
    assert TaskInstance.objects.get(pk=task.pk).status == "FAILED"
    client.get("/tasks/")  # a page with forms sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post(url, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content[:300]


def test_basic_auth_skips_csrf(db):
    make_user("operator", "TASK_MANAGER")
    client = basic_client("operator", enforce_csrf_checks=True)
    task = failed_task()
    assert client.post(f"/api/v2/tasks/instances/{task.pk}/retry").status_code == 200
