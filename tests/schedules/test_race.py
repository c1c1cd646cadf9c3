"""Several schedulers at once: exactly one run per (plan item, fire time).

Real concurrency needs PostgreSQL (SQLite serialises writers); the threads each tick with
the same `now` over the same due items, through their own connections.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from taskcenter.schedules import scheduler
from taskcenter.schedules.models import Fire, FireOutcome
from tests.factories import cron_item, end_run, make_plan

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL"),
]

SCHEDULERS = 4
PLANS = 25


def _race(now) -> list:
    barrier = threading.Barrier(SCHEDULERS)
    reports, errors = [], []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(scheduler.tick(now=now))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(SCHEDULERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return reports


def test_racing_schedulers_start_one_run_per_fire_time(clock):
    assert connection.vendor == "postgresql"
    for key in range(PLANS):
        make_plan(str(key), [cron_item("0 * * * * ?")], overlapPolicy="START")
    for _ in range(3):
        reports = _race(clock.advance(minutes=1))
        assert sum(len(report.started) for report in reports) == PLANS
    fires = Counter(Fire.objects.values_list("item_id", "fire_time"))
    assert len(fires) == PLANS * 3 and set(fires.values()) == {1}
    assert Fire.objects.filter(outcome=FireOutcome.STARTED).count() == PLANS * 3


def test_racing_follow_ups_fire_a_dependency_once(clock):
    make_plan("a", [cron_item("0 * * * * ?")])
    make_plan("b", [{"triggerType": "DEPENDENCY", "triggerByJobs": [
        {"entityGroup": "NOTEBOOK", "entityKey": "a"}]}])  # fmt: skip
    [[run_a]] = [r.started for r in _race(clock.advance(minutes=1)) if r.started]
    end_run(run_a)
    reports = _race(clock.advance(seconds=1))
    assert sum(len(report.started) for report in reports) == 1
    assert Fire.objects.filter(entity_key="b").count() == 1


def test_racing_recovery_records_each_missed_time_once(clock):
    plan = make_plan("m", [cron_item("0 */5 * * * ?")])
    reports = _race(clock.advance(hours=1, minutes=2, seconds=30))
    assert sum(len(report.started) for report in reports) == 1
    missed = Counter(
        Fire.objects.filter(plan=plan, outcome=FireOutcome.MISSED).values_list("fire_time")
    )
    assert len(missed) == 11 and set(missed.values()) == {1}


def _waiting_on_a_lock() -> bool:
    """Whether another session of the test database waits for a row lock (seen from a
    connection of its own, outside the transactions under test)."""
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_changing_a_plan_while_the_scheduler_fires_it_is_no_deadlock(clock, change):
    """The scheduler holds a due item and then inserts the fire (whose foreign key takes a
    key-share lock on the plan); disabling or deleting the plan locked the plan FOR UPDATE
    and then its items. The two waited for each other until PostgreSQL broke the deadlock
    by failing one of them. Now a change that keeps the plan's key locks it FOR NO KEY
    UPDATE, which lets the fire through, and a delete takes the items before the plan."""
    from django.db import transaction

    from taskcenter.schedules import firing, selectors, verbs
    from taskcenter.schedules.models import Plan
    from tests.conftest import wait_for

    plan = make_plan("d", [cron_item("0 * * * * ?")], overlapPolicy="START")
    now = clock.advance(minutes=1)
    errors: list[Exception] = []

    def change_the_plan() -> None:
        try:
            if change == "disable":
                verbs.plan_set_enabled(plan_id=plan.pk, actor=None, enabled=False, now=now)
            else:
                verbs.plan_delete(plan_id=plan.pk, actor=None)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    changing = threading.Thread(target=change_the_plan)
    item_ids = list(plan.items.values_list("pk", flat=True))
    with transaction.atomic():
        [item] = selectors.due_items_locked(item_ids=item_ids, now=now)
        changing.start()
        wait_for(_waiting_on_a_lock, timeout=10)  # the change waits for what the tick holds
        fire = firing.fire_start(plan=item.plan, item=item, fire_time=item.next_fire_at)
    changing.join(30)
    assert not errors, errors
    assert fire is not None and fire.task_id
    if change == "disable":
        plan.refresh_from_db()
        assert plan.enabled is False
        assert not plan.items.exclude(next_fire_at=None).exists()
    else:
        assert not Plan.objects.filter(pk=plan.pk).exists()
