"""The list's cost: a constant number of queries whatever the page size (no N+1)."""

from __future__ import annotations

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskcenter.tasks import selectors
from tests.api.conftest import check_envelope
from tests.factories import failed_task, make_task


def list_queries(client, query: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        body = check_envelope(client.get(f"/api/v2/tasks/instances?{query}"))
    return len(captured.captured_queries), body["data"]


def still_clock():
    """The clock stands still while a pair is counted: a briefly cached answer (a slow
    count, the caller's remembered credentials) that expired between the two requests of
    a pair on a slow machine would count one query more for one of them."""
    return time_machine.travel(timezone.now(), tick=False)


def test_query_count_does_not_grow_with_the_page_size(as_viewer, settings):
    # A count slower than 50 ms (a loaded machine) would be cached by the first request of
    # a pair and spare the second its count query: count every time.
    settings.TASKCENTER_SLOW_COUNT_CACHE_SECONDS = 0
    for index in range(30):
        make_task(["SUCCESSFUL", "FAILED", "PENDING"], name=f"Task {index}")
    as_viewer.get("/api/v2/tasks/instances?size=1")  # warm the user's permission cache paths
    # A name filter adds one query (the matching names), whatever the page size.
    with still_clock():
        for filters in ("", "&status=FAILED&name=task"):
            small, data_small = list_queries(as_viewer, "size=1" + filters)
            large, data_large = list_queries(as_viewer, "size=30" + filters)
            assert len(data_small["contents"]) == 1 and len(data_large["contents"]) == 30
            assert small == large, (filters, small, large)


def test_detail_query_count_does_not_grow_with_subtasks(as_viewer):
    few = make_task(["SUCCESSFUL"] * 2)
    many = make_task(["SUCCESSFUL"] * 40)
    # Basic credentials are checked in full once, then remembered: sign in before counting.
    check_envelope(as_viewer.get(f"/api/v2/tasks/instances/{few.pk}"))
    counts = []
    with still_clock():
        for task in (few, many):
            with CaptureQueriesContext(connection) as captured:
                check_envelope(as_viewer.get(f"/api/v2/tasks/instances/{task.pk}"))
            counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


@pytest.fixture
def clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_slow_count_is_reused_for_a_few_seconds(db, settings, monkeypatch, clean_cache):
    from taskcenter.tasks.models import TaskInstance

    failed_task()
    monkeypatch.setattr(selectors, "SLOW_COUNT_SECONDS", 0.0)  # every count is "slow"
    settings.TASKCENTER_SLOW_COUNT_CACHE_SECONDS = 5
    visible = TaskInstance.objects.filter(status="FAILED")
    assert selectors.task_page(queryset=visible.order_by("-id"), page=1, size=10)[1] == 1
    failed_task()
    rows, total = selectors.task_page(queryset=visible.order_by("-id"), page=1, size=10)
    assert (len(rows), total) == (2, 1)  # rows are fresh, the count is the cached one
    settings.TASKCENTER_SLOW_COUNT_CACHE_SECONDS = 0
    assert selectors.task_page(queryset=visible.order_by("-id"), page=1, size=10)[1] == 2


def test_a_fast_count_is_always_exact(db, settings, monkeypatch, clean_cache):
    from taskcenter.tasks.models import TaskInstance

    # Every count is "fast", however loaded the machine (the slow case is the test above).
    monkeypatch.setattr(selectors, "SLOW_COUNT_SECONDS", 60.0)
    settings.TASKCENTER_SLOW_COUNT_CACHE_SECONDS = 5
    visible = TaskInstance.objects.all().order_by("-id")
    failed_task()
    assert selectors.task_page(queryset=visible, page=1, size=10)[1] == 1
    failed_task()
    assert selectors.task_page(queryset=visible, page=1, size=10)[1] == 2
