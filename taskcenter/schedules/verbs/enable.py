"""Enable and disable a plan.

Both are always possible (the API answers an enable of an enabled plan with success, and
recomputes its next fire times); a page offers the one that changes the plan's state.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from taskcenter.schedules.models import Plan
from taskcenter.schedules.verbs.common import audit_plan, lock_plan
from taskcenter.schedules.verbs.items import reschedule
from taskcenter.tasks import events

PLAN_ENABLE = "PLAN_ENABLE"
PLAN_DISABLE = "PLAN_DISABLE"


def plan_enable(*, plan_id: int, actor, now: datetime | None = None) -> Plan:
    """Enabling computes the next fire times from now, so the times passed while the plan
    was disabled are neither run nor recorded as missed."""
    return plan_set_enabled(plan_id=plan_id, actor=actor, enabled=True, now=now)


def plan_disable(*, plan_id: int, actor, now: datetime | None = None) -> Plan:
    return plan_set_enabled(plan_id=plan_id, actor=actor, enabled=False, now=now)


def plan_set_enabled(*, plan_id: int, actor, enabled: bool, now: datetime | None = None) -> Plan:
    with transaction.atomic():
        plan = lock_plan(plan_id)
        previous = plan.enabled
        plan.enabled = enabled
        plan.updated_by = actor
        plan.save(update_fields=["enabled", "updated_by", "updated_at"])
        reschedule(plan, now or timezone.now())
        audit_plan(
            actor,
            PLAN_ENABLE if enabled else PLAN_DISABLE,
            plan,
            from_status=_enabled_word(previous),
            to_status=_enabled_word(enabled),
        )
        if previous and not enabled:
            _emit_disabled(plan, actor)
    return plan


def _emit_disabled(plan: Plan, actor) -> None:
    now = timezone.now()
    kind = events.Kind.PLAN_DISABLED
    events.emit(
        events.DomainEvent(
            kind=kind,
            key=f"{kind}:{plan.pk}:{now.isoformat()}",
            object_type="plan",
            object_id=plan.pk,
            name=f"{plan.entity_group}/{plan.entity_key}",
            status="DISABLED",
            cluster_id=plan.cluster_id,
            plan_id=plan.pk,
            occurred_at=now,
            detail={"by": actor.get_username() if actor is not None else "system"},
        )
    )


def plan_enable_offered(plan: Plan) -> bool:
    return not plan.enabled


def plan_disable_offered(plan: Plan) -> bool:
    return plan.enabled


def _enabled_word(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"
