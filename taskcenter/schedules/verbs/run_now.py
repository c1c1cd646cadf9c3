"""Run a plan's job now: one run, whatever the overlap policy (a person asked for it), the
plan's schedule left as it is.

The run is the fire of a new ONCE item, kept for the record (the context points at it),
so it is claimed, started, enqueued on commit and audited like any fire
(taskcenter.schedules.firing). Refused while the plan's job class is not registered in
this installation; always offered.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from taskcenter.core.errors import TaskCenterError
from taskcenter.schedules import firing
from taskcenter.schedules.models import Fire, Plan, PlanItem, TriggerType
from taskcenter.schedules.verbs.common import Refusal, lock_plan, raise_if_refused


def plan_run_now(*, plan_id: int, actor, now: datetime | None = None) -> Fire:
    """The fire of the run started (its task is the new context)."""
    with transaction.atomic():
        plan = lock_plan(plan_id)
        _, fire = start_run(plan, actor, now or timezone.now())
    return fire


def plan_run_now_refusal(plan: Plan) -> Refusal | None:
    try:
        firing.job_definition_of(plan)
    except TaskCenterError as exc:
        return Refusal(exc, f"This plan's job cannot run here: {exc.message}")
    return None


def start_run(plan: Plan, actor, now: datetime) -> tuple[PlanItem, Fire]:
    """In the caller's transaction, with the plan locked: the ONCE item and its started
    fire; a start the engine refuses is an error to the caller."""
    raise_if_refused(plan_run_now_refusal(plan))
    item = PlanItem.objects.create(
        plan=plan, trigger_type=TriggerType.ONCE, created_by=actor, updated_by=actor
    )
    fire = firing.fire_start(plan=plan, item=item, fire_time=now, actor=actor, manual=True)
    assert fire is not None  # a new item: nobody else can claim its fire
    return item, fire
