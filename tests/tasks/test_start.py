"""Starting a task: the rows, the DAG edges, and which subtasks may run first; finishing
attempts as a worker does (with the task id), over each finish path of the database."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter.tasks import selectors, services, verbs

pytestmark = pytest.mark.usefixtures("finish_path")


def test_start_makes_only_the_roots_ready_and_stores_both_ends_of_every_edge(db):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 3})
    subs = {s.name: s for s in selectors.task_subtasks(task=task)}
    start, end = subs["start"], subs["end"]
    nodes = [subs[f"node {i}"] for i in range(3)]

    assert (start.status, start.attempt, start.run_time) == ("READY", 1, 1)
    assert all(s.status == "PENDING" and s.attempt == 0 for s in [*nodes, end])
    assert start.upstream_ids == [] and start.downstream_ids == [n.pk for n in nodes]
    assert all(n.upstream_ids == [start.pk] and n.downstream_ids == [end.pk] for n in nodes)
    assert end.upstream_ids == [n.pk for n in nodes] and end.downstream_ids == []
    assert [n.upstreams_left for n in nodes] == [1, 1, 1] and end.upstreams_left == 3


def test_an_attempt_is_claimed_once_and_carries_what_the_action_needs(db):
    task = verbs.task_start(definition_name="Reinstall OCP agent", parameters={"host": "10.0.0.7"})
    first = selectors.task_subtasks(task=task)[0]

    claimed = services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-a")
    again = services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-b")

    assert again is None
    assert claimed.name == first.name and claimed.task_id == task.pk
    assert claimed.parameters["host"] == "10.0.0.7"
    assert claimed.action == first.action and not claimed.is_rollback
    row = selectors.task_subtasks(task=task)[0]
    assert (row.status, row.executor) == ("RUNNING", "host-a")
    assert selectors.task_get(task_id=task.pk).executor == "host-a"


def test_finishing_a_stale_attempt_changes_nothing(db):
    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 2})
    first = selectors.task_subtasks(task=task)[0]
    services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-a")

    assert not services.attempt_finish(subtask_id=first.pk, attempt=2, succeeded=True).ended
    assert services.attempt_finish(subtask_id=first.pk, attempt=1, succeeded=True).ended
    assert not services.attempt_finish(subtask_id=first.pk, attempt=1, succeeded=True).ended
    second = selectors.task_subtasks(task=task)[1]
    assert (second.status, second.attempt) == ("READY", 1)


def test_a_finish_can_claim_the_next_link_for_its_own_worker(
    db, django_capture_on_commit_callbacks, sent
):
    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 3})
    first, second, third = selectors.task_subtasks(task=task)
    services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-a")

    with django_capture_on_commit_callbacks(execute=True):
        finished = services.attempt_finish(
            subtask_id=first.pk,
            attempt=1,
            task_id=task.pk,
            succeeded=True,
            claim_next_as="host-a",
        )

    assert finished.ended and finished.next.subtask_id == second.pk
    assert finished.next.attempt == 1 and finished.next.name == second.name
    assert sent == []  # nothing goes through the broker
    second = selectors.task_subtasks(task=task)[1]
    assert (second.status, second.executor, second.run_time) == ("RUNNING", "host-a", 1)
    assert second.heartbeat_at is not None
    assert selectors.task_subtasks(task=task)[2].status == "PENDING"


def test_a_finish_that_starts_several_claims_one_and_sends_the_others(
    db, django_capture_on_commit_callbacks, sent
):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 3})
    subs = {s.name: s for s in selectors.task_subtasks(task=task)}
    services.attempt_claim(subtask_id=subs["start"].pk, attempt=1, executor="host-a")

    with django_capture_on_commit_callbacks(execute=True):
        finished = services.attempt_finish(
            subtask_id=subs["start"].pk,
            attempt=1,
            task_id=task.pk,
            succeeded=True,
            claim_next_as="host-a",
        )

    nodes = [subs[f"node {i}"].pk for i in range(3)]
    assert finished.next.subtask_id == nodes[0]
    assert sent == [(nodes[1], 1), (nodes[2], 1)]
    statuses = {s.pk: s.status for s in selectors.task_subtasks(task=task)}
    assert [statuses[pk] for pk in nodes] == ["RUNNING", "READY", "READY"]


def test_a_failed_attempt_claims_nothing(db):
    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 2})
    first = selectors.task_subtasks(task=task)[0]
    services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-a")

    finished = services.attempt_finish(
        subtask_id=first.pk, attempt=1, succeeded=False, claim_next_as="host-a"
    )

    assert finished.ended and finished.next is None
    assert selectors.task_get(task_id=task.pk).status == "FAILED"


def finish(task, subtask_id: int, **kwargs) -> services.FinishedAttempt:
    return services.attempt_finish(
        subtask_id=subtask_id, attempt=1, task_id=task.pk, succeeded=True, **kwargs
    )


def test_a_fan_out_ends_node_by_node_and_the_last_node_starts_the_join(
    db, django_capture_on_commit_callbacks, sent
):
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 3})
    subs = {s.name: s for s in selectors.task_subtasks(task=task)}
    nodes = [subs[f"node {i}"].pk for i in range(3)]
    services.attempt_claim(subtask_id=subs["start"].pk, attempt=1, executor="host-a")
    with django_capture_on_commit_callbacks(execute=True):
        finish(task, subs["start"].pk)
    for pk in nodes:
        services.attempt_claim(subtask_id=pk, attempt=1, executor="host-a")

    with django_capture_on_commit_callbacks(execute=True):
        finish(task, nodes[0], log=b"first line\n", result={"rows": 1})
        finish(task, nodes[1], log=b"x" * 10)
    end = selectors.task_subtasks(task=task)[-1]
    assert (end.status, end.upstreams_left) == ("PENDING", 1)
    with django_capture_on_commit_callbacks(execute=True):
        finish(task, nodes[2])

    assert sent[-1] == (subs["end"].pk, 1)
    first = next(s for s in selectors.task_subtasks(task=task) if s.pk == nodes[0])
    assert (first.status, first.result, first.heartbeat_at) == ("SUCCESSFUL", {"rows": 1}, None)
    services.log_append(subtask_id=first.pk, attempt=1, data=b"appended later\n")
    first.refresh_from_db()
    log = selectors.log_read(subtask=first)
    assert log.text == "first line\nappended later\n" and first.log_size == len(log.text)
    assert selectors.task_get(task_id=task.pk).status == "RUNNING"

    services.attempt_claim(subtask_id=subs["end"].pk, attempt=1, executor="host-a")
    assert finish(task, subs["end"].pk).next is None
    done = selectors.task_get(task_id=task.pk)
    assert done.status == "SUCCESSFUL" and done.finish_time is not None


def test_a_stale_finish_from_a_worker_changes_nothing(db):
    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 2})
    first, second = selectors.task_subtasks(task=task)
    services.attempt_claim(subtask_id=first.pk, attempt=1, executor="host-a")

    assert finish(task, first.pk, log=b"once\n").ended
    assert not finish(task, first.pk, log=b"twice\n").ended

    first.refresh_from_db()
    assert selectors.log_read(subtask=first).text == "once\n"
    second.refresh_from_db()
    assert (second.status, second.upstreams_left, second.run_time) == ("READY", 0, 1)


def test_a_finishing_log_past_the_cap_is_cut_with_a_marker(db, settings):
    settings.TASKCENTER_LOG_CAP_BYTES = 1024
    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 1})
    only = selectors.task_subtasks(task=task)[0]
    services.attempt_claim(subtask_id=only.pk, attempt=1, executor="host-a")

    assert finish(task, only.pk, log=b"y" * 2000).ended

    only.refresh_from_db()
    text = selectors.log_read(subtask=only).text
    assert text.startswith("y" * 1024) and "log truncated" in text and only.log_truncated
    assert selectors.task_get(task_id=task.pk).status == "SUCCESSFUL"


def fan_out_with_a_running_node():
    """A fan-out of two whose start has ended and whose "node 0" is RUNNING."""
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 2})
    subs = {s.name: s for s in selectors.task_subtasks(task=task)}
    services.attempt_claim(subtask_id=subs["start"].pk, attempt=1, executor="host-a")
    finish(task, subs["start"].pk)
    services.attempt_claim(subtask_id=subs["node 0"].pk, attempt=1, executor="host-a")
    return task, subs["node 0"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's one-trip finish")
@pytest.mark.parametrize("finish_path", ["one-trip", "general"], indirect=True)
def test_on_postgresql_a_worker_ends_a_successful_attempt_in_one_round_trip(db, finish_path):
    task, node = fan_out_with_a_running_node()

    with CaptureQueriesContext(connection) as queries:
        assert finish(task, node.pk, log=b"done\n").ended

    if finish_path == "one-trip":
        assert len(queries) == 1, [q["sql"][:80] for q in queries]
    else:  # the tests can still choose the general path, to run it on PostgreSQL too
        assert len(queries) > 1, [q["sql"][:80] for q in queries]


def test_starting_many_writes_each_and_returns_the_error_of_a_refused_one(
    db, django_capture_on_commit_callbacks
):
    from taskcenter.core.errors import InvalidDefinition
    from taskcenter.tasks import enqueue

    sends: list[list[tuple[int, int]]] = []
    previous = enqueue.register_attempt_sender(sends.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            chain, refused, fan_out = verbs.task_start_many(
                starts=[
                    verbs.TaskStart(definition_name="Benchmark chain", parameters={"length": 2}),
                    verbs.TaskStart(definition_name="Nope"),
                    verbs.TaskStart(
                        definition_name="Benchmark fan-out", parameters={"width": 2}, retry_count=4
                    ),
                ]
            )
    finally:
        enqueue.register_attempt_sender(previous)
    assert isinstance(refused, InvalidDefinition)
    assert [len(selectors.task_subtasks(task=t)) for t in (chain, fan_out)] == [2, 4]
    assert {s.retry_count for s in selectors.task_subtasks(task=fan_out)} == {4}
    first = [selectors.task_subtasks(task=t)[0].pk for t in (chain, fan_out)]
    assert sends == [[(pk, 1) for pk in first]]  # both roots, in one send
    ends = selectors.task_subtasks(task=fan_out)
    assert ends[-1].upstream_ids == [s.pk for s in ends[1:3]]


def test_a_start_stores_names_and_actions_as_written(db):
    """Quotes, backslashes, braces, commas, NULL-looking words and other scripts go in
    exactly as defined (the insert writes each column as one array literal)."""
    awkward = ['say "hi"', "C:\\temp\\{x}", "a,b {c}", "NULL", "", "日本語 ✓", 'back\\"slash']
    subtasks = [
        {
            "key": f"k{index}",
            "name": name or "empty description",
            "description": name,
            "kind": "SHELL_TASK",
            "action": {"command": f"echo '{name}'", "env": {"Q": name, "n": [1, None, 2.5]}},
            "upstreams": [f"k{index - 1}"] if index else [],
        }
        for index, name in enumerate(awkward)
    ]
    services.definition_create_from_data(name="Awkward names", spec={"subtasks": subtasks})

    task = verbs.task_start(definition_name="Awkward names")

    rows = selectors.task_subtasks(task=task)
    assert [row.name for row in rows] == [sub["name"] for sub in subtasks]
    assert [row.description for row in rows] == [
        sub["description"] or sub["name"] for sub in subtasks
    ]
    assert [row.action for row in rows] == [sub["action"] for sub in subtasks]
    assert [row.rollback_action for row in rows] == [None] * len(awkward)
    assert [row.upstream_ids for row in rows] == [[], *[[row.pk] for row in rows[:-1]]]


def test_a_fan_out_with_a_failed_node_fails_when_its_last_node_succeeds(db):
    """The join never starts, so the last success must see that nothing else is at work
    (its own row included, which the one-trip statement reads as it was) and settle."""
    task = verbs.task_start(definition_name="Benchmark fan-out", parameters={"width": 3})
    subs = {s.name: s for s in selectors.task_subtasks(task=task)}
    nodes = [subs[f"node {i}"].pk for i in range(3)]
    services.attempt_claim(subtask_id=subs["start"].pk, attempt=1, executor="host-a")
    finish(task, subs["start"].pk)
    for pk in nodes:
        services.attempt_claim(subtask_id=pk, attempt=1, executor="host-a")

    services.attempt_finish(subtask_id=nodes[0], attempt=1, task_id=task.pk, succeeded=False)
    finish(task, nodes[1])
    assert selectors.task_get(task_id=task.pk).status == "RUNNING"  # node 2 is at work
    finish(task, nodes[2])

    done = selectors.task_get(task_id=task.pk)
    assert done.status == "FAILED" and done.finish_time is not None
    assert selectors.task_subtasks(task=task)[-1].status == "PENDING"
