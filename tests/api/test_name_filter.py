"""The list's name filter through the API: contains, case-insensitive, exact counts.

The filter goes through the task name dictionary (see tests/tasks/test_task_names.py);
these tasks are created after the migrations ran, so only the dictionary's triggers can
have recorded their names.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.db import connection

from taskcenter.tasks.sql import text_array
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


TRICKY_NAMES = [
    'Quoted "zone" task',
    "Back\\slash\\ task",
    "Comma, {brace} task",
    "NULL",
    "  spaced task  ",
    "Ünïcode tâsk",
    "Single 'quote' task",
    "Ends with backslash task\\",
]


def test_api_name_filter_on_names_with_quotes_backslashes_and_braces(as_viewer):
    """Every matching name goes to PostgreSQL as one array written by the filter (quotes
    and backslashes escaped): each of these names finds the tasks whose names hold it."""
    tasks = {name: make_task(["SUCCESSFUL"], name=name) for name in TRICKY_NAMES}
    for name in tasks:
        query = urlencode({"name": name, "size": 100})
        data = check_envelope(as_viewer.get(f"/api/v2/tasks/instances?{query}"))["data"]
        # The filter's text is stripped, as every form field's.
        expected = {t.pk for other, t in tasks.items() if name.strip().lower() in other.lower()}
        assert {row["id"] for row in data["contents"]} == expected, name
    everything = check_envelope(as_viewer.get("/api/v2/tasks/instances?name=task&size=100"))
    assert everything["data"]["page"]["totalElements"] == sum(
        "task" in name.lower() for name in TRICKY_NAMES
    )


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's array text")
def test_text_array_reads_back_as_the_very_texts(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::text[])", [text_array(TRICKY_NAMES)])
        assert [row[0] for row in cursor.fetchall()] == TRICKY_NAMES
