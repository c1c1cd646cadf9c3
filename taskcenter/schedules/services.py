"""Every change of a plan, and every fire, happens here: one function per operation.

Each runs in one transaction with its audit row (taskcenter.tasks.audit); bad input raises
InvalidParameter naming the field, and then nothing is saved.

Identity: a plan is its job, entityGroup + entityKey (unique together). POST for a job
that has a plan updates that plan:
  - execDetail, enabled, misfirePolicy and overlapPolicy, when given, replace the plan's;
  - CRON_JOB and DEPENDENCY items, when the POST has any, replace the plan's schedule as a
    whole (as PUT does: an item sent with its id is kept and updated, the others removed);
  - ONCE items start a run now each and leave the schedule as it was, so "run now" never
    loses a schedule. A ONCE item is kept (contexts point at it) but is not part of the
    plan's schedule: GET shows CRON_JOB and DEPENDENCY items only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from taskcenter.core.errors import InvalidParameter, InvalidState, TaskCenterError, TaskNotFound
from taskcenter.schedules import cron, jobs, selectors
from taskcenter.schedules.inputs import ItemInput, PlanChange, PlanInput
from taskcenter.schedules.models import (
    Fire,
    FireOutcome,
    OverlapPolicy,
    Plan,
    PlanDependency,
    PlanItem,
    TriggerType,
)
from taskcenter.tasks import services as task_services
from taskcenter.tasks.audit import audit_entry, audit_record, audit_record_many
from taskcenter.tasks.models import TaskType

SCHEDULE_ITEM_TYPES = (TriggerType.CRON_JOB, TriggerType.DEPENDENCY)


@dataclass
class Submitted:
    plan: Plan
    items: list[PlanItem]  # the items of this request, as the answer shows them
    context_ids: list[int]  # the runs its ONCE items started


# --- Plans ------------------------------------------------------------------------------------


def plan_submit(*, actor, data: PlanInput, now: datetime | None = None) -> Submitted:
    """POST /api/schedules: create the job's plan, or update it (see the module docstring)."""
    now = now or timezone.now()
    schedule_items = [i for i in data.items if i.trigger_type in SCHEDULE_ITEM_TYPES]
    once_items = [i for i in data.items if i.trigger_type == TriggerType.ONCE]
    with transaction.atomic():
        plan = (
            Plan.objects.select_for_update(no_key=True)  # as _lock_plan, for the same reason
            .filter(entity_group=data.entity_group, entity_key=data.entity_key)
            .first()
        )
        creating = plan is None
        if plan is None:
            if data.exec_detail is None:
                raise InvalidParameter.because("execDetail", "is required to create a plan.")
            plan = Plan(
                entity_group=data.entity_group, entity_key=data.entity_key, created_by=actor
            )
        if data.exec_detail is not None:
            _set_exec_detail(plan, data)
        for name in ("enabled", "misfire_policy", "overlap_policy"):
            if getattr(data, name) is not None:
                setattr(plan, name, getattr(data, name))
        plan.updated_by = actor
        try:
            with transaction.atomic():
                plan.save()
        except IntegrityError:
            raise InvalidState(
                f"A plan for {data.entity_group}/{data.entity_key} was created at the same "
                "time; send the request again."
            ) from None
        items = _replace_items(plan, schedule_items, actor, now) if schedule_items else []
        if creating or schedule_items or data.exec_detail is not None:
            _audit_plan(actor, "PLAN_CREATE" if creating else "PLAN_UPDATE", plan)
        runs = [_run_once(plan, item, actor, now) for item in once_items]
    return Submitted(
        plan=plan,
        items=items + [item for item, _ in runs],
        context_ids=[fire.task_id for _, fire in runs if fire.task_id],
    )


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
        plan = _lock_plan(plan_id)
        if change.items is not None:
            for item in change.items:
                if item.trigger_type == TriggerType.ONCE:
                    raise InvalidParameter.because(
                        f"{item.field}.triggerType",
                        "ONCE runs the job now: POST /api/schedules with it instead.",
                    )
        if change.enabled is not None:
            plan.enabled = change.enabled
        plan.updated_by = actor
        plan.save()
        if change.items is not None:
            _replace_items(plan, change.items, actor, now)
        else:
            _reschedule(plan, now)
        _audit_plan(actor, "PLAN_UPDATE", plan)
    return plan


