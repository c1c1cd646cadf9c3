"""The scheduler with a controllable clock: each tick gets `now` from the test."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from taskcenter.schedules import firing, scheduler, verbs
from taskcenter.schedules.models import Fire, FireOutcome, PlanItem
from taskcenter.tasks.models import AuditEntry, SubtaskInstance, TaskInstance, TaskType
from tests.factories import T0, cron_item, dependency_item, end_run, make_fire, make_plan

pytestmark = pytest.mark.django_db


def _fires(plan, outcome=None):
    fires = Fire.objects.filter(plan=plan).order_by("fire_time", "pk")
    return list(fires.filter(outcome=outcome) if outcome else fires)


def test_a_cron_item_fires_at_its_time_once(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    assert scheduler.tick(now=clock.advance(seconds=59)).started == []
    report = scheduler.tick(now=clock.advance(seconds=1))
    assert len(report.started) == 1
    assert scheduler.tick(now=clock.now).started == []  # a second tick at the same time
    task = TaskInstance.objects.get(pk=report.started[0])
    assert task.type == TaskType.SCHEDULED and task.parameters == {"notebook": 1}
    assert task.plan_fire.fire_time == T0.replace(minute=1)
    assert PlanItem.objects.get(plan=plan).next_fire_at == T0.replace(minute=2)
    assert AuditEntry.objects.filter(action="PLAN_FIRE", task=task).exists()


def test_a_fire_row_is_unique_per_item_and_time(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    scheduler.tick(now=clock.advance(minutes=1))
    fire = Fire.objects.get(plan=plan)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_fire(plan, fire_time=fire.fire_time)


def test_two_schedulers_claiming_one_fire_start_one_run(clock):
    """The second scheduler read the item as due before the first moved it on."""
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    item = PlanItem.objects.get(plan=plan)
    due_at = item.next_fire_at
    first = firing.fire_start(plan=plan, item=item, fire_time=due_at)
    second = firing.fire_start(plan=plan, item=item, fire_time=due_at)
    assert first is not None and second is None
    assert TaskInstance.objects.count() == 1


def test_misfire_runs_once_on_recovery_and_records_the_missed_times(clock):
    plan = make_plan(items=[cron_item("0 */5 * * * ?")])
    # Down for an hour: every time from 00:05 to 01:00 passed more than a minute ago.
    report = scheduler.tick(now=clock.advance(hours=1, minutes=2, seconds=30))
    assert len(report.started) == 1
    started = _fires(plan, FireOutcome.STARTED)
    missed = _fires(plan, FireOutcome.MISSED)
    assert len(started) == 1 and started[0].fire_time == T0.replace(hour=1)
    assert "misfired" in started[0].reason
    assert len(missed) == 11 and missed[0].fire_time == T0.replace(minute=5)
    assert PlanItem.objects.get(plan=plan).next_fire_at == T0.replace(hour=1, minute=5)
    assert scheduler.tick(now=clock.now).started == []


def test_misfire_policy_skip_records_every_missed_time(clock):
    plan = make_plan(items=[cron_item("0 */5 * * * ?")], misfirePolicy="SKIP")
    report = scheduler.tick(now=clock.advance(hours=1, minutes=2, seconds=30))
    assert report.started == [] and report.missed == 12
    assert len(_fires(plan, FireOutcome.MISSED)) == 12


def test_an_on_time_fire_after_an_outage_runs_and_the_late_ones_are_missed(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    report = scheduler.tick(now=clock.advance(minutes=5, seconds=10))
    assert len(report.started) == 1
    assert _fires(plan, FireOutcome.STARTED)[0].fire_time == T0.replace(minute=5)
    assert len(_fires(plan, FireOutcome.MISSED)) == 4


def test_overlap_skip_while_the_previous_run_is_running(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    first = scheduler.tick(now=clock.advance(minutes=1)).started
    report = scheduler.tick(now=clock.advance(minutes=1))
    assert report.started == [] and report.skipped == 1
    skipped = _fires(plan, FireOutcome.SKIPPED)[0]
    assert f"task #{first[0]}" in skipped.reason and skipped.task is None
    end_run(first[0])
    assert len(scheduler.tick(now=clock.advance(minutes=1)).started) == 1


def test_overlap_start_anyway(clock):
    make_plan(items=[cron_item("0 * * * * ?")], overlapPolicy="START")
    scheduler.tick(now=clock.advance(minutes=1))
    assert len(scheduler.tick(now=clock.advance(minutes=1)).started) == 1
    assert TaskInstance.objects.count() == 2


def test_disabled_plans_never_fire_and_reenabling_fires_no_burst(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    verbs.plan_set_enabled(plan_id=plan.pk, actor=None, enabled=False, now=clock.now)
    assert PlanItem.objects.get(plan=plan).next_fire_at is None
    report = scheduler.tick(now=clock.advance(hours=3))
    assert report.started == [] and report.missed == 0
    verbs.plan_set_enabled(plan_id=plan.pk, actor=None, enabled=True, now=clock.now)
    assert PlanItem.objects.get(plan=plan).next_fire_at == T0.replace(hour=3, minute=1)
    assert scheduler.tick(now=clock.advance(seconds=30)).started == []
    assert len(scheduler.tick(now=clock.advance(seconds=30)).started) == 1
    assert Fire.objects.filter(plan=plan).count() == 1  # nothing recorded for the pause


def test_a_plan_created_disabled_does_not_fire(clock):
    make_plan(items=[cron_item("* * * * * ?")], enabled=False)
    assert scheduler.tick(now=clock.advance(minutes=5)).started == []


def test_dependency_chain_fires_each_job_after_the_one_before(clock):
    make_plan("a", [cron_item("0 * * * * ?")])
    make_plan("b", [dependency_item(("NOTEBOOK", "a"))])
    make_plan("c", [dependency_item(("NOTEBOOK", "b"))])
    [run_a] = scheduler.tick(now=clock.advance(minutes=1)).started
    assert scheduler.tick(now=clock.advance(seconds=1)).started == []  # a still running
    end_run(run_a)
    [run_b] = scheduler.tick(now=clock.advance(seconds=1)).started
    assert TaskInstance.objects.get(pk=run_b).plan_fire.entity_key == "b"
    end_run(run_b)
    [run_c] = scheduler.tick(now=clock.advance(seconds=1)).started
    fire_c = TaskInstance.objects.get(pk=run_c).plan_fire
    assert fire_c.entity_key == "c" and fire_c.upstream.task_id == run_b
    assert scheduler.tick(now=clock.advance(seconds=1)).started == []


def test_a_failed_run_does_not_trigger_its_dependents(clock):
    make_plan("a", [cron_item("0 * * * * ?")])
    make_plan("b", [dependency_item(("NOTEBOOK", "a"))])
    [run_a] = scheduler.tick(now=clock.advance(minutes=1)).started
    end_run(run_a, "FAILED")
    report = scheduler.tick(now=clock.advance(seconds=1))
    assert report.started == [] and report.followed_up == 1


def test_a_disabled_dependent_does_not_fire(clock):
    make_plan("a", [cron_item("0 * * * * ?")])
    make_plan("b", [dependency_item(("NOTEBOOK", "a"))], enabled=False)
    [run_a] = scheduler.tick(now=clock.advance(minutes=1)).started
    end_run(run_a)
    assert scheduler.tick(now=clock.advance(seconds=1)).started == []


def test_retry_times_sets_the_runs_automatic_retries(clock):
    make_plan(items=[cron_item("0 * * * * ?")], retry_times=3)
    [run] = scheduler.tick(now=clock.advance(minutes=1)).started
    assert set(
        SubtaskInstance.objects.filter(task_id=run).values_list("retry_count", flat=True)
    ) == {3}


def test_cancel_stops_the_running_contexts_through_the_engine(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    [run] = scheduler.tick(now=clock.advance(minutes=1)).started
    subtask = SubtaskInstance.objects.filter(task_id=run).order_by("series_id").first()
    SubtaskInstance.objects.filter(pk=subtask.pk).update(status="RUNNING")  # a worker took it
    assert verbs.plan_cancel(plan_id=plan.pk, actor=None) == 1
    subtask.refresh_from_db()
    assert subtask.status == "CANCELING" and subtask.operation == "CANCEL"


def test_cancel_also_stops_what_is_queued_so_the_context_ends(clock):
    """A fired context whose first step waits for a worker (READY) is stopped too: it ends
    FAILED/CANCEL at once, and the context ends instead of running on."""
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    [run] = scheduler.tick(now=clock.advance(minutes=1)).started
    queued = SubtaskInstance.objects.filter(task_id=run, status="READY")
    assert queued.exists()  # no worker here: the first steps are queued
    count = queued.count()
    assert verbs.plan_cancel(plan_id=plan.pk, actor=None) == count
    assert not SubtaskInstance.objects.filter(task_id=run, status="READY").exists()
    assert TaskInstance.objects.get(pk=run).status != "RUNNING"


def test_deleting_a_plan_keeps_its_past_contexts(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    [run] = scheduler.tick(now=clock.advance(minutes=1)).started
    verbs.plan_delete(plan_id=plan.pk, actor=None)
    fire = TaskInstance.objects.get(pk=run).plan_fire
    assert fire.plan_id is None and fire.entity_key == "1" and fire.exec_detail["jobParams"]
    assert AuditEntry.objects.filter(action="PLAN_DELETE").exists()


def test_replacing_items_keeps_an_items_next_time_and_history(clock):
    plan = make_plan(items=[cron_item("0 15 0 ? * 1", "GMT+08:00")])
    item = PlanItem.objects.get(plan=plan)
    # Sunday 00:15 at GMT+08:00 is Saturday 16:15 UTC.
    assert item.next_fire_at == T0.replace(day=6, hour=16, minute=15)
    make_plan(items=[cron_item("0 15 0 ? * 1", "GMT+08:00", item.pk), cron_item("0 0 * * * ?")])
    items = list(PlanItem.objects.filter(plan=plan).order_by("pk"))
    assert [i.pk for i in items][0] == item.pk and items[0].next_fire_at == item.next_fire_at
    assert len(items) == 2


def test_run_now_leaves_the_schedule_in_place(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")])
    item = PlanItem.objects.get(plan=plan)
    again = make_plan(items=[{"triggerType": "ONCE"}], now=clock.now)
    assert again.pk == plan.pk
    assert PlanItem.objects.filter(plan=plan, trigger_type="CRON_JOB").get() == item
    assert Fire.objects.get(plan=plan).outcome == FireOutcome.STARTED


def test_the_idle_tick_reads_only_the_due_index(clock, django_assert_max_num_queries):
    for key in range(30):
        make_plan(str(key), [cron_item("0 0 0 1 1 ? 2099")])
    with django_assert_max_num_queries(2):
        report = scheduler.tick(now=clock.advance(hours=1))
    assert report.started == []
