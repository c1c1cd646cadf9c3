"""The list's name filter through the API: contains, case-insensitive, exact counts.

The filter goes through the task name dictionary (see tests/tasks/test_task_names.py);
these tasks are created after the migrations ran, so only the dictionary's triggers can
have recorded their names.
"""

from __future__ import annotations

from tests.api.conftest import check_envelope
from tests.factories import make_task


def test_api_name_filter_on_tasks_created_after_the_migration(as_viewer):
    first = make_task(["SUCCESSFUL"], name="Rebalance units")
    second = make_task(["FAILED"], name="Rebalance units of zone 3 (custom)")
    make_task(["FAILED"], name="Migrate tenant")
    data = check_envelope(as_viewer.get("/api/v2/tasks/instances?name=REBALANCE"))["data"]
    assert [row["id"] for row in data["contents"]] == [second.pk, first.pk]
    assert data["page"]["totalElements"] == 2
    data = check_envelope(as_viewer.get("/api/v2/tasks/instances?name=rebalance&status=FAILED"))[
        "data"
    ]
    assert [row["id"] for row in data["contents"]] == [second.pk]
    assert data["page"]["totalElements"] == 1


def test_api_name_filter_matching_no_name_with_the_count_cache_on(as_viewer, settings):
    # No name matches: the filter compiles to no SQL at all, and the cached count copes.
    settings.TASKCENTER_SLOW_COUNT_CACHE_SECONDS = 5
    make_task(["FAILED"], name="Migrate tenant")
    data = check_envelope(as_viewer.get("/api/v2/tasks/instances?name=no-such-name"))["data"]
    assert data["contents"] == [] and data["page"]["totalElements"] == 0