def plan_set_enabled(*, plan_id: int, actor, enabled: bool, now: datetime | None = None) -> Plan:
    """Enable or disable a plan. Enabling computes the next fire times from now, so the
    times passed while it was disabled are neither run nor recorded as missed."""
    with transaction.atomic():
        plan = _lock_plan(plan_id)
        previous = plan.enabled
        plan.enabled = enabled
        plan.updated_by = actor
        plan.save(update_fields=["enabled", "updated_by", "updated_at"])
        _reschedule(plan, now or timezone.now())
        _audit_plan(
            actor,
            "PLAN_ENABLE" if enabled else "PLAN_DISABLE",
            plan,
            from_status=_enabled_word(previous),
            to_status=_enabled_word(enabled),
        )
    return plan


def plan_delete(*, plan_id: int, actor) -> None:
    """Delete a plan and its items; its past contexts (tasks and their fire rows) stay."""
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
        plan = _lock_plan(plan_id)
        _audit_plan(actor, "PLAN_DELETE", plan)
        plan.delete()


def plan_cancel(*, plan_id: int, actor) -> int:
    """Stop the plan's running contexts through the engine's cancel: every RUNNING subtask
    of each is asked to stop, and every queued (READY) one ends at once; either way it
    ends FAILED/CANCEL, so the context ends. Returns how many subtasks were stopped or
    asked to stop."""
    with transaction.atomic():
        plan = _lock_plan(plan_id)
        _audit_plan(actor, "PLAN_CANCEL", plan)
    asked = 0
    for task_id, subtask_id in selectors.plan_stoppable_subtasks(plan_id=plan.pk):
        try:
            task_services.subtask_cancel(
                task_id=task_id, subtask_id=subtask_id, actor=actor, reason=f"plan {plan.pk}"
            )
            asked += 1
        except (InvalidState, TaskNotFound):
            pass  # it ended meanwhile: nothing left to stop
    return asked


def _lock_plan(plan_id: int) -> Plan:
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


def _enabled_word(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"


def _audit_plan(actor, action: str, plan: Plan, **fields) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=f"schedule {plan.pk} {plan.entity_group}/{plan.entity_key}",
        reason=plan.title,
        **fields,
    )


# --- Items ------------------------------------------------------------------------------------


def _replace_items(plan: Plan, inputs: list[ItemInput], actor, now: datetime) -> list[PlanItem]:
    """Make the plan's schedule items exactly `inputs` (ids keep and update an item)."""
    existing = {item.pk: item for item in plan.items.filter(trigger_type__in=SCHEDULE_ITEM_TYPES)}
    seen: set[int] = set()
    for given in inputs:
        if given.id is None:
            continue
        if given.id not in existing or given.id in seen:
            raise InvalidParameter.because(
                f"{given.field}.id",
                f"{given.id} is not a CRON_JOB or DEPENDENCY item of "
                f"schedule {plan.pk} (or is listed twice).",
            )
        seen.add(given.id)
    plan.items.filter(trigger_type__in=SCHEDULE_ITEM_TYPES).exclude(pk__in=seen).delete()
    items = []
    for given in inputs:
        item = existing.get(given.id) if given.id else None
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
        if changed or item.next_fire_at is None or not plan.enabled:
            item.next_fire_at = _next_fire(plan, item, now)
        item.save()
        items.append(item)
    PlanDependency.objects.filter(item__plan=plan).delete()
    PlanDependency.objects.bulk_create(
        PlanDependency(item=item, entity_group=job["entityGroup"], entity_key=job["entityKey"])
        for item in items
        for job in item.trigger_by_jobs
    )
    _refuse_cycles(plan, items)
    return items


def _reschedule(plan: Plan, now: datetime) -> None:
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
                raise InvalidParameter.because(
                    field, "the dependencies form a cycle: " + " after ".join(reversed(chain)) + "."
                )
            if upstream not in path:
                path[upstream] = job
                todo.append(upstream)


# --- Fires ------------------------------------------------------------------------------------


