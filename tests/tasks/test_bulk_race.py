"""A bulk retry of 1,000 tasks, worked by two background runs at once, races an operator
retrying the same tasks one by one: no task runs twice (PostgreSQL: real row locks and
SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from taskcenter.accounts import access, roles
from taskcenter.core.errors import InvalidState
from taskcenter.tasks import enqueue, services, verbs
from taskcenter.tasks.models import (
    AuditEntry,
    BulkItem,
    SubtaskInstance,
    SubtaskStatus,
    TaskInstance,
    TaskStatus,
)
from tests.conftest import make_user

TASKS = 1_000
ONE_STEP = "Bulk race: one step"

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and SKIP LOCKED: PostgreSQL"
)


def failed_tasks(count: int) -> list[int]:
    """`count` tasks started by the run verb, then failed by hand: driving 1,000 tasks
    through the engine's failure path one by one would be most of the test's time. The
    state is the one that path leaves: the task FAILED (EXECUTE), its one subtask FAILED
    after its first attempt."""
    services.definition_create_from_data(
        name=ONE_STEP,
        spec={"subtasks": [{"key": "a", "name": "only", "kind": "SHELL_TASK",
                            "action": {"command": "false"}}]},
    )  # fmt: skip
    started = verbs.task_start_many(
        starts=[verbs.TaskStart(definition_name=ONE_STEP) for _ in range(count)]
    )
    ids = [task.pk for task in started]
    SubtaskInstance.objects.filter(task_id__in=ids).update(status=SubtaskStatus.FAILED)
    TaskInstance.objects.filter(pk__in=ids).update(status=TaskStatus.FAILED)
    return ids


@pytest.mark.django_db(transaction=True)
def test_a_bulk_retry_racing_single_retries_runs_no_task_twice(no_broker):
    operator = make_user("operator", roles.MANAGER)
    runs: list[tuple[str, int]] = []
    previous = enqueue.register_bulk_sender(lambda bulk_id, copies: runs.append((bulk_id, copies)))
    try:
        ids = failed_tasks(TASKS)
        no_broker.clear()
        selection = access.bulk_selection(operator, "retry", ids=ids)
        bulk, judgement = verbs.bulk_start(selection, actor=operator)
        assert len(judgement.accepted) == TASKS and runs == [(str(bulk.pk), 1)]

        barrier = threading.Barrier(3)
        single_wins: list[int] = []

        def bulk_run():
            try:
                barrier.wait(timeout=30)
                verbs.bulk_work(bulk_id=bulk.pk)
            finally:
                connection.close()

        def operator_retries():
            try:
                barrier.wait(timeout=30)
                # From the end, where the bulk arrives last: the two meet in the middle.
                for task_id in reversed(ids):
                    try:
                        verbs.task_retry(task_id=task_id, actor=operator)
                    except InvalidState:
                        continue
                    single_wins.append(task_id)
            finally:
                connection.close()

        threads = [threading.Thread(target=target)
                   for target in (bulk_run, bulk_run, operator_retries)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        enqueue.register_bulk_sender(previous)

    retries = Counter(
        AuditEntry.objects.filter(task_id__in=ids, action="RETRY").values_list("task_id", flat=True)
    )
    assert set(retries) == set(ids) and set(retries.values()) == {1}, "each task retried once"
    sends = Counter(subtask_id for subtask_id, _attempt in no_broker)
    assert len(sends) == TASKS and set(sends.values()) == {1}, "each attempt sent once"
    assert set(
        SubtaskInstance.objects.filter(task_id__in=ids).values_list("attempt", flat=True)
    ) == {2}
    outcomes = Counter(BulkItem.objects.filter(bulk=bulk).values_list("outcome", flat=True))
    assert outcomes == {"DONE": TASKS - len(single_wins), "REFUSED": len(single_wins)}, outcomes
    bulk_entries = AuditEntry.objects.filter(bulk_id=bulk.pk, action="RETRY").count()
    assert bulk_entries == TASKS - len(single_wins)
    assert single_wins, "the operator won some tasks: the two did race"
