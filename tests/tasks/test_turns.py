"""Turns: a wide fan-out sends a few messages, and the workers' turns drain the rest.

A message is a turn on its subtask's task and node type: its claim takes its own attempt
or, when that is taken, a READY sibling; a worker's finish takes the next sibling itself;
a worker that stops taking subtasks hands its turn on. No subtask runs twice (every claim
is a compare-and-set of one attempt) and none waits for the reaper while a turn is alive.
"""

import time

import pytest

from taskcenter.tasks import selectors, services, sql, verbs
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    ParameterSpec,
    SubtaskSpec,
    register_definition,
)
from taskcenter.tasks.models import SubtaskInstance

NOOP = {"callable": "demo.noop"}
SHELL = {"command": "true"}


def _python_and_shell_fan_out(params: dict) -> list[SubtaskSpec]:
    """start -> N Python nodes and N shell nodes -> end."""
    width = params["width"]
    nodes = [
        SubtaskSpec(
            f"{kind}{i}", f"{kind} {i}", kind, NOOP if kind == "PYTHON_TASK" else SHELL, ["start"]
        )
        for kind in ("PYTHON_TASK", "SHELL_TASK")
        for i in range(width)
    ]
    return [
        SubtaskSpec("start", "start", "PYTHON_TASK", NOOP),
        *nodes,
        SubtaskSpec("end", "end", "PYTHON_TASK", NOOP, [n.key for n in nodes]),
    ]


@pytest.fixture
def two_kinds():
    width = ParameterSpec("width", 2, "Nodes of each kind", minimum=1, maximum=100)
    register_definition(
        DefinitionSpec(name="Turns: two kinds", parameters=[width], build=_python_and_shell_fan_out)
    )
    return "Turns: two kinds"


def _started(definition: str, width: int, capture):
    """The task after its first subtask's finish released the fan-out; its subtasks by key."""
    task = verbs.task_start(definition_name=definition, parameters={"width": width})
    subs = {s.key or s.name: s for s in selectors.task_subtasks(task=task)}
    start = next(s for s in subs.values() if s.name == "start")
    services.attempt_claim(subtask_id=start.pk, attempt=1, executor="host-a")
    with capture(execute=True):
        services.attempt_finish(subtask_id=start.pk, attempt=1, task_id=task.pk, succeeded=True)
    return task, subs


def _status(pk: int) -> str:
    return SubtaskInstance.objects.get(pk=pk).status


@pytest.mark.usefixtures("finish_path")
def test_a_wide_release_sends_a_few_messages_of_each_node_type(
    db,
    django_capture_on_commit_callbacks,
    sent,
    settings,
    two_kinds,
):
    settings.TASKCENTER_FANOUT_MESSAGES = 3
    task, subs = _started(two_kinds, 10, django_capture_on_commit_callbacks)

    kinds = {s.pk: s.node_type for s in subs.values()}
    released = sent[-6:]
    assert len(sent) == 6, sent  # not 20: three turns of each kind
    assert sorted(kinds[pk] for pk, _ in released) == ["PYTHON_TASK"] * 3 + ["SHELL_TASK"] * 3
    ready = [s for s in selectors.task_subtasks(task=task) if s.status == "READY"]
    assert len(ready) == 20  # all of them may run: the turns take the others


@pytest.mark.usefixtures("finish_path")
def test_a_message_whose_subtask_was_taken_claims_a_ready_sibling_of_its_kind(
    db,
    django_capture_on_commit_callbacks,
    sent,
    settings,
    two_kinds,
):
    settings.TASKCENTER_FANOUT_MESSAGES = 1
    task, subs = _started(two_kinds, 2, django_capture_on_commit_callbacks)
    (python_message, _), (shell_message, _) = sorted(sent, key=lambda m: subs_kind(subs, m[0]))
    services.attempt_claim(subtask_id=python_message, attempt=1, executor="host-a")

    turn = services.attempt_claim_turn(subtask_id=python_message, attempt=1, executor="host-b")
    again = services.attempt_claim_turn(subtask_id=python_message, attempt=1, executor="host-b")

    assert turn is not None and turn.node_type == "PYTHON_TASK"
    assert turn.subtask_id not in (python_message, shell_message)
    assert _status(turn.subtask_id) == "RUNNING"
    # Both Python nodes are taken now: the Python turn does not take a shell node, whose
    # queue may be another one.
    assert again is None
    assert _status(shell_message) == "READY"
    assert {
        s.status for s in selectors.task_subtasks(task=task) if s.node_type == "SHELL_TASK"
    } == {"READY"}


def subs_kind(subs, pk: int) -> str:
    return next(s.node_type for s in subs.values() if s.pk == pk)