def _run_once(plan: Plan, given: ItemInput, actor, now: datetime) -> tuple[PlanItem, Fire]:
    """A ONCE item: kept for the record, and a run started now (whatever the overlap
    policy: a person asked for it); a start the engine refuses is an error to the caller."""
    item = PlanItem.objects.create(
        plan=plan, trigger_type=TriggerType.ONCE, created_by=actor, updated_by=actor
    )
    fire = fire_start(plan=plan, item=item, fire_time=now, actor=actor, manual=True)
    assert fire is not None  # a new item: nobody else can claim its fire
    return item, fire


def fire_start(
    *,
    plan: Plan,
    item: PlanItem,
    fire_time: datetime,
    actor=None,
    upstream: Fire | None = None,
    manual: bool = False,
    reason: str = "",
) -> Fire | None:
    """Claim (item, fire time) by inserting its Fire row and start the plan's job.

    None when another scheduler has already claimed it (the unique constraint). Runs in
    the caller's transaction: the task's first subtasks are sent to Celery on commit.
    Outside `manual` runs, the overlap policy may turn the fire into a skip, and a start the
    engine refuses is recorded as a skip with the engine's reason.
    """
    fire = _claim(_fire_row(plan, item, fire_time, upstream, FireOutcome.STARTED, reason))
    if fire is None:
        return None
    if not manual and plan.overlap_policy == OverlapPolicy.SKIP:
        running = selectors.plan_running_context(plan_id=plan.pk, excluding=fire.pk)
        if running is not None:
            return _skip(fire, _still_running(running))
    try:
        [started] = task_services.task_start_many(starts=[_job_start(plan, actor)])
    except TaskCenterError as exc:  # an unknown job class
        started = exc
    if isinstance(started, TaskCenterError):
        if manual:
            raise started
        return _skip(fire, _not_started(started))
    fire.task = started
    fire.save(update_fields=["task"])
    _audit_fires([fire], actor)
    return fire


def fire_start_many(*, due: list[tuple[PlanItem, datetime]]) -> list[Fire]:
    """Claim many (item, fire time) and start their plans' jobs at once: a tick with many
    items due. Each item's plan (loaded with it) has no other fire in `due`. What
    fire_start does for one, in one statement per table and one send to Celery on commit.

    The tasks start first and the Fire rows are inserted after them, in one statement and
    one savepoint: when any of those fires is already claimed (the unique constraint:
    another scheduler, or a recomputed next fire time), the savepoint rolls back with the
    tasks it started and their sends, and fire_start claims each fire alone.
    """
    if not due:
        return []
    try:
        with transaction.atomic():
            return _start_all(due)
    except IntegrityError:
        fires = (fire_start(plan=item.plan, item=item, fire_time=at) for item, at in due)
        return [fire for fire in fires if fire is not None]


def _start_all(due: list[tuple[PlanItem, datetime]]) -> list[Fire]:
    fires = [_fire_row(item.plan, item, at, None, FireOutcome.STARTED, "") for item, at in due]
    running = selectors.plans_running_contexts(
        plan_ids=[item.plan_id for item, _ in due if item.plan.overlap_policy == OverlapPolicy.SKIP]
    )
    starting: list[tuple[Fire, task_services.TaskStart]] = []
    for (item, _), fire in zip(due, fires, strict=True):
        if item.plan_id in running:
            _mark_skipped(fire, _still_running(running[item.plan_id]))
            continue
        try:
            starting.append((fire, _job_start(item.plan)))
        except TaskCenterError as exc:  # an unknown job class
            _mark_skipped(fire, _not_started(exc))
    started = task_services.task_start_many(starts=[start for _, start in starting])
    for (fire, _), task in zip(starting, started, strict=True):
        if isinstance(task, TaskCenterError):
            _mark_skipped(fire, _not_started(task))
        else:
            fire.task = task
    Fire.objects.bulk_create(fires)
    _audit_fires(fires)
    return fires


