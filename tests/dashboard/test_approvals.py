"""Approval gates on the pages and in the API: the pending list, the top bar's count, the
confirmation with the task's parameters, four eyes through the page and the API, and the
API's RUNNING gate with its approval object."""

from __future__ import annotations

import json

import pytest

from taskcenter.accounts import roles
from taskcenter.tasks.models import SubtaskStatus, TaskStatus
from tests.conftest import basic_client, client_for
from tests.factories import APPROVAL_GATE as GATE
from tests.factories import make_user, subtask_named, waiting_approval

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return make_user("starter", roles.MANAGER), make_user("second", roles.MANAGER)


@pytest.fixture
def waiting(people, no_broker):
    return waiting_approval(people[0], release="v2.7.1")


def test_the_pending_list_and_the_top_bar_count_follow_who_may_decide(people, waiting, viewer):
    starter, second = people
    gate = subtask_named(waiting, GATE)
    page = client_for(second).get("/approvals/").content.decode()
    assert f'data-gate="{gate.pk}"' in page and "v2.7.1" in page
    assert f'id="approve-{gate.pk}" class="btn btn-primary"' in page
    assert '1</b> <span>awaiting<span class="count-long"> your approval' in page
    own = client_for(starter).get("/approvals/").content.decode()
    assert f'data-gate="{gate.pk}"' in own  # listed, but not theirs to decide
    assert f'id="approve-{gate.pk}" class="btn" data-action="approve" aria-disabled="true"' in own
    assert "four eyes" in own and 'id="nav-approvals"' not in own
    seen_only = client_for(viewer).get("/approvals/").content.decode()
    assert f'data-gate="{gate.pk}"' in seen_only and f'id="approve-{gate.pk}"' not in seen_only
    assert 'id="nav-approvals"' not in seen_only


def test_the_empty_list_says_what_would_be_there(viewer):
    page = client_for(viewer).get("/approvals/").content.decode()
    assert "Nothing awaits an approval" in page


def test_the_confirmation_shows_the_parameters_and_the_page_decides(people, waiting):
    starter, second = people
    gate = subtask_named(waiting, GATE)
    client = client_for(second)
    dialog = client.get(
        f"/tasks/{waiting.pk}/confirm/?op=approve&subtask={gate.pk}", headers={"HX-Request": "true"}
    ).content.decode()
    assert "Parameters of task" in dialog and "v2.7.1" in dialog and "required" in dialog
    refused = client_for(starter).get(
        f"/tasks/{waiting.pk}/confirm/?op=approve&subtask={gate.pk}", headers={"HX-Request": "true"}
    )
    assert "four eyes" in refused.content.decode()
    url = f"/tasks/{waiting.pk}/subtasks/{gate.pk}/approve/"
    own = client_for(starter).post(url, {"reason": "mine"}, headers={"HX-Request": "true"})
    assert "four eyes" in own.content.decode()
    assert subtask_named(waiting, GATE).status == SubtaskStatus.RUNNING
    no_reason = client.post(url, {"reason": ""}, headers={"HX-Request": "true"})
    assert no_reason.status_code == 400
    done = client.post(url, {"reason": "release notes checked"}, headers={"HX-Request": "true"})
    assert "approved" in done.content.decode()
    assert subtask_named(waiting, GATE).status == SubtaskStatus.SUCCESSFUL


def test_the_task_page_shows_the_gate_and_what_the_next_step_waits_for(people, waiting):
    starter, second = people
    gate = subtask_named(waiting, GATE)
    deploy = subtask_named(waiting, "Deploy to the cluster")
    client = client_for(second)
    panel = client.get(
        f"/tasks/{waiting.pk}/subtasks/{gate.pk}/", headers={"HX-Request": "true"}
    ).content.decode()
    assert "Awaiting approval" in panel and 'id="op-approve"' in panel and 'id="op-reject"' in panel
    assert "not the person who started the task" in panel
    panel = client.get(
        f"/tasks/{waiting.pk}/subtasks/{deploy.pk}/", headers={"HX-Request": "true"}
    ).content.decode()
    assert "An approval: “Approve the deployment” waits for a person" in panel


def test_the_api_shows_a_waiting_gate_running_and_decides_under_four_eyes(people, waiting):
    gate = subtask_named(waiting, GATE)
    base = f"/api/v2/tasks/instances/{waiting.pk}"
    data = basic_client("second").get(base).json()["data"]
    shown = next(s for s in data["subtasks"] if s["id"] == gate.pk)
    assert shown["status"] == "RUNNING" and shown["nodeType"] == "APPROVAL_TASK"
    approval = shown["approval"]
    assert approval["waiting"] is True and approval["starterMayApprove"] is False
    assert (
        approval["onTimeout"] == "fail" and approval["expiresAt"] and approval["decision"] is None
    )
    others = [s for s in data["subtasks"] if s["id"] != gate.pk]
    assert all("approval" not in s for s in others)  # OCP's shape unchanged elsewhere

    url = f"{base}/subtasks/{gate.pk}/approve"
    body = json.dumps({"reason": "mine"})
    own = basic_client("starter").post(url, body, content_type="application/json")
    assert own.status_code == 403 and own.json()["error"]["code"] == 30014
    missing = basic_client("second").post(url, "{}", content_type="application/json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["message"]
    rejected = basic_client("second").post(
        f"{base}/subtasks/{gate.pk}/reject",
        json.dumps({"reason": "wrong window"}),
        content_type="application/json",
    )
    assert rejected.status_code == 200
    assert rejected.json()["data"]["status"] == "FAILED"
    assert rejected.json()["data"]["approval"]["decision"]["decision"] == "rejected"
    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.FAILED
    again = basic_client("second").post(url, body, content_type="application/json")
    assert again.status_code == 400 and again.json()["error"]["code"] == 20003


def test_the_top_bar_count_reads_the_gates_only_for_who_may_approve(viewer, operator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from taskcenter.accounts import access
    from taskcenter.dashboard.approvals import awaiting_count

    for user in (viewer, operator):
        access.require_view(user)  # the page's guard loads the permissions once
    with CaptureQueriesContext(connection) as seen:
        assert awaiting_count(viewer) == 0
    assert not any("tasks_subtaskinstance" in q["sql"] for q in seen.captured_queries)
    with CaptureQueriesContext(connection) as seen:  # the waiting gates, one statement
        assert awaiting_count(operator) == 0
    assert len(seen.captured_queries) == 1
