"""What the plan verbs share: the plan's lock, its audit entry, and the refusal."""

from __future__ import annotations

from taskcenter.core.errors import TaskNotFound
from taskcenter.schedules.models import Plan
from taskcenter.tasks.audit import audit_record
from taskcenter.tasks.verbs import Refusal

__all__ = ["Refusal", "audit_plan", "lock_plan", "raise_if_refused"]


def lock_plan(plan_id: int) -> Plan:
    """The plan, locked for a change that keeps its key (PostgreSQL: FOR NO KEY UPDATE).

    The scheduler holds a due item and then inserts the fire row, whose foreign key takes
    a key-share lock on the plan. A plan change locks the plan and then its items, the
    other way round: with FOR UPDATE the two would wait for each other until PostgreSQL
    failed one of them (a deadlock). FOR NO KEY UPDATE does not block the key-share lock,
    so the fire goes through and the change follows it.
    """
    try:
        return Plan.objects.select_for_update(no_key=True).get(pk=plan_id)
    except Plan.DoesNotExist:
        raise TaskNotFound(f"The {plan_id} schedule does not exist.") from None


def audit_plan(actor, action: str, plan: Plan, **fields) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=f"plan {plan.pk} {plan.entity_group}/{plan.entity_key}",
        reason=plan.title,
        cluster_id=plan.cluster_id,
        **fields,
    )


def raise_if_refused(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise refusal.error
