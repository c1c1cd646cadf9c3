"""The bulk pages: the list's selection bar, the dry run page, its confirmation, the
operation's page with its progress and stop, and the audit filtered by bulk id."""

from __future__ import annotations

import re

import pytest

from taskcenter.tasks import enqueue, verbs
from taskcenter.tasks.models import AuditEntry, BulkOperation, TaskInstance
from tests.conftest import client_for
from tests.factories import failed_task, make_task, running_task


@pytest.fixture(autouse=True)
def bulk_runs(no_broker):
    sent: list[tuple[str, int]] = []
    previous = enqueue.register_bulk_sender(lambda bulk_id, copies: sent.append((bulk_id, copies)))
    yield sent
    enqueue.register_bulk_sender(previous)


def test_the_list_offers_bulk_operations_to_operators_only(operator, viewer):
    failed_task()
    html = client_for(operator).get("/tasks/").content.decode()
    assert 'id="bulk-form"' in html and 'class="bulk-check"' in html
    assert "Select all <b>1</b> task matching this filter" in html
    assert "Retry…" in html and "Roll back…" in html and "Cancel…" in html
    html = client_for(viewer).get("/tasks/").content.decode()
    assert "bulk-form" not in html and "bulk-check" not in html


def test_dry_run_then_confirm_then_follow(operator):
    failed = [failed_task(name=f"F{n}") for n in range(2)]
    running = running_task()
    client = client_for(operator)
    ids = [t.pk for t in failed] + [running.pk]
    query = "status=FAILED"
    dry = client.get("/tasks/bulk/retry/", {"ids": ids, "query": query})
    html = dry.content.decode()
    assert dry.status_code == 200 and "Dry run" in html
    assert re.search(r'data-count="accepted">2<', html) and re.search(
        r'data-count="refused">1<', html
    )
    assert "The task is running; Retry becomes available if it fails." in html
    assert not BulkOperation.objects.exists()

    confirmed = client.post(
        "/tasks/bulk/retry/", {"ids": ",".join(map(str, ids)), "query": query, "reason": "disk"}
    )
    bulk = BulkOperation.objects.get()
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/tasks/bulk/{bulk.pk}/"
    assert (bulk.total, bulk.refused_at_start, bulk.reason) == (2, 1, "disk")
    page = client.get(confirmed["Location"]).content.decode()
    assert "Working…" in page and f"/audit/?bulk={bulk.pk}" in page and "Stop" in page

    verbs.bulk_work(bulk_id=bulk.pk)
    progress = client.get(f"/tasks/bulk/{bulk.pk}/progress/", HTTP_HX_REQUEST="true")
    assert progress.status_code == 286  # htmx stops polling
    assert re.search(r'data-count="done">2<', progress.content.decode())
    assert {t.status for t in TaskInstance.objects.filter(pk__in=[t.pk for t in failed])} == {
        "RUNNING"
    }


def test_all_matching_the_filter_is_judged_from_the_filter(operator):
    failed = [failed_task(name=f"F{n}") for n in range(3)]
    make_task(["SUCCESSFUL"])
    client = client_for(operator)
    html = client.get("/tasks/bulk/retry/", {"all": "1", "query": "status=FAILED"}).content.decode()
    assert re.search(r'data-count="accepted">3<', html)
    for task in failed:
        assert f"#{task.pk}<" in html


def test_a_reason_is_asked_again_when_the_verb_requires_it(operator):
    task = failed_task()
    client = client_for(operator)
    answer = client.post("/tasks/bulk/rollback/", {"ids": str(task.pk), "reason": ""})
    assert answer.status_code == 400
    assert "A reason is required" in answer.content.decode()
    assert not BulkOperation.objects.exists()


def test_an_empty_selection_gets_a_clear_message(operator):
    answer = client_for(operator).get("/tasks/bulk/retry/")
    assert answer.status_code == 400
    assert "select at least one task" in answer.content.decode()


def test_an_unknown_operation_is_refused(operator):
    assert client_for(operator).get("/tasks/bulk/skip/?ids=1").status_code == 400


def test_stop_from_the_page(operator):
    tasks = [failed_task(name=f"F{n}") for n in range(2)]
    client = client_for(operator)
    client.post("/tasks/bulk/retry/", {"ids": ",".join(str(t.pk) for t in tasks)})
    bulk = BulkOperation.objects.get()
    answer = client.post(f"/tasks/bulk/{bulk.pk}/stop/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 286 and "Stopped" in answer.content.decode()
    assert AuditEntry.objects.filter(bulk_id=bulk.pk, action="BULK_STOP").exists()


def test_another_users_bulk_is_not_found_for_a_scoped_user(operator, clusters):
    from django.contrib.auth.models import Group

    from taskcenter.accounts import roles
    from taskcenter.accounts.models import RoleScope
    from tests.conftest import make_user

    task = failed_task()
    client_for(operator).post("/tasks/bulk/retry/", {"ids": str(task.pk)})
    bulk = BulkOperation.objects.get()
    scoped = make_user("scoped", roles.MANAGER)
    scope = RoleScope.objects.create(user=scoped, group=Group.objects.get(name=roles.MANAGER))
    scope.clusters.set([clusters[0]])
    assert client_for(scoped).get(f"/tasks/bulk/{bulk.pk}/").status_code == 404
    assert client_for(scoped).post(f"/tasks/bulk/{bulk.pk}/stop/").status_code == 404