@pytest.mark.usefixtures("finish_path")
def test_a_finish_takes_the_next_ready_sibling_for_its_worker_until_none_is_left(
    db,
    django_capture_on_commit_callbacks,
    sent,
    settings,
):
    settings.TASKCENTER_FANOUT_MESSAGES = 1
    task, subs = _started("Benchmark fan-out", 4, django_capture_on_commit_callbacks)
    assert len(sent) == 1
    claimed = services.attempt_claim_turn(subtask_id=sent[0][0], attempt=1, executor="host-a")
    ran = []
    with django_capture_on_commit_callbacks(execute=True):
        while claimed is not None and claimed.name.startswith("node"):
            ran.append(claimed.subtask_id)
            claimed = services.attempt_finish(
                subtask_id=claimed.subtask_id,
                attempt=claimed.attempt,
                task_id=task.pk,
                succeeded=True,
                claim_next_as="host-a",
            ).next

    nodes = sorted(s.pk for s in subs.values() if s.name.startswith("node"))
    assert sorted(ran) == nodes  # each node once, all of them on the one turn
    assert claimed is not None and claimed.name == "end"  # the last node's release
    assert sent == [sent[0]]  # nothing else went through the broker


@pytest.mark.usefixtures("finish_path")
def test_a_worker_that_stops_taking_turns_hands_its_turn_on_while_siblings_wait(
    db,
    django_capture_on_commit_callbacks,
    sent,
    settings,
):
    settings.TASKCENTER_FANOUT_MESSAGES = 1
    task, subs = _started("Benchmark fan-out", 2, django_capture_on_commit_callbacks)
    first = services.attempt_claim_turn(subtask_id=sent[0][0], attempt=1, executor="host-a")

    assert sent_by_finish_without_next(first, task, sent, django_capture_on_commit_callbacks) == [
        (first.subtask_id, 1)  # its own, ended attempt: a turn
    ]
    second = services.attempt_claim_turn(subtask_id=first.subtask_id, attempt=1, executor="host-b")
    assert second is not None and second.subtask_id != first.subtask_id
    end = next(s for s in subs.values() if s.name == "end")
    assert sent_by_finish_without_next(second, task, sent, django_capture_on_commit_callbacks) == [
        (end.pk, 1)  # no sibling left: the join's own message, no turn
    ]


def sent_by_finish_without_next(claimed, task, sent, capture) -> list[tuple[int, int]]:
    """The messages that a worker's finish sends when the worker takes no next subtask."""
    sent.clear()
    with capture(execute=True):
        services.attempt_finish(
            subtask_id=claimed.subtask_id,
            attempt=claimed.attempt,
            task_id=task.pk,
            succeeded=True,
            hand_on_turn=True,
        )
    return list(sent)


def test_the_reaper_hands_on_the_turn_of_a_worker_it_calls_lost(
    db,
    django_capture_on_commit_callbacks,
    sent,
    settings,
):
    """A fan-out whose only turn was on a worker that died goes on at once, not after
    TASKCENTER_REDISPATCH_AFTER."""
    settings.TASKCENTER_FANOUT_MESSAGES = 1
    task, _ = _started("Benchmark fan-out", 3, django_capture_on_commit_callbacks)
    taken = services.attempt_claim_turn(subtask_id=sent[0][0], attempt=1, executor="died")
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.attempt_fail_lost(subtask_id=taken.subtask_id, attempt=1, why="test")

    assert sent == [(taken.subtask_id, 1)]
    again = services.attempt_claim_turn(subtask_id=taken.subtask_id, attempt=1, executor="w")
    assert again is not None and again.name.startswith("node")


def test_a_sibling_claimed_as_its_last_upstream_ends_does_not_start_before_that_end(
    db, django_capture_on_commit_callbacks
):
    """A sibling claim reads the time before its statement runs; another worker's finish
    may make the join READY in between, and the claim take it: its start is then that
    finish's time, not earlier (the DAG's order as the pages show it)."""
    task, subs = _started("Benchmark fan-out", 2, django_capture_on_commit_callbacks)
    first, second = (subs[f"n{i}"] for i in range(2))
    for node in (first, second):
        services.attempt_claim(subtask_id=node.pk, attempt=1, executor="host-a")
    services.attempt_finish(subtask_id=first.pk, attempt=1, task_id=task.pk, succeeded=True)
    claim = sql.claim_sibling_statement(first.pk, "host-a")  # its time read now
    time.sleep(0.01)

    services.attempt_finish(subtask_id=second.pk, attempt=1, task_id=task.pk, succeeded=True)
    (end_id, *_), *_ = sql.run(*claim)

    end = SubtaskInstance.objects.get(pk=end_id)
    second.refresh_from_db()
    assert end.name == "end" and end.status == "RUNNING"
    assert end.start_time >= second.finish_time
