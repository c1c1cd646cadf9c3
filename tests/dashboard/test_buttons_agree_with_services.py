"""A page offers an operation exactly when its service would accept it.

For every operation and every task and subtask state, the buttons an all-permitted user
sees (enabled ones) are compared with what the services do when asked. The states are set
by hand on a task started through the services: most of the combinations cannot be
reached quickly (or at all) by driving the engine, and this test is about the rule, not
about how a task gets there.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction

from taskcenter.core.errors import InvalidState, RollbackProhibited
from taskcenter.dashboard import presenters
from taskcenter.tasks import services
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskOperation,
    SubtaskStatus,
    TaskInstance,
    TaskOperation,
    TaskStatus,
)
from taskcenter.tasks.operations import OPERATIONS

# Rollback can be prohibited by the task's flag or by a subtask that has run.
TASK_STATES = list(
    itertools.product(TaskStatus.values, TaskOperation.values, ["", "task", "subtask"])
)
SUBTASK_STATES = list(
    itertools.product(SubtaskStatus.values, SubtaskOperation.values, [False, True])
)


class _Undo(Exception):
    """Raised to roll back an operation that was only tried."""


def _accepted(task: TaskInstance, subtask: SubtaskInstance, key: str) -> bool:
    spec = OPERATIONS[key]
    try:
        with transaction.atomic():
            spec.run(task_id=task.pk, subtask_id=subtask.pk, actor=None, reason="tried")
            raise _Undo
    except _Undo:
        return True
    except (InvalidState, RollbackProhibited):
        return False


def _offered(user, task: TaskInstance, subtask: SubtaskInstance) -> set[str]:
    task = TaskInstance.objects.get(pk=task.pk)
    subtask = SubtaskInstance.objects.get(pk=subtask.pk)
    buttons = presenters.task_buttons(user, task) + presenters.subtask_buttons(user, subtask, task)
    return {button.op for button in buttons if button.enabled}


@pytest.fixture
def started(db, django_user_model):
    user = django_user_model.objects.create_superuser("root")  # no password: nothing to hash
    task = services.task_start(
        definition_name="Migrate tenant", parameters={"step_seconds": 0.1}, creator=user
    )
    return user, task, task.subtasks.order_by("series_id").first()


@pytest.mark.parametrize(
    "task_state",
    TASK_STATES,
    ids=lambda s: f"{s[0]}/{s[1]}" + (f"/prohibited-by-{s[2]}" if s[2] else ""),
)
def test_task_buttons_match_the_services_in_every_state(started, task_state):
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


@pytest.mark.parametrize(
    "subtask_state",
    SUBTASK_STATES,
    ids=lambda s: f"{s[0]}/{s[1]}{'/prohibits' if s[2] else ''}",
)
def test_subtask_buttons_match_the_services_in_every_state(started, subtask_state):
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


def test_every_operation_is_covered():
    assert set(OPERATIONS) == {
        "retry",
        "rollback",
        "cancel_task",
        "subtask_retry",
        "skip",
        "cancel",
    }


def test_a_refused_button_gives_the_services_reason_in_words(started):
    user, task, subtask = started
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    task.refresh_from_db()
    retry = next(b for b in presenters.task_buttons(user, task) if b.op == "retry")
    assert not retry.enabled
    assert retry.why == services.task_retry_refusal(task).why


@pytest.mark.parametrize("subtask_status", SubtaskStatus.values)
def test_cancel_task_button_matches_the_service_in_every_subtask_state(started, subtask_status):
    user, task, subtask = started
    # Hand-built state (see the module's docstring): a running task whose first subtask
    # is in each state, the others PENDING behind it.
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    SubtaskInstance.objects.filter(pk=subtask.pk).update(status=subtask_status)
    offered = "cancel_task" in _offered(user, task, subtask)
    assert offered == _accepted(task, subtask, "cancel_task")
    assert offered == (subtask_status in (SubtaskStatus.READY, SubtaskStatus.RUNNING))
