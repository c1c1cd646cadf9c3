"""A context's jobStatus as the lists show it and as they filter by it: the same words, and
the list of a plan's running contexts read in one statement."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter.schedules import status
from taskcenter.schedules.models import Fire
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
)
from tests.factories import T0, end_run, make_plan, run_now

pytestmark = pytest.mark.django_db


def _run_again(key: str) -> int:
    """Another run of the plan `key` started now (its ONCE item), as the context's id."""
    plan = make_plan(key, [{"triggerType": "ONCE"}])
    fire = Fire.objects.filter(plan=plan).order_by("-id").first()
    assert fire is not None and fire.task_id is not None
    return fire.task_id


def _context_in_each_status() -> dict[str, int]:
    """One context per jobStatus a run can have, by its word."""
    pending = run_now("pending")
    running = run_now("running")
    SubtaskInstance.objects.filter(task_id=running).update(
        status=SubtaskStatus.RUNNING, start_time=T0
    )
    successful = run_now("successful")
    end_run(successful)
    rolled_back = run_now("rolled-back")
    end_run(rolled_back)
    TaskInstance.objects.filter(pk=rolled_back).update(operation=TaskRunMode.ROLLBACK)
    cancelled = run_now("cancelled")
    end_run(cancelled, TaskStatus.FAILED)
    SubtaskInstance.objects.filter(task_id=cancelled).update(operation=SubtaskRunMode.CANCEL)
    failed = run_now("failed")
    end_run(failed, TaskStatus.FAILED)
    return {
        status.PENDING: pending,
        status.RUNNING: running,
        status.SUCCESSFUL: successful,
        "CANCELLED (rolled back)": rolled_back,
        status.CANCELLED: cancelled,
        status.FAILED: failed,
    }


def test_the_filter_selects_the_contexts_the_annotation_names():
    contexts = _context_in_each_status()
    shown = dict(
        TaskInstance.objects.annotate(js=status.job_status()).values_list("pk", "js").order_by()
    )
    assert {shown[pk] for pk in contexts.values()} == set(status.JOB_STATUSES) - {status.NONE}
    for size in (1, 2, 3):
        for wanted in itertools.combinations(status.JOB_STATUSES, size):
            filtered = TaskInstance.objects.filter(status.job_status_in(wanted))
            expected = {pk for pk, word in shown.items() if word in wanted}
            assert set(filtered.values_list("pk", flat=True)) == expected, wanted


def test_the_running_contexts_of_a_plan_come_in_one_statement(as_viewer):
    for _ in range(3):
        end_run(_run_again("waited"))
    running = _run_again("waited")
    url = "/api/contexts?entityKey=waited&jobStatusList=PENDING,RUNNING&limit=1"
    with CaptureQueriesContext(connection) as captured:
        listed = as_viewer.get(url).json()
    assert [row["id"] for row in listed["data"]] == [running]
    assert listed["totalHits"] == 1
    assert not [q for q in captured.captured_queries if "COUNT(" in q["sql"]]
    end_run(running)
    listed = as_viewer.get(url).json()
    assert listed["data"] == [] and listed["totalHits"] == 0


def test_a_full_page_and_a_page_past_the_end_still_count_every_match(as_viewer):
    ran = [_run_again("paged") for _ in range(3)]
    first = as_viewer.get("/api/contexts?entityKey=paged&limit=2").json()
    assert [row["id"] for row in first["data"]] == ran[:0:-1] and first["totalHits"] == 3
    last = as_viewer.get("/api/contexts?entityKey=paged&limit=2&offset=2").json()
    assert [row["id"] for row in last["data"]] == [ran[0]] and last["totalHits"] == 3
    beyond = as_viewer.get("/api/contexts?entityKey=paged&offset=5").json()
    assert beyond["data"] == [] and beyond["totalHits"] == 3
    plans = as_viewer.get("/api/schedules?entityKey=paged&limit=1").json()
    assert len(plans["data"]) == 1 and plans["totalHits"] == 1
