"""A tick with many due items fires them in batches: one transaction and one send to
Celery per batch, and still one run per (item, fire time)."""

from __future__ import annotations

import pytest

from taskcenter.schedules import scheduler
from taskcenter.schedules.models import Fire, FireOutcome
from taskcenter.tasks import enqueue
from taskcenter.tasks.models import AuditEntry, SubtaskInstance, TaskInstance
from tests.factories import make_fire, make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def sends():
    """Each send the engine would make, as its list of (subtask id, attempt)."""
    made: list[list[tuple[int, int]]] = []
    previous = enqueue.register_attempt_sender(made.append)
    yield made
    enqueue.register_attempt_sender(previous)


def test_many_due_plans_start_in_one_batch_with_one_send(
    clock, sends, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(scheduler, "FIRE_BATCH", 4)
    plans = [make_plan(str(key), retry_times=2) for key in range(6)]
    with django_capture_on_commit_callbacks(execute=True):
        report = scheduler.tick(now=clock.advance(minutes=1))
    assert len(report.started) == 6
    assert sorted(len(batch) for batch in sends) == [2, 4]  # a first subtask per run
    for plan in plans:
        [fire] = Fire.objects.filter(plan=plan)
        assert fire.outcome == FireOutcome.STARTED and fire.task_id in report.started
        assert AuditEntry.objects.filter(task=fire.task, action="PLAN_FIRE").count() == 1
        assert AuditEntry.objects.filter(task=fire.task, action="START").count() == 1
    assert set(SubtaskInstance.objects.values_list("retry_count", flat=True)) == {2}


def test_a_fire_claimed_before_the_batch_is_not_started_again(clock):
    """The unique (item, fire time) refuses the batch's insert; each fire is then claimed
    alone, and the one already claimed starts nothing."""
    plans = [make_plan(str(key)) for key in range(3)]
    make_fire(plans[1], FireOutcome.MISSED)
    report = scheduler.tick(now=clock.advance(minutes=1))
    assert len(report.started) == 2
    assert TaskInstance.objects.count() == 2
    assert Fire.objects.filter(plan=plans[1]).get().outcome == FireOutcome.MISSED


def test_overlap_skips_in_a_batch_name_the_running_context(clock):
    plan = make_plan("a")
    make_plan("b")
    assert len(scheduler.tick(now=clock.advance(minutes=1)).started) == 2
    report = scheduler.tick(now=clock.advance(minutes=1))
    assert report.skipped == 2 and report.started == []  # both first runs still run
    running = Fire.objects.get(plan=plan, outcome=FireOutcome.STARTED).task_id
    skipped = Fire.objects.get(plan=plan, outcome=FireOutcome.SKIPPED)
    assert skipped.reason == f"the previous run (task #{running}) is still running"
    assert AuditEntry.objects.filter(action="PLAN_FIRE", to_status="SKIPPED").count() == 2
