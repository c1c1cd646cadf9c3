"""Which changes become events: a task's end, a subtask out of automatic retries, a plan
disabled, a fire missed; the watchers' task.waiting, fleet.no_worker and queue.lagging;
the scheduler's loop draining the outbox; the counts in /metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from taskcenter.engine.selectors import default_queue
from taskcenter.notifications import drain
from taskcenter.notifications.models import Event, Notification
from taskcenter.schedules import verbs as plan_verbs
from taskcenter.tasks import verbs
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    ParameterSpec,
    SubtaskSpec,
    register_definition,
)
from taskcenter.tasks.models import SubtaskInstance
from tests.factories import (
    failed_task,
    make_channel,
    make_delivery,
    make_event,
    make_plan,
    make_presence,
    make_rule,
    make_task,
)


def kinds() -> list[tuple[str, str]]:
    return list(Event.objects.order_by("id").values_list("kind", "status"))


def test_a_task_end_is_one_event_and_a_retried_failure_another(db):
    task = failed_task()
    assert kinds() == [("task.failed", "FAILED")]
    drain.drain()  # the fan-out fills in the task's name, cluster and job
    event = Event.objects.get()
    assert (event.task_id, event.object_type, event.name) == (task.pk, "task", task.name)
    assert event.cluster_id == task.cluster_id and event.job == task.definition.name
    make_task(["SUCCESSFUL", "SUCCESSFUL"])
    assert kinds()[-1] == ("task.succeeded", "SUCCESSFUL")


@pytest.mark.usefixtures("eager_engine")
def test_a_subtask_out_of_automatic_retries_is_an_event():
    register_definition(
        DefinitionSpec(
            name="Flaky notify",
            parameters=[ParameterSpec("fail_step", "flaky"), ParameterSpec("fail_times", 5)],
            build=lambda p: [
                SubtaskSpec(
                    "flaky",
                    "Flaky",
                    "PYTHON_TASK",
                    {
                        "callable": "demo.step",
                        "kwargs": {"step": "flaky", "seconds": 0, "lines": 1},
                    },
                    retry_count=2,
                )
            ],
        )
    )
    verbs.task_start(definition_name="Flaky notify")
    assert kinds() == [("subtask.retries_exhausted", "FAILED"), ("task.failed", "FAILED")]
    drain.drain()
    exhausted = Event.objects.get(kind="subtask.retries_exhausted")
    assert exhausted.detail == {"subtask": "Flaky", "runs": 3, "retries": 2}
    assert exhausted.name == "Flaky notify / Flaky"


def test_a_plan_disabled_and_a_fire_missed_are_events(admin):
    from taskcenter.schedules.firing import fire_record_missed

    plan = make_plan("7")
    plan_verbs.plan_disable(plan_id=plan.pk, actor=admin)
    plan_verbs.plan_disable(plan_id=plan.pk, actor=admin)  # already disabled: no event
    [disabled] = Event.objects.filter(kind="plan.disabled")
    assert (disabled.plan_id, disabled.detail) == (plan.pk, {"by": "admin"})
    item = plan.items.first()
    when = timezone.now().replace(microsecond=0)
    fire_record_missed(plan=plan, item=item, fire_time=when, reason="no scheduler ran")
    fire_record_missed(plan=plan, item=item, fire_time=when, reason="no scheduler ran")
    assert Event.objects.filter(kind="plan.fire_missed", plan_id=plan.pk).count() == 1


def test_the_watchers_report_a_wait_no_worker_and_a_lagging_queue_once(db, settings):
    settings.TASKCENTER_NOTIFY_WAITING_AFTER = 60
    settings.TASKCENTER_NOTIFY_QUEUE_LAG = 30
    task = failed_task()
    # A READY attempt left for five minutes (set by hand: no worker in this test).
    SubtaskInstance.objects.filter(status="PENDING").update(
        status="READY", ready_at=timezone.now() - timedelta(minutes=5)
    )
    now = timezone.now()
    make_presence("w1@h", seen_ago=timedelta(minutes=10), queues=["celery"])
    later = now + timedelta(seconds=90)
    drain.watch(later)
    drain.watch(later + timedelta(seconds=15))  # a second pass adds nothing
    waiting = Event.objects.filter(kind="task.waiting")
    assert list(waiting.values_list("task_id", flat=True)) == [task.pk]
    assert Event.objects.filter(kind="fleet.no_worker").count() == 1
    lagging = Event.objects.get(kind="queue.lagging")
    assert lagging.name == default_queue() and lagging.detail["depth"] >= 1


def test_the_scheduler_loop_drains_the_outbox(transactional_db, viewer):
    # transactional_db: the command closes connections between passes, as a process does.
    make_rule(viewer, events=["task.failed"])
    task = failed_task()
    call_command("run_scheduler", "--once")
    assert list(Notification.objects.values_list("user__username", "event__task_id")) == [
        ("viewer", task.pk)
    ]


def test_metrics_count_deliveries_by_status(admin, client):
    channel = make_channel()
    for status in ("DEAD", "DELIVERED", "DELIVERED"):
        make_delivery(channel, status)
    text = client.get("/metrics").content.decode()
    assert (
        'taskcenter_notification_deliveries_total{channel_kind="webhook",status="DELIVERED"} 2.0'
        in text
    )
    assert (
        'taskcenter_notification_deliveries_total{channel_kind="webhook",status="DEAD"} 1.0' in text
    )
    assert "taskcenter_notification_events_backlog" in text


def test_old_events_and_deliveries_are_pruned_pending_ones_kept(db, settings):
    from taskcenter.notifications.models import Delivery

    settings.TASKCENTER_NOTIFY_KEEP_DAYS = 30
    channel = make_channel()
    old = timezone.now() - timedelta(days=31)
    done = make_event("a", occurred_at=old, fanned_out=True)
    waiting = make_event("b", occurred_at=old, fanned_out=True)
    fresh = make_event("c", fanned_out=True)
    make_delivery(channel, "DELIVERED", event=done, created_at=old)
    make_delivery(channel, "PENDING", event=waiting, created_at=old)
    drain.prune(timezone.now())
    assert set(Event.objects.values_list("key", flat=True)) == {waiting.key, fresh.key}
    assert list(Delivery.objects.values_list("status", flat=True)) == ["PENDING"]


def test_an_approval_gate_that_opens_is_an_approval_requested_event(operator, no_broker):
    from tests.factories import APPROVAL_GATE, subtask_named, waiting_approval

    task = waiting_approval(operator)
    gate = subtask_named(task, APPROVAL_GATE)
    assert ("approval.requested", "RUNNING") in kinds()
    drain.drain()
    requested = Event.objects.get(kind="approval.requested")
    assert (requested.task_id, requested.object_id) == (task.pk, gate.pk)
    assert requested.detail == {"subtask": APPROVAL_GATE}
