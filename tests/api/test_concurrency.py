"""Simultaneous operations on one task: exactly one wins, the others get a clear refusal."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from taskcenter.accounts import roles
from taskcenter.tasks.models import AuditEntry, TaskInstance
from tests.conftest import basic_client
from tests.factories import failed_task, first_subtask_with, make_user

CALLERS = 20


def post_all_at_once(url: str, username: str) -> list[tuple[int, dict]]:
    """CALLERS threads, each with its own client and database connection, released together."""
    # Signed in once first: Basic credentials are then remembered, so what the threads
    # race for is the operation, not the sign-in throttle's admission (whose wait a slow
    # machine's twenty simultaneous password checks can outlast).
    assert basic_client(username).get("/api/v2/tasks/instances?size=1").status_code == 200
    barrier = threading.Barrier(CALLERS)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def call():
        client = basic_client(username)
        try:
            barrier.wait(timeout=30)
            response = client.post(url)
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == CALLERS
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_retries_give_one_success_and_nineteen_20003(no_broker):
    make_user("operator", roles.MANAGER)
    task = failed_task()
    results = post_all_at_once(f"/api/v2/tasks/instances/{task.pk}/retry", "operator")
    outcome = Counter((status, body.get("error", {}).get("code")) for status, body in results)
    assert outcome == {(200, None): 1, (400, 20003): CALLERS - 1}, outcome
    assert TaskInstance.objects.get(pk=task.pk).status == "RUNNING"
    assert AuditEntry.objects.filter(task=task, action="RETRY").count() == 1
    assert len(no_broker) == 1  # the failed subtask was enqueued once


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_subtask_skips_give_one_success(no_broker):
    make_user("operator", roles.MANAGER)
    task = failed_task()
    subtask = first_subtask_with(task, "FAILED")
    url = f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}/skip"
    results = post_all_at_once(url, "operator")
    outcome = Counter((status, body.get("error", {}).get("code")) for status, body in results)
    assert outcome == {(200, None): 1, (400, 20003): CALLERS - 1}, outcome
    assert AuditEntry.objects.filter(task=task, action="SKIP").count() == 1
