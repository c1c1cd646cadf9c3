"""The scheduler's fires: claim a (plan item, fire time), start the plan's job, record
what did not run. Used by the scheduler's tick (taskcenter.schedules.scheduler) and by the
run-now verb (taskcenter.schedules.verbs.run_now), which starts a run as a fire of a ONCE
item.

Each fire is claimed by inserting its Fire row under the unique (item, fire time) or (item,
upstream) constraint, so several schedulers racing for the same fire start exactly one run.
Everything runs in the caller's transaction: a started task's first subtasks are sent to
Celery when it commits, and each fire writes its PLAN_FIRE audit entry with it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from taskcenter.core.errors import TaskCenterError
from taskcenter.schedules import jobs, selectors
from taskcenter.schedules.models import Fire, FireOutcome, OverlapPolicy, Plan, PlanItem
from taskcenter.tasks import events
from taskcenter.tasks import verbs as task_verbs
from taskcenter.tasks.audit import audit_entry, audit_record_many
from taskcenter.tasks.definitions import DefinitionSpec
from taskcenter.tasks.models import TaskType

PLAN_FIRE = "PLAN_FIRE"  # the audit action of every fire, started or not


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
        [started] = task_verbs.task_start_many(starts=[job_start(plan, actor)])
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
    starting: list[tuple[Fire, task_verbs.TaskStart]] = []
    for (item, _), fire in zip(due, fires, strict=True):
        if item.plan_id in running:
            _mark_skipped(fire, _still_running(running[item.plan_id]))
            continue
        try:
            starting.append((fire, job_start(item.plan)))
        except TaskCenterError as exc:  # an unknown job class
            _mark_skipped(fire, _not_started(exc))
    started = task_verbs.task_start_many(starts=[start for _, start in starting])
    for (fire, _), task in zip(starting, started, strict=True):
        if isinstance(task, TaskCenterError):
            _mark_skipped(fire, _not_started(task))
        else:
            fire.task = task
    Fire.objects.bulk_create(fires)
    _audit_fires(fires)
    return fires


def job_definition_of(plan: Plan) -> DefinitionSpec:
    """The task definition a run of the plan starts (raises when its job class, or the
    definition it names, is not registered in this installation)."""
    return jobs.job_definition(jobs.job_class_get(plan.job_class))


def job_start(plan: Plan, actor=None) -> task_verbs.TaskStart:
    """The start of a run of the plan's job, on the plan's cluster and tenant, so that the
    run is in the same users' scope as its plan (raises as job_definition_of)."""
    return task_verbs.TaskStart(
        definition_name=job_definition_of(plan).name,
        parameters=plan.job_params,
        creator=actor or plan.updated_by or plan.created_by,
        type=TaskType.SCHEDULED,
        name=plan.title or None,
        retry_count=plan.retry_times,
        cluster=plan.cluster,
        tenant=plan.tenant,
    )


def _still_running(context_id: int) -> str:
    return f"the previous run (task #{context_id}) is still running"


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


_FIRE_EVENTS: dict[str, str] = {
    FireOutcome.MISSED: events.Kind.PLAN_FIRE_MISSED,
    FireOutcome.SKIPPED: events.Kind.PLAN_FIRE_SKIPPED,
}


def _audit_fires(fires: list[Fire], actor=None) -> None:
    """Each fire's audit row: a run started names its task, the others their plan; a fire
    missed or skipped is also an event."""
    _emit_fire_events(fires)
    audit_record_many(
        [
            audit_entry(
                actor=actor,
                action=PLAN_FIRE,
                task=fire.task,
                target=f"plan {fire.plan_id} {fire.entity_group}/{fire.entity_key}",
                to_status=fire.outcome,
                reason=_fire_words(fire),
                cluster_id=fire.plan.cluster_id if fire.plan else None,
            )
            for fire in fires
        ]
    )


def _emit_fire_events(fires: list[Fire]) -> None:
    if not events.listening():
        return
    events.emit(
        *(
            events.DomainEvent(
                kind=_FIRE_EVENTS[fire.outcome],
                key=f"{_FIRE_EVENTS[fire.outcome]}:{fire.pk}",
                object_type="plan",
                object_id=fire.plan_id,
                name=f"{fire.entity_group}/{fire.entity_key}",
                status=fire.outcome,
                cluster_id=fire.plan.cluster_id if fire.plan else None,
                plan_id=fire.plan_id,
                occurred_at=fire.fire_time,
                detail={"fireId": fire.pk, "reason": fire.reason},
            )
            for fire in fires
            if fire.outcome in _FIRE_EVENTS
        )
    )


_TRIGGER_WORDS = {"CRON_JOB": "cron trigger", "DEPENDENCY": "dependency trigger", "ONCE": "run now"}


def _fire_words(fire: Fire) -> str:
    """The fire in words. Its time is written in ISO 8601, which the audit page shows in
    each reader's zone (taskcenter.dashboard.presenters.audit_reason)."""
    kind = _TRIGGER_WORDS.get(fire.plan_item.get("triggerType", ""), "trigger")
    words = f"plan {fire.plan_id}'s {kind} (item {fire.item_id}) at {fire.fire_time.isoformat()}"
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
            reason = f"after {fire.entity_group}/{fire.entity_key} task #{fire.task_id} succeeded"
            started = fire_start(
                plan=item.plan, item=item, fire_time=now, upstream=fire, reason=reason
            )
            if started is not None:
                fires.append(started)
    return fires
