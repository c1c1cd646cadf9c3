"""Cancel of a queued (READY) subtask and the Cancel task operation: the services, the
API (OCP's refusal kept unless asked for), permissions, and the races with a worker's
claim (compare-and-set on the attempt)."""

from __future__ import annotations

import pytest

from taskcenter.core.errors import InvalidState
from taskcenter.tasks import services, verbs
from taskcenter.tasks.models import AuditEntry, SubtaskInstance, TaskInstance
from tests.conftest import basic_client
from tests.factories import make_role, make_user, running_task, two_root_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sends_recorded(no_broker):
    """Operations enqueue on commit; these tests look at rows, not at messages."""
    return no_broker


def subtask(task: TaskInstance, name: str) -> SubtaskInstance:
    return task.subtasks.get(name=name)


def claim(sub: SubtaskInstance):
    return services.attempt_claim(subtask_id=sub.pk, attempt=sub.attempt, executor="late-worker")


# --- Services ---------------------------------------------------------------------------------


def test_a_queued_subtask_is_canceled_without_a_worker_and_a_late_claim_does_nothing():
    task = two_root_task()
    first = subtask(task, "first")
    assert first.status == "READY"
    operator = make_user("op")

    verbs.subtask_cancel(task_id=task.pk, subtask_id=first.pk, actor=operator, reason="no")

    first.refresh_from_db()
    assert (first.status, first.operation) == ("FAILED", "CANCEL")
    assert first.finish_time is not None and first.start_time is None
    row = AuditEntry.objects.get(subtask=first, action="CANCEL")
    assert (row.actor_name, row.from_status, row.to_status, row.reason) == (
        "op",
        "READY",
        "FAILED",
        "no",
    )
    assert claim(first) is None  # the message a worker takes later claims nothing
    first.refresh_from_db()
    # runTime counts the run it was queued for (made READY); nothing started it.
    assert (first.status, first.run_time, first.executor, first.start_time) == (
        "FAILED",
        1,
        "",
        None,
    )
    task.refresh_from_db()
    assert task.status == "RUNNING"  # "second" is still queued


def test_cancel_task_stops_running_and_queued_subtasks_one_audit_row_each():
    task = two_root_task()
    first, second = subtask(task, "first"), subtask(task, "second")
    assert claim(first) is not None  # first runs, second is queued

    verbs.task_cancel(task_id=task.pk, actor=make_user("op"), reason="wrong tenant")

    statuses = dict(task.subtasks.values_list("name", "status"))
    assert statuses == {"first": "CANCELING", "second": "FAILED", "after both": "PENDING"}
    assert set(task.subtasks.values_list("operation", flat=True)) >= {"CANCEL"}
    rows = AuditEntry.objects.filter(task=task, action="CANCEL").order_by("subtask_id")
    assert [(r.subtask_id, r.from_status, r.to_status, r.reason) for r in rows] == [
        (first.pk, "RUNNING", "CANCELING", "wrong tenant"),
        (second.pk, "READY", "FAILED", "wrong tenant"),
    ]
    assert claim(second) is None
    # The worker of "first" sees CANCELING and ends it; the task then ends FAILED.
    services.attempt_finish(
        subtask_id=first.pk, attempt=first.attempt, task_id=task.pk, succeeded=False
    )
    task.refresh_from_db()
    assert task.status == "FAILED"
    assert dict(task.subtasks.values_list("name", "operation"))["first"] == "CANCEL"


def test_cancel_task_of_only_queued_subtasks_ends_the_task_at_once():
    task = two_root_task()
    verbs.task_cancel(task_id=task.pk, reason="not today")
    task.refresh_from_db()
    assert task.status == "FAILED" and task.finish_time is not None
    assert AuditEntry.objects.filter(task=task, action="FINISH").exists()
    # Retry brings the canceled steps back with a new attempt.
    verbs.task_retry(task_id=task.pk)
    assert set(
        task.subtasks.filter(name__in=["first", "second"]).values_list("status", flat=True)
    ) == {"READY"}


def test_cancel_task_is_refused_when_nothing_runs_or_waits():
    task = two_root_task()
    verbs.task_cancel(task_id=task.pk)
    with pytest.raises(InvalidState):
        verbs.task_cancel(task_id=task.pk)  # FAILED now
    assert AuditEntry.objects.filter(task=task, action="CANCEL").count() == 2


