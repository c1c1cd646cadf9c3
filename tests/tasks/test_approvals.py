"""Approval gates: they open without a worker, are decided by a verb under four eyes, a
role and a permission, time out through the reaper, and read in OCP's API as RUNNING
with an approval object."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.core.errors import InvalidDefinition, InvalidParameter, InvalidState, NotPermitted
from taskcenter.engine import reaper
from taskcenter.tasks import definitions, services, verbs
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import (
    AuditEntry,
    NodeType,
    SubtaskRunMode,
    SubtaskStatus,
    TaskStatus,
)
from taskcenter.tasks.verbs import VERBS
from tests.factories import (
    APPROVAL_GATE,
    drive,
    make_role,
    make_user,
    start,
    subtask_named,
    waiting_approval,
)

pytestmark = pytest.mark.django_db


def _started(creator, **parameters):
    return waiting_approval(creator, **parameters)  # the build ran, the gate waits


def _gate(task):
    return subtask_named(task, APPROVAL_GATE)


@pytest.fixture
def starter(db):
    return make_user("starter", roles.MANAGER)


@pytest.fixture
def second(db):
    return make_user("second", roles.MANAGER)


def test_a_gate_opens_without_a_worker_and_waits_running(starter, no_broker, finish_path):
    task = _started(starter)
    gate = _gate(task)
    assert gate.status == SubtaskStatus.RUNNING
    assert gate.executor == "" and gate.heartbeat_at is None and gate.start_time is not None
    # Nothing was sent for the gate: only the build went to the "workers".
    assert all(subtask_id != gate.pk for subtask_id, _ in no_broker)
    task.refresh_from_db()
    assert task.status == TaskStatus.RUNNING
    # The reaper neither fails it as a lost worker nor settles the task.
    report = reaper.reap()
    assert (report.lost, report.settled, report.approvals_timed_out) == (0, 0, 0)
    assert _gate(task).status == SubtaskStatus.RUNNING


def test_four_eyes_the_starter_is_refused_and_another_approves(
    starter, second, no_broker, finish_path
):
    task = _started(starter)
    gate = _gate(task)
    approve = VERBS["approve"]
    assert approve.refused(task, gate, actor=starter) is not None
    with pytest.raises(NotPermitted, match="four eyes"):
        approve.perform(task, gate.pk, actor=starter, reason="looks fine")
    assert _gate(task).status == SubtaskStatus.RUNNING
    assert approve.refused(task, gate, actor=second) is None
    approve.perform(task, gate.pk, actor=second, reason="checked the release")
    drive(task, quiet=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCESSFUL
    gate = _gate(task)
    assert gate.status == SubtaskStatus.SUCCESSFUL
    assert gate.result["approval"]["decision"] == "approved"
    assert gate.result["approval"]["by"] == "second"
    entry = AuditEntry.objects.get(action=Action.APPROVE)
    assert (entry.actor, entry.subtask_id, entry.reason) == (second, gate.pk, "checked the release")


def test_reject_fails_the_task_and_a_retry_asks_again(starter, second, no_broker, finish_path):
    task = _started(starter)
    gate = _gate(task)
    with pytest.raises(InvalidParameter):
        VERBS["reject"].perform(task, gate.pk, actor=second, reason="  ")
    VERBS["reject"].perform(task, gate.pk, actor=second, reason="wrong release")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert _gate(task).status == SubtaskStatus.FAILED
    assert subtask_named(task, "Deploy to the cluster").status == SubtaskStatus.PENDING
    with pytest.raises(InvalidState):
        VERBS["approve"].perform(task, gate.pk, actor=second, reason="too late")
    verbs.subtask_retry(task_id=task.pk, subtask_id=gate.pk, actor=second)
    gate = _gate(task)
    assert gate.status == SubtaskStatus.RUNNING and gate.result is None
    assert gate.operation == SubtaskRunMode.RETRY


def test_a_named_role_and_the_starter_allowance(starter, second, no_broker, settings):
    spec = definitions.DefinitionSpec(
        name="Gate with a role",
        build=lambda params: [
            definitions.approval_gate(
                "gate", "Change board", role="CHANGE_BOARD", starter_may_approve=True
            ),
        ],
    )
    definitions.register_definition(spec)
    task = start(spec.name, creator=starter)
    gate = task.subtasks.get()
    assert gate.status == SubtaskStatus.RUNNING  # a root gate opens at the start
    refused = VERBS["approve"].refused(task, gate, actor=second)
    assert refused is not None and "CHANGE_BOARD" in refused.why
    board = make_role("CHANGE_BOARD")
    starter.groups.add(board)
    # The gate lets its starter decide: four eyes are off for it.
    VERBS["approve"].perform(task, gate.pk, actor=starter, reason="board member")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCESSFUL


@pytest.mark.parametrize("on_timeout", ["fail", "approve"])
def test_the_reaper_times_out_a_gate_as_it_says(starter, no_broker, on_timeout):
    spec = definitions.DefinitionSpec(
        name=f"Gate that times out ({on_timeout})",
        build=lambda params: [
            definitions.approval_gate("gate", "Wait", timeout=60, on_timeout=on_timeout)
        ],
    )
    definitions.register_definition(spec)
    task = start(spec.name, creator=starter)
    gate = task.subtasks.get()
    assert services.gates_due(timezone.now()) == []
    later = timezone.now() + timedelta(seconds=61)
    assert services.gates_due(later) == [(gate.pk, gate.attempt)]
    assert services.gate_time_out(subtask_id=gate.pk, attempt=gate.attempt, now=later)
    assert not services.gate_time_out(subtask_id=gate.pk, attempt=gate.attempt, now=later)
    gate.refresh_from_db()
    task.refresh_from_db()
    expected = SubtaskStatus.SUCCESSFUL if on_timeout == "approve" else SubtaskStatus.FAILED
    assert gate.status == expected
    assert gate.result["approval"]["decision"] == "timed out"
    assert task.status == (TaskStatus.SUCCESSFUL if on_timeout == "approve" else TaskStatus.FAILED)
    assert AuditEntry.objects.filter(action=Action.APPROVAL_TIMEOUT, subtask=gate).count() == 1


def test_cancel_ends_a_waiting_gate_at_once(starter, no_broker):
    task = _started(starter)
    gate = _gate(task)
    verbs.subtask_cancel(task_id=task.pk, subtask_id=gate.pk, actor=starter, reason="not today")
    gate.refresh_from_db()
    task.refresh_from_db()
    assert (gate.status, gate.operation) == (SubtaskStatus.FAILED, SubtaskRunMode.CANCEL)
    assert task.status == TaskStatus.FAILED


def test_a_rollback_passes_the_gate_through_a_worker(starter, second, no_broker):
    task = _started(starter)
    VERBS["approve"].perform(task, _gate(task).pk, actor=second, reason="ok")
    drive(task, fail={"Verify the deployment"}, quiet=True)
    verbs.task_rollback(task_id=task.pk, actor=second, reason="undo")
    drive(task, quiet=True)
    task.refresh_from_db()
    assert task.is_rolled_back
    assert _gate(task).status == SubtaskStatus.PENDING


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"onTimeout": "later"}, "onTimeout"),
        ({"who": "x"}, "unknown setting"),
        ({"permission": "approve"}, "app_label.codename"),
        ({"starterMayApprove": "yes"}, "starterMayApprove"),
    ],
)
def test_a_data_definition_declares_gates_and_bad_settings_are_named(action, message):
    good = definitions.definition_from_data(
        "Data gate",
        1,
        {
            "subtasks": [
                {"key": "a", "kind": "SHELL_TASK", "action": {"command": "true"}},
                {"key": "gate", "kind": "APPROVAL_TASK", "upstreams": ["a"], "timeout": 30},
            ]
        },
    )
    kinds = [spec.kind for spec in good.build({})]
    assert kinds == ["SHELL_TASK", NodeType.APPROVAL_TASK]
    with pytest.raises(InvalidDefinition, match=message):
        definitions.definition_from_data(
            "Bad gate", 1, {"subtasks": [{"key": "g", "kind": "APPROVAL_TASK", "action": action}]}
        )


def test_a_gate_takes_no_rollback():
    with pytest.raises(InvalidDefinition, match="no rollback"):
        definitions.definition_from_data(
            "Gate with rollback",
            1,
            {"subtasks": [{"key": "g", "kind": "APPROVAL_TASK", "rollback": {"x": 1}}]},
        )
