"""The permission matrix: every page, API endpoint and operation for five personas.

viewer (TASK_VIEWER), manager (TASK_MANAGER), narrow (a custom role: view, retry and
cancel; no rollback, no skip), scoped (TASK_MANAGER limited to cluster alpha) and admin
(ADMIN). Two clusters each hold a failed task; the scoped operator must never see bravo's
anywhere: list, counts, detail, logs, search, creators, audit, diagnosis download.
"""

from __future__ import annotations

import re

import pytest

from taskcenter.tasks.models import SubtaskInstance
from tests.accounts.conftest import make_persona
from tests.conftest import basic_client, client_for
from tests.factories import failed_task_on, running_task_on

PERSONAS = ["viewer", "manager", "narrow", "scoped", "admin"]
OK, FORBIDDEN, MISSING = "ok", 403, 404

# What each persona may do to a task of the cluster it can see (alpha).
ALLOWED = {
    "viewer": set(),
    "manager": {"retry", "rollback", "cancel_task", "subtask_retry", "skip", "cancel"},
    "narrow": {"retry", "subtask_retry", "cancel"},
    "scoped": {"retry", "rollback", "cancel_task", "subtask_retry", "skip", "cancel"},
    "admin": {"retry", "rollback", "cancel_task", "subtask_retry", "skip", "cancel"},
}


@pytest.fixture(autouse=True)
def sends_recorded(no_broker):
    """Operations enqueue on commit; these tests look at rows, not at messages."""
    return no_broker


@pytest.fixture
def world(clusters):
    a, b = clusters
    alpha, bravo = failed_task_on(a, "Alpha resize"), failed_task_on(b, "Bravo migrate")
    # Each audit trail has a row by the system: the FINISH the services wrote.
    return {"clusters": (a, b), "alpha": alpha, "bravo": bravo}


def failed_sub(task) -> SubtaskInstance:
    return task.subtasks.get(status__in=["FAILED", "RUNNING"])


def snapshot(task) -> tuple:
    task.refresh_from_db()
    return (
        task.status,
        task.operation,
        list(task.subtasks.order_by("pk").values_list("status", "operation", "attempt")),
        task.audit_entries.count(),
    )


def user_of(persona: str, world):
    return make_persona(persona, world["clusters"])


# --- Reading: pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_task_pages(world, persona):
    client = client_for(user_of(persona, world))
    alpha, bravo = world["alpha"], world["bravo"]
    sees_bravo = persona != "scoped"
    expect_b = 200 if sees_bravo else 404

    listing = client.get("/tasks/").content.decode()
    assert "Alpha resize" in listing
    assert ("Bravo migrate" in listing) is sees_bravo
    assert ("owner-bravo" in listing) is sees_bravo  # the creators menu
    failed = re.search(r"<b>(\d+)</b> failed", listing).group(1)  # the top bar's count
    assert failed == ("2" if sees_bravo else "1")

    search = client.get("/tasks/", {"keyword": "Bravo"}).content.decode()
    assert ("Bravo migrate" in search) is sees_bravo
    search = client.get("/tasks/", {"cluster": world["clusters"][1].pk}).content.decode()
    assert ("Bravo migrate" in search) is sees_bravo

    assert client.get(f"/tasks/{alpha.pk}/").status_code == 200
    for url in (
        f"/tasks/{bravo.pk}/",
        f"/tasks/{bravo.pk}/live/",
        f"/tasks/{bravo.pk}/subtasks/{failed_sub(bravo).pk}/",
        f"/tasks/{bravo.pk}/subtasks/{failed_sub(bravo).pk}/log/",
        f"/tasks/{bravo.pk}/subtasks/{failed_sub(bravo).pk}/log/download/",
    ):
        status = client.get(url).status_code
        assert (status == 404) if not sees_bravo else (status in (200, 204, 286, 302)), url
    diagnosis = client.post(f"/tasks/{bravo.pk}/diagnosis/")
    assert diagnosis.status_code == expect_b
    if sees_bravo:
        assert diagnosis["Content-Type"] == "application/zip"

    audit = client.get("/audit/").content.decode()
    assert "Alpha resize" in audit
    assert ("Bravo migrate" in audit) is sees_bravo
    assert client.get("/audit/", {"task": bravo.pk}).status_code == 200
    assert (
        "Bravo migrate" in client.get("/audit/", {"task": bravo.pk}).content.decode()
    ) is sees_bravo


@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_and_own_pages(world, persona):
    client = client_for(user_of(persona, world))
    for url in (
        "/manage/users/",
        "/manage/users/new/",
        "/manage/roles/",
        "/manage/keys/",
        "/manage/audit/",
    ):
        assert client.get(url).status_code == (200 if persona == "admin" else 403), url
    assert client.get("/account/").status_code == 200


