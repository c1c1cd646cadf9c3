"""The operator's operations, each described once: what it is called, where it is reached,
who may run it, what it writes to the audit trail, how the pages word it, and when it is
refused.

The API (taskcenter.api.views), the pages and their buttons (taskcenter.dashboard), the
permission checks (taskcenter.accounts.access) and the refusal messages all read this
table. Whether an operation is allowed now is decided by its service's refusal predicate
(taskcenter.tasks.services.operations), which the service raises on and the page shows as
the reason a button is disabled: the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskcenter.tasks import services
from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import SubtaskInstance, TaskInstance
from taskcenter.tasks.services import Refusal

# The tasks app's permissions that the operations need (declared on the models' Meta).
PERM_RETRY = "tasks.retry_taskinstance"
PERM_ROLLBACK = "tasks.rollback_taskinstance"
PERM_SKIP = "tasks.skip_subtaskinstance"
PERM_CANCEL = "tasks.cancel_subtaskinstance"
# Stopping a whole task is a bigger step than stopping one subtask: a permission of its own.
PERM_CANCEL_TASK = "tasks.cancel_taskinstance"


@dataclass(frozen=True)
class Confirmation:
    """The confirmation dialog. Placeholders: {task}, {name}, {subtask}, {next_run}."""

    title: str
    body: str
    button: str


@dataclass(frozen=True)
class OperationSpec:
    key: str  # the name the pages and permission checks use
    on_subtask: bool
    url_segment: str  # the last segment of its API and page URLs
    permission: str
    audit_action: str
    label: str  # the button's text
    verb: str  # "Your role does not allow you to <verb>."
    hint: str  # what an enabled button does
    confirmation: Confirmation
    done: str  # the flash after it ran; placeholders {task}, {subtask}
    already: str  # "<actor> already <already>" when someone else got there first
    reason_required: bool
    danger: bool
    service: Callable[..., Any]
    refusal: Callable[[TaskInstance, SubtaskInstance | None], Refusal | None]
    # Skip words itself differently when the failed step was a rollback.
    hint_in_rollback: str = ""
    confirmation_in_rollback: Confirmation | None = None

    def refused(self, task: TaskInstance, subtask: SubtaskInstance | None = None):
        """None when the state allows the operation now; else why not."""
        return self.refusal(task, subtask)

    def run(self, *, task_id: int, subtask_id: int | None, actor, reason: str, **options):
        """Run the service; `options` are the service's own keywords (cancel's `queued`)."""
        if self.on_subtask:
            return self.service(
                task_id=task_id, subtask_id=subtask_id, actor=actor, reason=reason, **options
            )
        return self.service(task_id=task_id, actor=actor, reason=reason, **options)

    def hint_for(self, subtask: SubtaskInstance | None) -> str:
        if subtask is not None and subtask.is_rollback and self.hint_in_rollback:
            return self.hint_in_rollback
        return self.hint

    def confirmation_for(self, subtask: SubtaskInstance | None) -> Confirmation:
        if subtask is not None and subtask.is_rollback and self.confirmation_in_rollback:
            return self.confirmation_in_rollback
        return self.confirmation


def _of_subtask(predicate: Callable[[SubtaskInstance], Refusal | None]):
    def refusal(task: TaskInstance, subtask: SubtaskInstance | None) -> Refusal | None:
        assert subtask is not None, "a subtask operation needs its subtask"
        return predicate(subtask)

    return refusal


OPERATIONS: dict[str, OperationSpec] = {
    spec.key: spec
    for spec in (
        OperationSpec(
            key="retry",
            on_subtask=False,
            url_segment="retry",
            permission=PERM_RETRY,
            audit_action=Action.RETRY,
            label="Retry",
            verb="retry tasks",
            hint="Run every failed subtask again and continue the task.",
            confirmation=Confirmation(
                "Retry task #{task} “{name}”?",
                "Every failed subtask runs again and the task continues from where it stopped.",
                "Retry task",
            ),
            done="Retry started: the failed subtasks of task #{task} run again.",
            already="retried this task",
            reason_required=False,
            danger=False,
            service=services.task_retry,
            refusal=lambda task, _subtask: services.task_retry_refusal(task),
        ),
        OperationSpec(
            key="rollback",
            on_subtask=False,
            url_segment="rollback",
            permission=PERM_ROLLBACK,
            audit_action=Action.ROLLBACK,
            label="Roll back",
            verb="roll back tasks",
            hint="Undo every subtask that has run, in reverse order.",
            confirmation=Confirmation(
                "Roll back task #{task} “{name}”?",
                "Every subtask that has run is undone, in reverse order. This is OCP's “give "
                "up”: the task ends as rolled back, not as done.",
                "Roll back task",
            ),
            done="Rollback started: task #{task} is being undone step by step.",
            already="rolled this task back",
            reason_required=True,
            danger=True,
            service=services.task_rollback,
            refusal=lambda task, _subtask: services.task_rollback_refusal(task),
        ),
        OperationSpec(
            key="cancel_task",
            on_subtask=False,
            url_segment="cancel",
            permission=PERM_CANCEL_TASK,
            audit_action=Action.CANCEL,
            label="Cancel task",
            verb="cancel tasks",
            hint="Stop every running and queued subtask of this task; they end as failed "
            "(canceled).",
            confirmation=Confirmation(
                "Cancel task #{task} “{name}”?",
                "Every running subtask is stopped by its worker and every queued one ends "
                "at once, without a worker; they end as failed (canceled) and the task "
                "stops. You can retry it later.",
                "Cancel task",
            ),
            done="Cancel requested: the running and queued subtasks of task #{task} stop.",
            already="canceled this task",
            reason_required=True,
            danger=True,
            service=services.task_cancel,
            refusal=lambda task, _subtask: services.task_cancel_refusal(task),
        ),
        OperationSpec(
            key="subtask_retry",
            on_subtask=True,
            url_segment="retry",
            permission=PERM_RETRY,
            audit_action=Action.SUBTASK_RETRY,
            label="Retry",
            verb="retry subtasks",
            hint="Run this subtask again.",
            confirmation=Confirmation(
                "Retry “{subtask}”?",
                "This subtask runs again (run {next_run}); the task continues when it succeeds.",
                "Retry subtask",
            ),
            done="“{subtask}” runs again.",
            already="retried “{subtask}”",
            reason_required=False,
            danger=False,
            service=services.subtask_retry,
            refusal=_of_subtask(services.subtask_retry_refusal),
        ),
        OperationSpec(
            key="skip",
            on_subtask=True,
            url_segment="skip",
            permission=PERM_SKIP,
            audit_action=Action.SKIP,
            label="Skip",
            verb="skip subtasks",
            hint="Set this subtask to successful without running it (set to success).",
            hint_in_rollback="Treat this step's rollback as done without running it.",
            confirmation=Confirmation(
                "Skip “{subtask}”?",
                "The subtask is set to successful without running, and the steps after it go "
                "on. Use this only when its work was done another way.",
                "Skip subtask",
            ),
            confirmation_in_rollback=Confirmation(
                "Skip the rollback of “{subtask}”?",
                "The rollback of this step is treated as done without running it, and the "
                "rollback goes on with the steps before it.",
                "Skip rollback",
            ),
            done="“{subtask}” was skipped (set to success); the task goes on.",
            already="skipped “{subtask}”",
            reason_required=True,
            danger=True,
            service=services.subtask_skip,
            refusal=_of_subtask(services.subtask_skip_refusal),
        ),
        OperationSpec(
            key="cancel",
            on_subtask=True,
            url_segment="cancel",
            permission=PERM_CANCEL,
            audit_action=Action.CANCEL,
            label="Cancel",
            verb="cancel subtasks",
            hint="Stop this subtask (running, or queued for a worker); it ends as failed "
            "(canceled).",
            confirmation=Confirmation(
                "Cancel “{subtask}”?",
                "A running subtask is stopped by its worker; a queued one ends at once, "
                "without a worker. It ends as failed (canceled) and the task stops after it. "
                "You can retry it later.",
                "Cancel subtask",
            ),
            done="Cancel requested: “{subtask}” stops (at once if it was queued).",
            already="canceled “{subtask}”",
            reason_required=False,
            danger=True,
            service=services.subtask_cancel,
            refusal=_of_subtask(services.subtask_cancel_refusal),
        ),
    )
}

TASK_OPERATIONS = tuple(spec for spec in OPERATIONS.values() if not spec.on_subtask)
SUBTASK_OPERATIONS = tuple(spec for spec in OPERATIONS.values() if spec.on_subtask)
# Cancel task writes one CANCEL row per subtask, as Cancel does: a row is read as the
# subtask's cancel (the later entry of the two wins).
BY_AUDIT_ACTION = {spec.audit_action: spec for spec in OPERATIONS.values()}


def operation(key: str) -> OperationSpec | None:
    return OPERATIONS.get(key)


def subtask_operation_at(url_segment: str) -> OperationSpec | None:
    """The subtask operation reached at .../subtasks/<id>/<url_segment>."""
    return next((s for s in SUBTASK_OPERATIONS if s.url_segment == url_segment), None)


def task_operation_at(url_segment: str) -> OperationSpec | None:
    return next((s for s in TASK_OPERATIONS if s.url_segment == url_segment), None)
