"""Approve and reject: a person's decision on a waiting approval gate.

A gate (NodeType.APPROVAL_TASK) waits RUNNING, holding no worker, until someone decides
(services.approvals). Approving ends it successful and the steps after it run; rejecting
ends it failed, and the task stops there as after any failure (retry the gate to ask
again, skip it, or roll the task back). Both need a reason.

Who may decide is the gate's own setting, checked here under the task's lock: the verb's
permission in the task's cluster (the caller's access check), the gate's permission when
it names another one, the gate's role when it names one, and never the person who
started the task unless the gate allows it (four eyes).
"""

from __future__ import annotations

from django.db import transaction

from taskcenter.core.errors import InvalidParameter, NotPermitted
from taskcenter.tasks.audit import Action, actor_name
from taskcenter.tasks.definitions import APPROVAL_PERMISSION, approval_settings
from taskcenter.tasks.models import NodeType, SubtaskInstance, SubtaskStatus, TaskInstance
from taskcenter.tasks.services.approvals import decision, gate_end
from taskcenter.tasks.services.progress import audit_subtask_change, set_task
from taskcenter.tasks.verbs.common import (
    Refusal,
    invalid_state,
    lock_subtask,
    raise_if_refused,
    refusal,
)


def subtask_approve(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    """Approve a waiting gate: it ends successful and the steps after it run."""
    return _decide(task_id, subtask_id, actor, reason, approved=True)


def subtask_reject(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    """Reject a waiting gate: it ends failed, and the task with it."""
    return _decide(task_id, subtask_id, actor, reason, approved=False)


def _decide(task_id: int, subtask_id: int, actor, reason: str, *, approved: bool):
    word = "approve" if approved else "reject"
    reason = (reason or "").strip()
    if not reason:
        raise InvalidParameter.because("reason", f"a reason is required to {word}.")
    with transaction.atomic():
        task, subtask = lock_subtask(task_id, subtask_id)
        raise_if_refused(approval_refusal(subtask, word) or approver_refusal(actor, task, subtask))
        who = actor_name(actor)
        kind = "approved" if approved else "rejected"
        if not gate_end(
            task_id=task.pk,
            subtask=subtask,
            approved=approved,
            result=decision(kind, who, reason),
            line=f"{kind} by {who}: {reason}",
        ):
            raise invalid_state(subtask, word)
        audit_subtask_change(
            actor,
            Action.APPROVE if approved else Action.REJECT,
            task,
            subtask,
            SubtaskStatus.RUNNING,
            SubtaskStatus.SUCCESSFUL if approved else SubtaskStatus.FAILED,
            reason,
        )
        set_task(task)
        subtask.refresh_from_db()
    return subtask


def approval_refusal(subtask: SubtaskInstance, word: str = "approve") -> Refusal | None:
    """Why the gate cannot be decided now, whoever asks."""
    if subtask.node_type != NodeType.APPROVAL_TASK:
        return refusal(subtask, word, "Only an approval gate is approved or rejected.")
    if subtask.status != SubtaskStatus.RUNNING:
        return refusal(subtask, word, "This approval is not waiting for a decision.")
    return None


def approval_offered(subtask: SubtaskInstance) -> bool:
    return subtask.node_type == NodeType.APPROVAL_TASK and subtask.status == SubtaskStatus.RUNNING


def approver_refusal(actor, task: TaskInstance, subtask: SubtaskInstance | None) -> Refusal | None:
    """Why `actor` may not decide this gate, by the gate's own settings (None: they may).
    The verb's permission and cluster scope are the caller's access check."""
    if actor is None or subtask is None or subtask.node_type != NodeType.APPROVAL_TASK:
        return None
    gate = approval_settings(subtask.action)
    if not gate["starterMayApprove"] and task.creator_id is not None:
        if task.creator_id == actor.pk:
            why = "You started this task: another person must approve or reject it (four eyes)."
            return Refusal(NotPermitted(why), why)
    role = gate["role"]
    if role and not actor.is_superuser and not actor.groups.filter(name=role).exists():
        why = f"Only holders of the role {role} may decide this approval."
        return Refusal(NotPermitted(why), why)
    permission = gate["permission"]
    if permission != APPROVAL_PERMISSION and not actor.has_perm(permission):
        why = f"Deciding this approval needs the permission {permission}."
        return Refusal(NotPermitted(why), why)
    return None
