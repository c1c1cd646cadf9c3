"""Create and edit a plan.

Identity: a plan is its job, entityGroup + entityKey (unique together). POST for a job
that has a plan edits that plan:
  - execDetail, clusterId and tenantId (where its runs go), enabled, misfirePolicy and
    overlapPolicy, when given, replace the plan's;
  - CRON_JOB and DEPENDENCY items, when the POST has any, replace the plan's schedule as a
    whole (as PUT does: an item sent with its id is kept and updated, the others removed);
  - ONCE items start a run now each (the run-now verb) and leave the schedule as it was,
    so "run now" never loses a schedule. A ONCE item is kept (contexts point at it) but
    is not part of the plan's schedule: GET shows CRON_JOB and DEPENDENCY items only.

Bad input raises InvalidParameter naming the field, and then nothing is saved. Editing is
always possible and always offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from taskcenter.core.errors import InvalidParameter, InvalidState
from taskcenter.schedules import jobs, selectors
from taskcenter.schedules.inputs import ItemInput, PlanChange, PlanInput
from taskcenter.schedules.models import Fire, Plan, PlanItem, TriggerType
from taskcenter.schedules.verbs.common import audit_plan, lock_plan
from taskcenter.schedules.verbs.items import SCHEDULE_ITEM_TYPES, replace_items, reschedule
from taskcenter.schedules.verbs.run_now import start_run

PLAN_CREATE = "PLAN_CREATE"
PLAN_UPDATE = "PLAN_UPDATE"
# The plan fields a POST replaces when it names them.
_POLICY_FIELDS = ("enabled", "misfire_policy", "overlap_policy")


@dataclass
class Submitted:
    plan: Plan
    items: list[PlanItem]  # the items of this request, as the answer shows them
    context_ids: list[int]  # the runs its ONCE items started

    @classmethod
    def of(cls, plan: Plan, items: list[PlanItem], runs: list[tuple[PlanItem, Fire]]):
        return cls(
            plan=plan,
            items=items + [item for item, _ in runs],
            context_ids=[fire.task_id for _, fire in runs if fire.task_id],
        )


def plan_submit(*, actor, data: PlanInput, now: datetime | None = None) -> Submitted:
    """POST /api/schedules and the plan form: create the job's plan, or edit it, and run
    its ONCE items (see the module docstring)."""
    now = now or timezone.now()
    schedule_items = [i for i in data.items if i.trigger_type in SCHEDULE_ITEM_TYPES]
    with transaction.atomic():
        plan, creating = _plan_of_job(data, actor)
        _apply(plan, data, actor)
        _save(plan, data)
        items = replace_items(plan, schedule_items, actor, now) if schedule_items else []
        if creating or schedule_items or data.exec_detail is not None:
            audit_plan(actor, PLAN_CREATE if creating else PLAN_UPDATE, plan)
        runs = _run_once_items(plan, data, actor, now)
    return Submitted.of(plan, items, runs)


def _run_once_items(
    plan: Plan, data: PlanInput, actor, now: datetime
) -> list[tuple[PlanItem, Fire]]:
    """A run now for each ONCE item of the POST."""
    once_items = [i for i in data.items if i.trigger_type == TriggerType.ONCE]
    return [start_run(plan, actor, now) for _ in once_items]


def _plan_of_job(data: PlanInput, actor) -> tuple[Plan, bool]:
    """The job's plan, locked (as lock_plan, for the same reason), or a new one; and
    whether it is new."""
    plan = (
        Plan.objects.select_for_update(no_key=True)
        .filter(entity_group=data.entity_group, entity_key=data.entity_key)
        .first()
    )
    if plan is not None:
        return plan, False
    if data.exec_detail is None:
        raise InvalidParameter.because("execDetail", "is required to create a plan.")
    return Plan(entity_group=data.entity_group, entity_key=data.entity_key, created_by=actor), True


def _apply(plan: Plan, data: PlanInput, actor) -> None:
    """Set what the POST names: its job, where it runs, its policies, and who changed it."""
    if data.exec_detail is not None:
        _set_exec_detail(plan, data)
    if data.placed:
        plan.cluster, plan.tenant = selectors.placement_get(
            cluster_id=data.cluster_id, tenant_id=data.tenant_id
        )
    for name in _POLICY_FIELDS:
        if getattr(data, name) is not None:
            setattr(plan, name, getattr(data, name))
    plan.updated_by = actor


def _save(plan: Plan, data: PlanInput) -> None:
    """Save the plan; a plan of the same job created meanwhile is a conflict to retry."""
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError:
        raise InvalidState(
            f"A plan for {data.entity_group}/{data.entity_key} was created at the same "
            "time; send the request again."
        ) from None


def _set_exec_detail(plan: Plan, data: PlanInput) -> None:
    detail = data.exec_detail
    assert detail is not None
    job = jobs.job_class_get(detail.job_class)
    jobs.job_params_check(job, detail.job_params)
    plan.job_class = job.name
    plan.job_params = detail.job_params
    plan.retry_times = detail.retry_times
    plan.title = job.title_for(data.entity_group, data.entity_key, detail.job_params)[:200]


def plan_update(*, plan_id: int, actor, change: PlanChange, now: datetime | None = None) -> Plan:
    """PUT /api/schedules/{id}: replace the items as a whole and/or enable or disable."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = lock_plan(plan_id)
        if change.items is not None:
            _refuse_once_items(change.items)
        if change.enabled is not None:
            plan.enabled = change.enabled
        plan.updated_by = actor
        plan.save()
        if change.items is not None:
            replace_items(plan, change.items, actor, now)
        else:
            reschedule(plan, now)
        audit_plan(actor, PLAN_UPDATE, plan)
    return plan


def _refuse_once_items(items: list[ItemInput]) -> None:
    for item in items:
        if item.trigger_type == TriggerType.ONCE:
            raise InvalidParameter.because(
                f"{item.field}.triggerType",
                "ONCE runs the job now: POST /api/schedules with it instead.",
            )


def plan_edit_offered(plan: Plan) -> bool:
    return True