@pytest.mark.parametrize("persona", PERSONAS)
def test_buttons_follow_the_roles(world, persona):
    client = client_for(user_of(persona, world))
    for key in ("alpha", "bravo"):
        task = world[key]
        response = client.get(f"/tasks/{task.pk}/?subtask={failed_sub(task).pk}")
        if persona == "scoped" and key == "bravo":
            assert response.status_code == 404
            continue
        shown = set(re.findall(r'<button[^>]*data-action="(\w+)"', response.content.decode()))
        # Nothing runs: no Cancel, no Cancel task on a failed task.
        allowed = ALLOWED[persona] - {"cancel", "cancel_task"}
        assert shown == allowed, (persona, key, shown)


# --- Reading: API -----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_reads(world, persona):
    user = user_of(persona, world)
    api = basic_client(user.get_username())
    alpha, bravo = world["alpha"], world["bravo"]
    sees_bravo = persona != "scoped"

    listed = api.get("/api/v2/tasks/instances", {"size": 100}).json()["data"]
    assert {t["name"] for t in listed["contents"]} == (
        {"Alpha resize", "Bravo migrate"} if sees_bravo else {"Alpha resize"}
    )
    assert listed["page"]["totalElements"] == (2 if sees_bravo else 1)
    found = api.get("/api/v2/tasks/instances", {"keyword": "Bravo"}).json()["data"]
    assert found["page"]["totalElements"] == (1 if sees_bravo else 0)
    creators = api.get("/api/v2/tasks/instances/creators").content.decode()
    assert ("owner-bravo" in creators) is sees_bravo and "owner-alpha" in creators

    assert api.get(f"/api/v2/tasks/instances/{alpha.pk}").status_code == 200
    expect = 200 if sees_bravo else 404
    assert api.get(f"/api/v2/tasks/instances/{bravo.pk}").status_code == expect
    assert api.get(f"/api/v2/tasks/{bravo.pk}").status_code == expect
    log = api.get(f"/api/v2/tasks/instances/{bravo.pk}/subtasks/{failed_sub(bravo).pk}/log")
    assert log.status_code == expect
    diag = api.post(f"/api/v2/tasks/instances/{bravo.pk}/downloadDiagnosis")
    assert diag.status_code == expect


# --- Operations: API and pages ----------------------------------------------------------------

OPERATIONS = ["retry", "rollback", "cancel_task", "subtask_retry", "skip", "cancel"]


def _api_path(op: str, task, sub) -> str:
    base = f"/api/v2/tasks/instances/{task.pk}"
    return {
        "retry": f"{base}/retry",
        "rollback": f"{base}/rollback",
        "cancel_task": f"{base}/cancel",
        "subtask_retry": f"{base}/subtasks/{sub.pk}/retry",
        "skip": f"{base}/subtasks/{sub.pk}/skip",
        "cancel": f"{base}/subtasks/{sub.pk}/cancel",
    }[op]


def _page_path(op: str, task, sub) -> str:
    return {
        "retry": f"/tasks/{task.pk}/retry/",
        "rollback": f"/tasks/{task.pk}/rollback/",
        "cancel_task": f"/tasks/{task.pk}/cancel/",
        "subtask_retry": f"/tasks/{task.pk}/subtasks/{sub.pk}/retry/",
        "skip": f"/tasks/{task.pk}/subtasks/{sub.pk}/skip/",
        "cancel": f"/tasks/{task.pk}/subtasks/{sub.pk}/cancel/",
    }[op]


def _targets(op: str, world):
    a, b = world["clusters"]
    if op in ("cancel", "cancel_task"):
        return running_task_on(a, "Alpha running"), running_task_on(b, "Bravo running")
    return world["alpha"], world["bravo"]


def _expected(persona: str, op: str, on_bravo: bool):
    if persona == "scoped" and on_bravo:
        return MISSING
    return OK if op in ALLOWED[persona] else FORBIDDEN


@pytest.mark.parametrize("face", ["api", "page"])
@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("persona", PERSONAS)
def test_operations(world, persona, op, face):
    user = user_of(persona, world)
    for on_bravo, task in zip((False, True), _targets(op, world), strict=True):
        sub = failed_sub(task)
        before = snapshot(task)
        expected = _expected(persona, op, on_bravo)
        if face == "api":
            client = basic_client(user.get_username())
            response = client.post(
                _api_path(op, task, sub), {"reason": "matrix"}, content_type="application/json"
            )
            if expected == OK:
                assert response.status_code == 200, response.content
            else:
                assert response.status_code == expected, response.content
                code = response.json()["error"]["code"]
                assert code == (30014 if expected == FORBIDDEN else 20000)
        else:
            client = client_for(user)
            confirm = client.get(
                f"/tasks/{task.pk}/confirm/", {"op": op, "subtask": sub.pk}
            ).status_code
            response = client.post(_page_path(op, task, sub), {"reason": "matrix test"})
            if expected == OK:
                assert confirm == 200 and response.status_code == 302
            else:
                assert confirm == expected and response.status_code == expected
        if expected == OK:
            assert snapshot(task) != before
            assert task.audit_entries.filter(actor=user).exists()
        else:
            assert snapshot(task) == before  # a refusal changes nothing
