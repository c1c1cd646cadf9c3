"""Each task and subtask state shows the right buttons, enabled exactly when the verb
would accept it, and a disabled one says the verb's own reason.

For every verb and every task and subtask state, the buttons an all-permitted user sees
are compared with the states that offer the verb, and the enabled ones with what the verb
does when asked. The states are set by hand on a task started through the verbs: most of
the combinations cannot be reached quickly (or at all) by driving the engine, and this
test is about the rule, not about how a task gets there.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction

from taskcenter.core.errors import InvalidState, RollbackProhibited
from taskcenter.dashboard import presenters
from taskcenter.tasks import verbs
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
)
from tests.factories import APPROVAL_GATE, subtask_named, waiting_approval

# Rollback can be prohibited by the task's flag or by a subtask that has run.
TASK_STATES = list(
    itertools.product(TaskStatus.values, TaskRunMode.values, ["", "task", "subtask"])
)
SUBTASK_STATES = list(itertools.product(SubtaskStatus.values, SubtaskRunMode.values, [False, True]))


class _Undo(Exception):
    """Raised to roll back an operation that was only tried."""


def _accepted(task: TaskInstance, subtask: SubtaskInstance, key: str) -> bool:
    verb = verbs.VERBS[key]
    try:
        with transaction.atomic():
            verb.perform(task, subtask.pk, actor=None, reason="tried")
            raise _Undo
    except _Undo:
        return True
    except (InvalidState, RollbackProhibited):
        return False


def _buttons(user, task: TaskInstance, subtask: SubtaskInstance) -> list[presenters.Button]:
    """The task's and the subtask's buttons, with each disabled one's reason checked
    against the verb's refusal."""
    task = TaskInstance.objects.get(pk=task.pk)
    subtask = SubtaskInstance.objects.get(pk=subtask.pk)
    buttons = presenters.task_buttons(user, task) + presenters.subtask_buttons(user, subtask, task)
    for button in buttons:
        if not button.enabled:
            refused = verbs.VERBS[button.op].refused(task, subtask)
            assert refused is not None and button.why == refused.why
    return buttons


def _offered(user, task: TaskInstance, subtask: SubtaskInstance) -> set[str]:
    return {button.op for button in _buttons(user, task, subtask) if button.enabled}


def _shown(user, task: TaskInstance, subtask: SubtaskInstance) -> set[str]:
    return {button.op for button in _buttons(user, task, subtask)}


@pytest.fixture
def started(db, django_user_model):
    user = django_user_model.objects.create_superuser("root")  # no password: nothing to hash
    task = verbs.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 0.1}, creator=user
    )
    return user, task, task.subtasks.order_by("series_id").first()


@pytest.mark.parametrize(
    "task_state",
    TASK_STATES,
    ids=lambda s: f"{s[0]}/{s[1]}" + (f"/prohibited-by-{s[2]}" if s[2] else ""),
)
def test_task_buttons_match_the_verbs_in_every_state(started, task_state):
    user, task, subtask = started
    status, operation, prohibited_by = task_state
    # Hand-built state (see the module's docstring).
    TaskInstance.objects.filter(pk=task.pk).update(
        status=status, operation=operation, prohibit_rollback=prohibited_by == "task"
    )
    # A subtask that has run, in a state that offers no subtask operation, so only task
    # buttons count.
    SubtaskInstance.objects.filter(pk=subtask.pk).update(
        status=SubtaskStatus.SUCCESSFUL,
        start_time=task.start_time,
        prohibit_rollback=prohibited_by == "subtask",
    )
    accepted = {
        key for key in ("retry", "rollback", "cancel_task") if _accepted(task, subtask, key)
    }
    assert _offered(user, task, subtask) == accepted
    shown = set()
    if status != TaskStatus.SUCCESSFUL:
        shown = {"retry", "rollback"} | ({"cancel_task"} if status == TaskStatus.RUNNING else set())
    assert _shown(user, task, subtask) == shown


@pytest.mark.parametrize(
    "subtask_state",
    SUBTASK_STATES,
    ids=lambda s: f"{s[0]}/{s[1]}{'/prohibits' if s[2] else ''}",
)
def test_subtask_buttons_match_the_verbs_in_every_state(started, subtask_state):
    user, task, subtask = started
    status, operation, prohibit = subtask_state
    # Hand-built state (see the module's docstring); the task succeeded, so it offers no
    # task operation and only subtask buttons count.
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCESSFUL)
    SubtaskInstance.objects.filter(pk=subtask.pk).update(
        status=status, operation=operation, prohibit_rollback=prohibit
    )
    accepted = {key for key in ("subtask_retry", "skip", "cancel") if _accepted(task, subtask, key)}
    assert _offered(user, task, subtask) == accepted
    shown = set()
    if status == SubtaskStatus.FAILED:
        shown = {"subtask_retry", "skip"}
    elif status in (SubtaskStatus.READY, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING):
        shown = {"cancel"}
    assert _shown(user, task, subtask) == shown


def test_every_verb_is_covered():
    assert set(verbs.VERBS) == {
        "retry",
        "rollback",
        "cancel_task",
        "subtask_retry",
        "skip",
        "cancel",
        "approve",
        "reject",
    }


@pytest.fixture
def gate(db, django_user_model):
    user = django_user_model.objects.create_superuser("root")
    task = waiting_approval()  # started by nobody: four eyes do not stop the superuser
    return user, task, subtask_named(task, APPROVAL_GATE)


@pytest.mark.parametrize("status", SubtaskStatus.values)
def test_approval_buttons_match_the_verbs_in_every_gate_state(gate, status):
    user, task, subtask = gate
    # Hand-built state (see the module's docstring): only the gate's buttons count.
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCESSFUL)
    SubtaskInstance.objects.filter(pk=subtask.pk).update(status=status)
    decisions = {"approve", "reject"}
    accepted = {key for key in decisions if _accepted(task, subtask, key)}
    assert accepted == (decisions if status == SubtaskStatus.RUNNING else set())
    assert _offered(user, task, subtask) & decisions == accepted
    assert _shown(user, task, subtask) & decisions == accepted


def test_a_refused_button_gives_the_verbs_reason_in_words(started):
    user, task, subtask = started
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    task.refresh_from_db()
    retry = next(b for b in presenters.task_buttons(user, task) if b.op == "retry")
    assert not retry.enabled
    assert retry.why == verbs.task_retry_refusal(task).why


@pytest.mark.parametrize("subtask_status", SubtaskStatus.values)
def test_cancel_task_button_matches_the_verb_in_every_subtask_state(started, subtask_status):
    user, task, subtask = started
    # Hand-built state (see the module's docstring): a running task whose first subtask
    # is in each state, the others PENDING behind it.
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    SubtaskInstance.objects.filter(pk=subtask.pk).update(status=subtask_status)
    offered = "cancel_task" in _offered(user, task, subtask)
    assert offered == _accepted(task, subtask, "cancel_task")
    assert offered == (subtask_status in (SubtaskStatus.READY, SubtaskStatus.RUNNING))
