"""A plan's schedule items, as the create, edit and enable verbs change them: replaced as a
whole, their next fire times computed, and dependency cycles refused."""

from __future__ import annotations

from datetime import datetime

from taskcenter.core.errors import InvalidParameter
from taskcenter.schedules import cron, selectors
from taskcenter.schedules.inputs import ItemInput
from taskcenter.schedules.models import Plan, PlanDependency, PlanItem, TriggerType

SCHEDULE_ITEM_TYPES = (TriggerType.CRON_JOB, TriggerType.DEPENDENCY)


def replace_items(plan: Plan, inputs: list[ItemInput], actor, now: datetime) -> list[PlanItem]:
    """Make the plan's schedule items exactly `inputs` (ids keep and update an item)."""
    existing = {item.pk: item for item in plan.items.filter(trigger_type__in=SCHEDULE_ITEM_TYPES)}
    kept = _kept_ids(plan, inputs, existing)
    plan.items.filter(trigger_type__in=SCHEDULE_ITEM_TYPES).exclude(pk__in=kept).delete()
    items = [_save_item(plan, existing.get(given.id or 0), given, actor, now) for given in inputs]
    PlanDependency.objects.filter(item__plan=plan).delete()
    PlanDependency.objects.bulk_create(
        PlanDependency(item=item, entity_group=job["entityGroup"], entity_key=job["entityKey"])
        for item in items
        for job in item.trigger_by_jobs
    )
    _refuse_cycles(plan, items)
    return items


def _kept_ids(plan: Plan, inputs: list[ItemInput], existing: dict[int, PlanItem]) -> set[int]:
    """The ids of the items `inputs` keep: each must be a schedule item of this plan, once."""
    kept: set[int] = set()
    for given in inputs:
        if given.id is None:
            continue
        if given.id not in existing or given.id in kept:
            raise InvalidParameter.because(
                f"{given.field}.id",
                f"{given.id} is not a CRON_JOB or DEPENDENCY item of "
                f"schedule {plan.pk} (or is listed twice).",
            )
        kept.add(given.id)
    return kept


def _save_item(
    plan: Plan, item: PlanItem | None, given: ItemInput, actor, now: datetime
) -> PlanItem:
    if item is None:
        item = PlanItem(plan=plan, created_by=actor)
    changed = (item.trigger_type, item.cron_desc, item.time_zone) != (
        given.trigger_type,
        given.cron_desc,
        given.time_zone,
    )
    item.trigger_type = given.trigger_type
    item.cron_desc = given.cron_desc
    item.cron_type = given.cron_type
    item.time_zone = given.time_zone
    item.trigger_by_jobs = given.trigger_by_jobs
    item.updated_by = actor
    if changed:
        _refuse_never_firing(given, now)
    if changed or item.next_fire_at is None or not plan.enabled:
        item.next_fire_at = _next_fire(plan, item, now)
    item.save()
    return item


def _refuse_never_firing(given: ItemInput, now: datetime) -> None:
    """A new or changed cron item must fire at least once more: saved otherwise, its plan
    would read Enabled and never run (30 February, a year that has passed)."""
    if given.trigger_type != TriggerType.CRON_JOB:
        return
    reason = cron.never_fires_reason(cron.parse(given.cron_desc), given.time_zone, now)
    if reason:
        raise InvalidParameter.because(f"{given.field}.cronDesc", reason)


def reschedule(plan: Plan, now: datetime) -> None:
    """Recompute each cron item's next fire time from `now` (None while disabled)."""
    for item in plan.items.filter(trigger_type=TriggerType.CRON_JOB):
        item.next_fire_at = _next_fire(plan, item, now)
        item.save(update_fields=["next_fire_at"])


def _next_fire(plan: Plan, item: PlanItem, after: datetime) -> datetime | None:
    if not plan.enabled or item.trigger_type != TriggerType.CRON_JOB:
        return None
    return cron.parse(item.cron_desc).next_fire_time(after, item.time_zone)


def _refuse_cycles(plan: Plan, items: list[PlanItem]) -> None:
    """Refuse a schedule whose DEPENDENCY items lead back to its own job."""
    upstreams = selectors.dependency_graph()
    start = (plan.entity_group, plan.entity_key)
    path: dict[tuple[str, str], tuple[str, str] | None] = {start: None}
    todo = [start]
    while todo:
        job = todo.pop()
        for upstream in upstreams.get(job, ()):
            if upstream == start:
                raise _cycle(items, path, start, job)
            if upstream not in path:
                path[upstream] = job
                todo.append(upstream)


def _cycle(
    items: list[PlanItem],
    path: dict[tuple[str, str], tuple[str, str] | None],
    start: tuple[str, str],
    job: tuple[str, str],
) -> InvalidParameter:
    """The refusal of a cycle start -> job -> ... -> start, naming the first DEPENDENCY item."""
    chain = [f"{start[0]}/{start[1]}", f"{job[0]}/{job[1]}"]
    step = path[job]
    while step is not None:
        chain.append(f"{step[0]}/{step[1]}")
        step = path[step]
    field = next(
        (
            f"planItems[{i}].triggerByJobs"
            for i, item in enumerate(items)
            if item.trigger_type == TriggerType.DEPENDENCY
        ),
        "planItems",
    )
    return InvalidParameter.because(
        field, "the dependencies form a cycle: " + " after ".join(reversed(chain)) + "."
    )