def _job_start(plan: Plan, actor=None) -> task_services.TaskStart:
    """The start of a run of the plan's job (raises when its job class is unknown)."""
    return task_services.TaskStart(
        definition_name=jobs.job_definition(jobs.job_class_get(plan.job_class)).name,
        parameters=plan.job_params,
        creator=actor or plan.updated_by or plan.created_by,
        type=TaskType.SCHEDULED,
        name=plan.title or None,
        retry_count=plan.retry_times,
    )


def _still_running(context_id: int) -> str:
    return f"the previous run (context {context_id}) is still running"


def _not_started(error: TaskCenterError) -> str:
    return f"the run could not start: {error.message}"


def fire_record_missed(*, plan: Plan, item: PlanItem, fire_time: datetime, reason: str) -> None:
    """A fire time that passed while no scheduler ran, and that the misfire policy skips."""
    fire = _claim(_fire_row(plan, item, fire_time, None, FireOutcome.MISSED, reason))
    if fire is not None:
        _audit_fires([fire])


def _claim(fire: Fire) -> Fire | None:
    """Insert a fire's row: the fire is this caller's, or None when it was claimed before."""
    try:
        with transaction.atomic():
            fire.save(force_insert=True)
    except IntegrityError:
        return None  # another scheduler claimed this fire first
    return fire


def _fire_row(
    plan: Plan,
    item: PlanItem,
    fire_time: datetime,
    upstream: Fire | None,
    outcome: str,
    reason: str,
) -> Fire:
    """A fire's row, not yet inserted (inserting it claims the fire)."""
    return Fire(
        plan=plan,
        item=item,
        fire_time=fire_time,
        upstream=upstream,
        outcome=outcome,
        reason=reason,
        entity_group=plan.entity_group,
        entity_key=plan.entity_key,
        title=plan.title,
        exec_detail=plan.exec_detail,
        plan_item=item.snapshot(),
        created_by=plan.updated_by or plan.created_by,
    )


def _mark_skipped(fire: Fire, why: str) -> None:
    fire.outcome = FireOutcome.SKIPPED
    fire.reason = f"{fire.reason}; {why}" if fire.reason else why


def _skip(fire: Fire, why: str) -> Fire:
    _mark_skipped(fire, why)
    fire.save(update_fields=["outcome", "reason"])
    _audit_fires([fire])
    return fire


def _audit_fires(fires: list[Fire], actor=None) -> None:
    """Each fire's audit row: a run started names its task, the others their plan."""
    audit_record_many(
        [
            audit_entry(
                actor=actor,
                action="PLAN_FIRE",
                task=fire.task,
                target=f"schedule {fire.plan_id} {fire.entity_group}/{fire.entity_key}",
                to_status=fire.outcome,
                reason=_fire_words(fire),
            )
            for fire in fires
        ]
    )


def _fire_words(fire: Fire) -> str:
    kind = fire.plan_item.get("triggerType", "")
    words = f"plan {fire.plan_id} {kind} item {fire.item_id} at {fire.fire_time.isoformat()}"
    return f"{words}: {fire.reason}" if fire.reason else words


def fire_follow_up(*, fire_id: int, now: datetime) -> list[Fire]:
    """Once a run has ended: mark it seen and, if it succeeded, fire the DEPENDENCY items
    that wait for its job. The compare-and-set makes one scheduler do it; the unique
    (item, upstream) constraint would refuse a second fire anyway."""
    fires: list[Fire] = []
    with transaction.atomic():
        if not Fire.objects.filter(pk=fire_id, followed_up=False).update(followed_up=True):
            return fires
        fire = Fire.objects.select_related("task").get(pk=fire_id)
        if not selectors.run_succeeded(fire=fire):
            return fires
        for item in selectors.items_after(
            entity_group=fire.entity_group, entity_key=fire.entity_key
        ):
            reason = f"after {fire.entity_group}/{fire.entity_key} context {fire.task_id} succeeded"
            started = fire_start(
                plan=item.plan, item=item, fire_time=now, upstream=fire, reason=reason
            )
            if started is not None:
                fires.append(started)
    return fires


__all__ = [
    "Submitted",
    "fire_follow_up",
    "fire_record_missed",
    "fire_start",
    "fire_start_many",
    "plan_cancel",
    "plan_delete",
    "plan_set_enabled",
    "plan_submit",
    "plan_update",
]
