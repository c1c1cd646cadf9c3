"""The verbs of the tasks app: every change an operator, a client or the scheduler asks of
tasks, one module per family:

    run        start tasks (task_start, and task_start_many for a scheduler's tick)
    retry      task retry, subtask retry
    rollback   task rollback
    skip       subtask skip
    cancel     subtask cancel, cancel task
    bulk       one task verb asked of many tasks: judged (the dry run), then done in the
               background, each task by the single verb
    approval   approve, reject (a waiting approval gate)

Each verb owns its doing (one transaction: lock, compare-and-set, audit entry, work sent
to the workers on commit), its refusal predicate (why the state does not allow it now,
which the verb raises and the pages show as a disabled button's reason) and which states
offer it at all. Nothing else in the app writes audit entries or sends work for an
operator: the engine's own steps (claim, heartbeat, finish, the reaper's verdicts) stay
in taskcenter.tasks.services.

The registry below keeps, per operator verb, only what code needs: its key, where it is
reached, its permission and audit action, and whether it needs a reason. How the pages
word a verb (labels, hints, confirmations, flash messages) is the dashboard's
(taskcenter.dashboard.verb_words).

Callers use this package (`verbs.subtask_retry(...)`, `verbs.VERBS["skip"]`), never its
modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import SubtaskInstance, TaskInstance
from taskcenter.tasks.verbs.approval import (
    approval_offered,
    approval_refusal,
    approver_refusal,
    subtask_approve,
    subtask_reject,
)
from taskcenter.tasks.verbs.bulk import (
    BULK_MAX,
    BULK_VERBS,
    BulkProgress,
    BulkSelection,
    Judgement,
    bulk_judge,
    bulk_problems,
    bulk_progress,
    bulk_start,
    bulk_stop,
    bulk_stop_refusal,
    bulk_work,
    bulks_stalled,
)
from taskcenter.tasks.verbs.cancel import (
    subtask_cancel,
    subtask_cancel_offered,
    subtask_cancel_refusal,
    task_cancel,
    task_cancel_offered,
    task_cancel_refusal,
)
from taskcenter.tasks.verbs.common import Refusal
from taskcenter.tasks.verbs.retry import (
    subtask_retry,
    subtask_retry_offered,
    subtask_retry_refusal,
    task_retry,
    task_retry_offered,
    task_retry_refusal,
)
from taskcenter.tasks.verbs.rollback import (
    task_rollback,
    task_rollback_offered,
    task_rollback_refusal,
)
from taskcenter.tasks.verbs.run import TaskStart, task_start, task_start_many
from taskcenter.tasks.verbs.skip import subtask_skip, subtask_skip_offered, subtask_skip_refusal

# The tasks app's permissions that the operator verbs need (declared on the models' Meta).
PERM_RETRY = "tasks.retry_taskinstance"
PERM_ROLLBACK = "tasks.rollback_taskinstance"
PERM_SKIP = "tasks.skip_subtaskinstance"
PERM_CANCEL = "tasks.cancel_subtaskinstance"
# Stopping a whole task is a bigger step than stopping one subtask: a permission of its own.
PERM_CANCEL_TASK = "tasks.cancel_taskinstance"
# Deciding an approval gate (its own settings may ask for more: verbs.approval).
PERM_APPROVE = "tasks.approve_subtaskinstance"

TaskOrSubtask = Callable[[TaskInstance, SubtaskInstance | None], Any]


@dataclass(frozen=True)
class Verb:
    """An operator verb on a task or one of its subtasks, as code needs it."""

    key: str  # the name the pages, the words and the permission checks use
    on_subtask: bool
    url_segment: str  # the last segment of its API and page URLs
    permission: str
    audit_action: str
    reason_required: bool
    danger: bool  # undoes work or stops it: the pages ask twice and colour it
    do: Callable[..., Any]  # the verb itself (task_id=, [subtask_id=,] actor=, reason=)
    refusal: Callable[[TaskInstance, SubtaskInstance | None], Refusal | None]
    offered: Callable[[TaskInstance, SubtaskInstance | None], bool]
    # Why this person may not do it here, beyond permission and scope (an approval's four
    # eyes and role); None for the verbs anyone permitted may do.
    actor_refusal: Callable[[Any, TaskInstance, SubtaskInstance | None], Refusal | None] | None = (
        None
    )

    def refused(self, task: TaskInstance, subtask: SubtaskInstance | None = None, actor=None):
        """None when the state allows the verb now (and, given `actor`, allows it to
        them); else why not."""
        refused = self.refusal(task, subtask)
        if refused is None and actor is not None and self.actor_refusal is not None:
            refused = self.actor_refusal(actor, task, subtask)
        return refused

    def is_offered(self, task: TaskInstance, subtask: SubtaskInstance | None = None) -> bool:
        """Whether the state shows the verb at all (enabled or not)."""
        return self.offered(task, subtask)

    def perform(
        self, task: TaskInstance, subtask_id: int | None = None, *, actor, reason: str, **options
    ):
        """Do the verb on `task`, the task the caller's access check returned (the verb
        reads its state again under the lock); `options` are the verb's own keywords
        (subtask cancel's `queued`)."""
        if self.on_subtask:
            return self.do(
                task_id=task.pk, subtask_id=subtask_id, actor=actor, reason=reason, **options
            )
        return self.do(task_id=task.pk, actor=actor, reason=reason, **options)


def _of_task(predicate: Callable[[TaskInstance], Any]) -> TaskOrSubtask:
    return lambda task, _subtask: predicate(task)


def _of_subtask(predicate: Callable[[SubtaskInstance], Any]) -> TaskOrSubtask:
    def of_subtask(task: TaskInstance, subtask: SubtaskInstance | None):
        assert subtask is not None, "a subtask verb needs its subtask"
        return predicate(subtask)

    return of_subtask


VERBS: dict[str, Verb] = {
    verb.key: verb
    for verb in (
        Verb(
            key="retry",
            on_subtask=False,
            url_segment="retry",
            permission=PERM_RETRY,
            audit_action=Action.RETRY,
            reason_required=False,
            danger=False,
            do=task_retry,
            refusal=_of_task(task_retry_refusal),
            offered=_of_task(task_retry_offered),
        ),
        Verb(
            key="rollback",
            on_subtask=False,
            url_segment="rollback",
            permission=PERM_ROLLBACK,
            audit_action=Action.ROLLBACK,
            reason_required=True,
            danger=True,
            do=task_rollback,
            refusal=_of_task(task_rollback_refusal),
            offered=_of_task(task_rollback_offered),
        ),
        Verb(
            key="cancel_task",
            on_subtask=False,
            url_segment="cancel",
            permission=PERM_CANCEL_TASK,
            audit_action=Action.CANCEL,
            reason_required=True,
            danger=True,
            do=task_cancel,
            refusal=_of_task(task_cancel_refusal),
            offered=_of_task(task_cancel_offered),
        ),
        Verb(
            key="subtask_retry",
            on_subtask=True,
            url_segment="retry",
            permission=PERM_RETRY,
            audit_action=Action.SUBTASK_RETRY,
            reason_required=False,
            danger=False,
            do=subtask_retry,
            refusal=_of_subtask(subtask_retry_refusal),
            offered=_of_subtask(subtask_retry_offered),
        ),
        Verb(
            key="skip",
            on_subtask=True,
            url_segment="skip",
            permission=PERM_SKIP,
            audit_action=Action.SKIP,
            reason_required=True,
            danger=True,
            do=subtask_skip,
            refusal=_of_subtask(subtask_skip_refusal),
            offered=_of_subtask(subtask_skip_offered),
        ),
        Verb(
            key="cancel",
            on_subtask=True,
            url_segment="cancel",
            permission=PERM_CANCEL,
            audit_action=Action.CANCEL,
            reason_required=False,
            danger=True,
            do=subtask_cancel,
            refusal=_of_subtask(subtask_cancel_refusal),
            offered=_of_subtask(subtask_cancel_offered),
        ),
        Verb(
            key="approve",
            on_subtask=True,
            url_segment="approve",
            permission=PERM_APPROVE,
            audit_action=Action.APPROVE,
            reason_required=True,
            danger=False,
            do=subtask_approve,
            refusal=_of_subtask(approval_refusal),
            offered=_of_subtask(approval_offered),
            actor_refusal=approver_refusal,
        ),
        Verb(
            key="reject",
            on_subtask=True,
            url_segment="reject",
            permission=PERM_APPROVE,
            audit_action=Action.REJECT,
            reason_required=True,
            danger=True,
            do=subtask_reject,
            refusal=_of_subtask(lambda subtask: approval_refusal(subtask, "reject")),
            offered=_of_subtask(approval_offered),
            actor_refusal=approver_refusal,
        ),
    )
}

TASK_VERBS = tuple(verb for verb in VERBS.values() if not verb.on_subtask)
SUBTASK_VERBS = tuple(verb for verb in VERBS.values() if verb.on_subtask)
# Cancel task writes one CANCEL entry per subtask, as Cancel does: an entry is read as the
# subtask's cancel (the later of the two wins).
BY_AUDIT_ACTION = {verb.audit_action: verb for verb in VERBS.values()}


def verb(key: str) -> Verb | None:
    return VERBS.get(key)


def subtask_verb_at(url_segment: str) -> Verb | None:
    """The subtask verb reached at .../subtasks/<id>/<url_segment>."""
    return next((v for v in SUBTASK_VERBS if v.url_segment == url_segment), None)


def task_verb_at(url_segment: str) -> Verb | None:
    return next((v for v in TASK_VERBS if v.url_segment == url_segment), None)


def offered_verbs(task: TaskInstance, subtask: SubtaskInstance | None = None) -> list[Verb]:
    """The verbs the state shows (enabled or not): the task's when `subtask` is None."""
    pool = SUBTASK_VERBS if subtask is not None else TASK_VERBS
    return [v for v in pool if v.is_offered(task, subtask)]


__all__ = [
    "BULK_MAX",
    "BULK_VERBS",
    "BulkProgress",
    "BulkSelection",
    "Judgement",
    "bulk_judge",
    "bulk_problems",
    "bulk_progress",
    "bulk_start",
    "bulk_stop",
    "bulk_stop_refusal",
    "bulk_work",
    "bulks_stalled",
    "BY_AUDIT_ACTION",
    "PERM_APPROVE",
    "PERM_CANCEL",
    "PERM_CANCEL_TASK",
    "PERM_RETRY",
    "PERM_ROLLBACK",
    "PERM_SKIP",
    "SUBTASK_VERBS",
    "TASK_VERBS",
    "VERBS",
    "Refusal",
    "TaskStart",
    "Verb",
    "offered_verbs",
    "approver_refusal",
    "subtask_approve",
    "subtask_cancel",
    "subtask_cancel_refusal",
    "subtask_retry",
    "subtask_retry_refusal",
    "subtask_skip",
    "subtask_reject",
    "subtask_skip_refusal",
    "subtask_verb_at",
    "task_cancel",
    "task_cancel_refusal",
    "task_retry",
    "task_retry_refusal",
    "task_rollback",
    "task_rollback_refusal",
    "task_start",
    "task_start_many",
    "task_verb_at",
    "verb",
]
