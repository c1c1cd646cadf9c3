"""Cancel a plan's runs: stop its running contexts through the engine's cancel.

Always possible (with nothing running it stops nothing and says so); a page offers it
while one of the plan's runs is running.
"""

from __future__ import annotations

from django.db import transaction

from taskcenter.core.errors import InvalidState, TaskNotFound
from taskcenter.schedules import selectors
from taskcenter.schedules.models import Plan
from taskcenter.schedules.verbs.common import audit_plan, lock_plan
from taskcenter.tasks import verbs as task_verbs

PLAN_CANCEL = "PLAN_CANCEL"


def plan_cancel(*, plan_id: int, actor) -> int:
    """Every RUNNING subtask of each running context is asked to stop, and every queued
    (READY) one ends at once; either way it ends FAILED/CANCEL, so the context ends.
    Returns how many subtasks were stopped or asked to stop."""
    with transaction.atomic():
        plan = lock_plan(plan_id)
        audit_plan(actor, PLAN_CANCEL, plan)
    asked = 0
    for task_id, subtask_id in selectors.plan_stoppable_subtasks(plan_id=plan.pk):
        try:
            task_verbs.subtask_cancel(
                task_id=task_id, subtask_id=subtask_id, actor=actor, reason=f"plan {plan.pk}"
            )
            asked += 1
        except (InvalidState, TaskNotFound):
            pass  # it ended meanwhile: nothing left to stop
    return asked


def plan_cancel_offered(plan: Plan) -> bool:
    return selectors.plan_running_context(plan_id=plan.pk) is not None
