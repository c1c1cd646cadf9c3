"""The engine's per-attempt statements run prepared on PostgreSQL (sql.prepared): each
connection prepares a statement once, in the batch that first needs it, and starts
again from none after a batch that failed, since a PREPARE outlives a failure after it."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from taskcenter.tasks import selectors, services, sql, verbs
from taskcenter.tasks.models import SubtaskInstance, SubtaskStatus


def prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's; SQLite runs the same SQL as is")


def test_a_claim_is_prepared_once_per_connection(postgres):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 2})
    start = selectors.task_subtasks(task=task)[0]
    services.attempt_claim(subtask_id=start.pk, attempt=1, executor="host-a")
    services.attempt_finish(
        subtask_id=start.pk, attempt=1, task_id=task.pk, succeeded=True, log=b"done\n"
    )
    node = selectors.task_subtasks(task=task)[1]
    with CaptureQueriesContext(connection) as second:
        claimed = services.attempt_claim(subtask_id=node.pk, attempt=1, executor="host-a")

    assert claimed is not None and claimed.name == node.name
    assert second.captured_queries[0]["sql"].startswith("EXECUTE tc_")  # not prepared again
    name = second.captured_queries[0]["sql"].split("(")[0].removeprefix("EXECUTE ")
    assert name in prepared_names()


def test_after_a_failed_batch_the_connection_prepares_again_from_none(postgres):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 2})
    start = selectors.task_subtasks(task=task)[0]
    probe = sql.prepared("SELECT id FROM tasks_subtaskinstance WHERE id = %s", [start.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        # The PREPARE runs, then the batch fails: which statements this connection holds
        # is no longer known.
        sql.run_batch([probe, ("SELECT 1 / 0", [])])

    with CaptureQueriesContext(connection) as again:
        rows = sql.run(*probe)

    assert rows == [(start.pk,)]
    assert again.captured_queries[0]["sql"].startswith("DEALLOCATE ALL; PREPARE tc_")


def test_a_finish_reads_its_downstreams_through_the_primary_key(postgres):
    """A fan-out member's finish counts itself off the join by id: scanning the task's
    subtask rows instead made every finish of a 1,000-wide fan-out read the whole table
    (519 of its 537 buffers)."""
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 1000})
    start, member = selectors.task_subtasks(task=task)[:2]
    services.attempt_claim(subtask_id=start.pk, attempt=1, executor="host-a")
    services.attempt_finish(subtask_id=start.pk, attempt=1, task_id=task.pk, succeeded=True)
    services.attempt_claim(subtask_id=member.pk, attempt=1, executor="host-a")
    with connection.cursor() as cursor:  # the planner knows the table's size, as in use
        cursor.execute("ANALYZE tasks_subtaskinstance")
    read_before = subtask_rows_scanned()

    services.attempt_finish(
        subtask_id=member.pk, attempt=1, task_id=task.pk, succeeded=True, log=b"done\n"
    )

    assert subtask_rows_scanned() - read_before < 50  # not the task's 1,002 rows
    join = selectors.task_subtasks(task=task)[-1]
    assert join.upstreams_left == 999


def subtask_rows_scanned() -> int:
    """Subtask rows read by sequential scans in this transaction (the test's)."""
    return rows_read("tasks_subtaskinstance", "seq_tup_read")


def rows_read(table: str, counters: str) -> int:
    """PostgreSQL's `counters` (an expression of pg_stat_xact_user_tables' columns) for
    `table` in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {counters} FROM pg_stat_xact_user_tables WHERE relname = %s", [table]
        )
        return cursor.fetchone()[0]


def test_a_sibling_claim_reads_its_own_task_row_once_however_many_are_ready(postgres):
    """A fan-out member's claim of a READY sibling finds the row it picked by its primary
    key. Where the statistics had seen few READY subtasks (a history of finished tasks,
    as in use), the claim used to read every READY subtask of the fan-out and each one's
    task row, then keep the one it picked: a fan-out's claims grew with its width."""
    history = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 300})
    SubtaskInstance.objects.filter(task=history).update(status=SubtaskStatus.SUCCESSFUL)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_subtaskinstance")
        cursor.execute("ANALYZE tasks_taskinstance")
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 300})
    start, member = selectors.task_subtasks(task=task)[:2]
    services.attempt_claim(subtask_id=start.pk, attempt=1, executor="host-a")
    services.attempt_finish(subtask_id=start.pk, attempt=1, task_id=task.pk, succeeded=True)
    read_before = task_rows_fetched()

    claimed = services.attempt_claim_sibling(subtask_id=member.pk, executor="host-a")

    assert claimed is not None and claimed.task_id == task.pk
    assert task_rows_fetched() - read_before <= 2  # not one per READY sibling (300)
    ready = SubtaskInstance.objects.filter(task=task, status=SubtaskStatus.READY).count()
    assert ready == 299


def task_rows_fetched() -> int:
    """Task rows read in this transaction (the test's), by scans and index lookups."""
    return rows_read("tasks_taskinstance", "seq_tup_read + idx_tup_fetch")
