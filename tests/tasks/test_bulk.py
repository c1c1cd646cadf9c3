"""Bulk operations: the dry run and the run agree, every task's change is the single verb's
(one audit entry each, carrying the bulk id), scope is never crossed, the cap holds, and
an operation can be followed and stopped."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from taskcenter.accounts import roles
from taskcenter.accounts.models import RoleScope
from taskcenter.tasks import enqueue, verbs
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import AuditEntry, BulkItem, BulkOperation, TaskInstance
from tests.conftest import basic_client, make_user
from tests.factories import (
    canceling_task,
    failed_task,
    failed_task_on,
    make_task,
    rolled_back_task,
    running_task,
    running_task_on,
    skipped_task,
)

BULK = "/api/v2/tasks/instances/bulk"


@pytest.fixture(autouse=True)
def bulk_runs(monkeypatch, no_broker):
    """The background runs a start sends, recorded (the test runs them with bulk_work)."""
    sent: list[tuple[str, int]] = []
    previous = enqueue.register_bulk_sender(lambda bulk_id, copies: sent.append((bulk_id, copies)))
    yield sent
    enqueue.register_bulk_sender(previous)


def every_state() -> list[TaskInstance]:
    """A task in every state the verbs tell apart."""
    return [
        failed_task(),
        running_task(),
        make_task(["SUCCESSFUL", "SUCCESSFUL"]),
        rolled_back_task(),
        skipped_task(),
        canceling_task(),
        make_task(["SUCCESSFUL", "FAILED"], prohibit=(0,)),  # rollback prohibited
        make_task(["FAILED", "PENDING"]),
    ]


def snapshot(task_ids):
    rows = TaskInstance.objects.filter(pk__in=task_ids).order_by("pk")
    return {
        row.pk: (
            row.status,
            row.operation,
            row.updated_at,
            sorted(row.subtasks.values_list("pk", "status", "operation", "attempt")),
        )
        for row in rows
    }


def post(client, operation, body):
    return client.post(f"{BULK}/{operation}", body, content_type="application/json")


@pytest.mark.parametrize(
    ("operation", "action"),
    [("retry", Action.RETRY), ("rollback", Action.ROLLBACK), ("cancel", Action.CANCEL)],
)
def test_the_dry_run_and_the_run_agree_over_every_state(operation, action, operator):
    tasks = every_state()
    ids = [task.pk for task in tasks]
    client = basic_client("operator")
    dry = post(client, operation, {"ids": ids, "dryRun": True, "reason": "night"}).json()["data"]
    assert dry["bulkId"] is None and dry["matched"] == len(ids)
    accepted = set(dry["accepted"])
    refused = {item["id"] for item in dry["refused"]}
    assert accepted | refused == set(ids) and not accepted & refused
    assert accepted, "every verb applies to some state"
    assert refused, "and is refused by another"
    before = snapshot(ids)

    answer = post(client, operation, {"ids": ids, "reason": "night"})
    assert answer.status_code == 202
    run = answer.json()["data"]
    assert set(run["accepted"]) == accepted and run["refused"] == dry["refused"]
    verbs.bulk_work(bulk_id=run["bulkId"])

    after = snapshot(ids)
    for task_id in refused:
        assert after[task_id] == before[task_id], f"refused task {task_id} changed"
    for task_id in accepted:
        assert after[task_id] != before[task_id], f"accepted task {task_id} was not done"
        entries = AuditEntry.objects.filter(task_id=task_id, bulk_id=run["bulkId"])
        assert entries.exists() and set(entries.values_list("action", flat=True)) == {action}
    progress = client.get(f"{BULK}/{run['bulkId']}").json()["data"]
    assert progress["total"] == len(accepted) == progress["done"]
    assert (progress["refused"], progress["failed"], progress["finished"]) == (0, 0, True)
    own = AuditEntry.objects.get(bulk_id=run["bulkId"], task__isnull=True)
    assert own.action == f"BULK_{operation.upper()}" and own.reason == "night"


def test_a_scoped_user_never_touches_another_clusters_task(clusters, operator):
    alpha, bravo = clusters
    mine = [failed_task_on(alpha, f"Alpha {n}") for n in range(2)]
    theirs = [failed_task_on(bravo, f"Bravo {n}") for n in range(2)]
    scoped = make_user("scoped", roles.MANAGER)
    scope = RoleScope.objects.create(user=scoped, group=Group.objects.get(name=roles.MANAGER))
    scope.clusters.set([alpha])
    client = basic_client("scoped")
    before = snapshot([t.pk for t in theirs])

    by_ids = post(client, "retry", {"ids": [t.pk for t in mine + theirs]}).json()["data"]
    assert sorted(by_ids["accepted"]) == sorted(t.pk for t in mine)
    assert {r["id"]: r["code"] for r in by_ids["refused"]} == {t.pk: 20000 for t in theirs}
    verbs.bulk_work(bulk_id=by_ids["bulkId"])

    by_filter = post(client, "retry", {"filter": {"status": "FAILED"}, "dryRun": True})
    data = by_filter.json()["data"]
    assert data["matched"] == 0 and data["accepted"] == []  # mine run again: not FAILED now
    assert snapshot([t.pk for t in theirs]) == before
    assert not BulkItem.objects.filter(task__in=theirs).exists()
    # Another cluster's operator cannot follow the scoped user's operation, an admin can.
    assert basic_client("operator").get(f"{BULK}/{by_ids['bulkId']}").status_code == 200
    make_user("other-scoped", roles.MANAGER)
    other = RoleScope.objects.create(
        user=make_user("bravo-op", roles.MANAGER), group=Group.objects.get(name=roles.MANAGER)
    )
    other.clusters.set([bravo])
    assert basic_client("bravo-op").get(f"{BULK}/{by_ids['bulkId']}").status_code == 404


def test_a_user_who_may_see_but_not_operate_a_cluster_is_refused_there(clusters):
    alpha, bravo = clusters
    a, b = failed_task_on(alpha, "A"), failed_task_on(bravo, "B")
    user = make_user("half", roles.VIEWER, roles.MANAGER)
    scope = RoleScope.objects.create(user=user, group=Group.objects.get(name=roles.MANAGER))
    scope.clusters.set([alpha])
    data = post(basic_client("half"), "retry", {"ids": [a.pk, b.pk], "dryRun": True}).json()
    assert data["data"]["accepted"] == [a.pk]
    assert [(r["id"], r["code"]) for r in data["data"]["refused"]] == [(b.pk, 30014)]


def test_the_cap_refuses_a_wider_selection_whole(operator):
    answer = post(basic_client("operator"), "retry", {"ids": list(range(1, 10_002))})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 10001 and "at most 10,000" in error["message"]
    assert not BulkOperation.objects.exists()


def test_bad_bodies_get_a_clear_400(operator):
    client = basic_client("operator")
    for body, target in [
        ({}, "ids"),
        ({"ids": [1], "filter": {}}, "ids"),
        ({"ids": "1,2"}, "ids"),
        ({"ids": []}, "ids"),
        ({"ids": [1], "dryRun": "yes"}, "dryRun"),
        ({"ids": [1], "force": True}, "force"),
        ({"filter": {"status": {"a": 1}}}, "filter.status"),
        ({"filter": {"status": "NOPE"}}, "status"),
        # A misspelt filter would select every task the list shows: refused, not ignored.
        ({"filter": {"stauts": "FAILED"}}, "filter.stauts"),
    ]:
        answer = post(client, "retry", body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["target"] == target, body


def test_a_reason_is_required_where_the_verb_asks_for_one(operator):
    task = failed_task()
    client = basic_client("operator")
    assert post(client, "rollback", {"ids": [task.pk], "dryRun": True}).status_code == 200
    answer = post(client, "rollback", {"ids": [task.pk]})
    assert answer.status_code == 400 and answer.json()["error"]["target"] == "reason"


def test_a_viewer_is_refused_whole(viewer):
    answer = post(basic_client("viewer"), "retry", {"ids": [1], "dryRun": True})
    assert answer.status_code == 403


def test_stopping_leaves_the_rest_as_it_was(operator):
    tasks = [failed_task(name=f"T{n}") for n in range(3)]
    client = basic_client("operator")
    run = post(client, "retry", {"ids": [t.pk for t in tasks]}).json()["data"]
    before = snapshot([t.pk for t in tasks])
    stopped = client.post(
        f"{BULK}/{run['bulkId']}/stop", {"reason": "wrong ones"}, content_type="application/json"
    )
    assert stopped.status_code == 200
    data = stopped.json()["data"]
    assert (data["state"], data["stopped"], data["finished"]) == ("STOPPED", 3, True)
    verbs.bulk_work(bulk_id=run["bulkId"])
    assert snapshot([t.pk for t in tasks]) == before
    again = client.post(f"{BULK}/{run['bulkId']}/stop", content_type="application/json")
    assert again.status_code == 400
    assert AuditEntry.objects.filter(bulk_id=run["bulkId"], action="BULK_STOP").count() == 1


def test_a_task_changed_after_acceptance_is_refused_in_its_turn(operator):
    task = failed_task()
    client = basic_client("operator")
    run = post(client, "retry", {"ids": [task.pk]}).json()["data"]
    verbs.task_retry(task_id=task.pk, actor=operator)  # an operator's single retry first
    verbs.bulk_work(bulk_id=run["bulkId"])
    progress = client.get(f"{BULK}/{run['bulkId']}").json()["data"]
    assert (progress["done"], progress["refused"], progress["finished"]) == (0, 1, True)
    assert AuditEntry.objects.filter(task=task, action=Action.RETRY).count() == 1


def test_a_filter_selects_what_the_list_shows(clusters, operator):
    alpha, bravo = clusters
    failed = [failed_task_on(alpha, f"A{n}") for n in range(2)]
    running_task_on(alpha, "A running")
    failed_task_on(bravo, "B failed")
    data = post(
        basic_client("operator"),
        "retry",
        {"filter": {"status": "FAILED", "clusterId": alpha.pk}, "dryRun": True},
    ).json()["data"]
    assert sorted(data["accepted"]) == sorted(t.pk for t in failed)
    assert data["matched"] == 2


def test_the_audit_filters_by_bulk_id(operator):
    tasks = [failed_task(name=f"T{n}") for n in range(2)]
    client = basic_client("operator")
    run = post(client, "retry", {"ids": [t.pk for t in tasks]}).json()["data"]
    verbs.bulk_work(bulk_id=run["bulkId"])
    from django.test import Client

    page = Client()
    page.force_login(operator)
    html = page.get(f"/audit/?bulk={run['bulkId']}").content.decode()
    assert html.count("action-retry") == 2 and "action-bulk_retry" in html
    assert page.get("/audit/?bulk=nope").status_code == 400


def test_a_bulk_no_run_works_on_is_started_again_once_by_the_reaper(operator, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from taskcenter.engine import dispatch, reaper

    resent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        dispatch, "send_bulk", lambda bulk_id, copies: resent.append((bulk_id, copies))
    )

    task = failed_task()
    run = post(basic_client("operator"), "retry", {"ids": [task.pk]}).json()["data"]
    BulkOperation.objects.filter(pk=run["bulkId"]).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    assert reaper.reap().bulks_resumed == 1
    assert resent == [(run["bulkId"], 1)]
    assert reaper.reap().bulks_resumed == 0  # stamped: not again at once


@pytest.mark.django_db
def test_a_tasks_bulk_items_are_found_by_an_index_of_their_own():
    """Pruning a task clears its items, and the prune's rules ask for them: without an
    index on the task alone each of those reads the whole item table."""
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, BulkItem._meta.db_table)
    leading = {tuple(c["columns"][:1]) for c in constraints.values() if c["index"]}
    assert ("task_id",) in leading
