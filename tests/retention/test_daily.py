"""The scheduler's daily housekeeping: due at the configured hour, once a day, in a thread
of its own, each piece of work on its own; and retention registered as one of them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from taskcenter.schedules import housekeeping
from tests.conftest import wait_for


@pytest.mark.embedded
def test_the_next_run_is_the_next_such_hour():
    at = datetime(2026, 3, 1, 2, 59, tzinfo=UTC)
    assert housekeeping.next_run(at, 3) == datetime(2026, 3, 1, 3, tzinfo=UTC)
    assert housekeeping.next_run(at.replace(hour=3), 3) == datetime(2026, 3, 2, 3, tzinfo=UTC)


@pytest.mark.embedded
def test_daily_work_runs_once_when_due_and_a_failing_piece_stops_no_other(monkeypatch):
    done = threading.Event()
    calls: list[str] = []

    def failing():
        calls.append("failing")
        raise RuntimeError("boom")

    def counting():
        calls.append("counting")
        done.set()

    monkeypatch.setattr(housekeeping, "_daily", {})
    housekeeping.register_daily("failing", failing)
    housekeeping.register_daily("counting", counting)
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    daily = housekeeping.Daily(hour=3, now=start)
    assert not daily.poll(start.replace(hour=2, minute=59))
    assert daily.poll(start.replace(hour=3, second=1))
    wait_for(done.is_set)
    assert daily.thread is not None
    daily.thread.join(5)
    assert calls == ["failing", "counting"]
    # Due again a day later, not at the next tick.
    assert not daily.poll(start.replace(hour=3, second=2))
    assert daily.due == datetime(2026, 3, 2, 3, tzinfo=UTC)


@pytest.mark.django_db
def test_retention_is_registered_as_daily_work():
    from taskcenter.retention import prune

    assert housekeeping._daily["retention"] is prune.prune_scheduled


@pytest.mark.embedded
def test_retention_settings_are_checked_and_named(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from taskcenter.core.env import load_environment

    monkeypatch.setenv("TASKCENTER_RETENTION_HOUR", "24")
    monkeypatch.setenv("TASKCENTER_RETENTION_TASKS_DAYS", "-1")
    monkeypatch.setenv("TASKCENTER_RETENTION_AUDIT_DAYS", "a year")
    with pytest.raises(ImproperlyConfigured) as refused:
        load_environment()
    message = str(refused.value)
    assert "TASKCENTER_RETENTION_HOUR must be at most 23, got '24'" in message
    assert "TASKCENTER_RETENTION_TASKS_DAYS must be at least 0" in message
    assert "TASKCENTER_RETENTION_AUDIT_DAYS must be an integer" in message