def test_a_claim_that_wins_the_race_turns_the_cancel_into_a_stop_request():
    """The worker claims the attempt after the operator's view was read: the READY
    compare-and-set changes nothing, and the RUNNING one asks the worker to stop."""
    from taskcenter.tasks.verbs.cancel import _cancel_subtasks

    task = two_root_task()
    first = subtask(task, "first")  # read as READY
    assert claim(first) is not None  # ... then claimed
    assert _cancel_subtasks(task, [first], None, "race") == 1
    first.refresh_from_db()
    assert first.status == "CANCELING"
    row = AuditEntry.objects.get(subtask=first, action="CANCEL")
    assert (row.from_status, row.to_status) == ("RUNNING", "CANCELING")


def test_a_cancel_that_wins_the_race_leaves_nothing_to_claim():
    task = two_root_task()
    first = subtask(task, "first")
    verbs.subtask_cancel(task_id=task.pk, subtask_id=first.pk)
    assert claim(first) is None
    assert subtask(task, "first").status == "FAILED"


def test_a_stale_attempt_is_not_canceled():
    """A subtask read at attempt 1 that has moved to attempt 2 is left alone."""
    from taskcenter.tasks.verbs.cancel import _cancel_subtasks

    task = two_root_task()
    first = subtask(task, "first")
    SubtaskInstance.objects.filter(pk=first.pk).update(attempt=first.attempt + 1)  # by hand
    assert _cancel_subtasks(task, [first], None, "") == 0
    assert subtask(task, "first").status == "READY"


# --- API ----------------------------------------------------------------------------------------


def api_cancel(client, task, sub, query=""):
    return client.post(
        f"/api/v2/tasks/instances/{task.pk}/subtasks/{sub.pk}/cancel{query}",
        {"reason": "api"},
        content_type="application/json",
    )


def test_api_subtask_cancel_keeps_ocps_refusal_of_a_queued_subtask_unless_asked(operator):
    task = two_root_task()
    first = subtask(task, "first")
    api = basic_client(operator.get_username())

    refused = api_cancel(api, task, first)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 20003
    assert subtask(task, "first").status == "READY"

    done = api_cancel(api, task, first, "?queued=true")
    assert done.status_code == 200, done.content
    assert done.json()["data"]["status"] == "FAILED"
    assert done.json()["data"]["operation"] == "CANCEL"


def test_api_queued_flag_is_checked(operator):
    task = two_root_task()
    response = api_cancel(
        basic_client(operator.get_username()), task, subtask(task, "first"), "?queued=yes"
    )
    assert response.status_code == 400
    assert "queued" in response.json()["error"]["message"]


def test_api_running_subtask_cancel_is_unchanged(operator):
    task = running_task()
    running = task.subtasks.get(status="RUNNING")
    response = api_cancel(basic_client(operator.get_username()), task, running)
    assert response.status_code == 200 and response.json()["data"]["status"] == "CANCELING"


def test_api_cancel_task(operator):
    task = two_root_task()
    response = basic_client(operator.get_username()).post(
        f"/api/v2/tasks/instances/{task.pk}/cancel",
        {"reason": "stop it"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "FAILED"
    assert AuditEntry.objects.filter(task=task, action="CANCEL", reason="stop it").count() == 2
    again = basic_client(operator.get_username()).post(f"/api/v2/tasks/instances/{task.pk}/cancel")
    assert again.status_code == 400 and again.json()["error"]["code"] == 20003


@pytest.mark.parametrize("face", ["api", "page"])
def test_cancel_task_needs_its_own_permission(face, viewer):
    """A role that may cancel subtasks may not cancel a whole task."""

    from tests.conftest import client_for

    make_role("SUBTASK_CANCELER", "view_taskinstance", "cancel_subtaskinstance")
    user = make_user("canceler", "SUBTASK_CANCELER")
    task = two_root_task()
    for who in (user, viewer):
        if face == "api":
            response = basic_client(who.get_username()).post(
                f"/api/v2/tasks/instances/{task.pk}/cancel"
            )
            assert response.status_code == 403 and response.json()["error"]["code"] == 30014
        else:
            client = client_for(who)
            assert (
                client.get(f"/tasks/{task.pk}/confirm/", {"op": "cancel_task"}).status_code == 403
            )
            assert client.post(f"/tasks/{task.pk}/cancel/", {"reason": "x"}).status_code == 403
    assert not AuditEntry.objects.filter(task=task, action="CANCEL").exists()
    # The same role may cancel one queued subtask from the page.
    client = client_for(user)
    first = subtask(task, "first")
    assert client.post(f"/tasks/{task.pk}/subtasks/{first.pk}/cancel/", {}).status_code == 302
    assert subtask(task, "first").status == "FAILED"


def test_page_cancel_task_needs_a_reason(operator):
    from tests.conftest import client_for

    task = two_root_task()
    response = client_for(operator).post(f"/tasks/{task.pk}/cancel/", {"reason": ""})
    assert response.status_code == 400
    assert subtask(task, "first").status == "READY"
