"""Delete a plan and its items; its past contexts (tasks and their fire rows) stay.

Always possible and always offered.
"""

from __future__ import annotations

from django.db import transaction

from taskcenter.schedules.models import PlanItem
from taskcenter.schedules.verbs.common import audit_plan, lock_plan

PLAN_DELETE = "PLAN_DELETE"


def plan_delete(*, plan_id: int, actor) -> None:
    with transaction.atomic():
        # The items first, in the scheduler's order, then the plan: deleting the plan's key
        # conflicts with the fire's key-share lock, so the delete must never hold the plan
        # while it waits for an item the scheduler holds.
        list(
            PlanItem.objects.select_for_update()
            .filter(plan_id=plan_id)
            .order_by("next_fire_at", "pk")
            .values_list("pk", flat=True)
        )
        plan = lock_plan(plan_id)
        audit_plan(actor, PLAN_DELETE, plan)
        plan.delete()
