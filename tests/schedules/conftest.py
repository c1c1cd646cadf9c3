"""Fixtures for the schedule tests: a controllable clock, plans built through the
verbs, and the API clients and broker stand-in of the API tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from taskcenter.schedules import inputs, verbs
from taskcenter.schedules.models import Plan
from taskcenter.tasks.models import SubtaskInstance, TaskInstance, TaskStatus

# The API tests' fixtures: personas by Basic auth, sends recorded not made.
from tests.api.conftest import (  # noqa: F401
    as_admin,
    as_operator,
    as_viewer,
    sends_recorded,
)

NOTEBOOK_JOB = "com.hengshi.nangaparbat.schedulejob.NotebookJob"
PIPELINE_JOB = "com.hengshi.nangaparbat.schedulejob.PipelineJob"
# A Monday, so weekly expressions have a known first fire.
T0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)


class Clock:
    """The scheduler's `now`, moved by the test."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cron_item(expression: str, zone: str = "UTC", item_id: int | None = None) -> dict:
    item = {"triggerType": "CRON_JOB", "cronDesc": expression, "cronType": "CRON"}
    item["timeZone"] = zone
    if item_id is not None:
        item["id"] = item_id
    return item


def dependency_item(*jobs: tuple[str, str]) -> dict:
    return {
        "triggerType": "DEPENDENCY",
        "triggerByJobs": [{"entityGroup": g, "entityKey": k} for g, k in jobs],
    }


def make_plan(
    key: str = "1",
    items: list[dict] | None = None,
    *,
    group: str = "NOTEBOOK",
    now: datetime = T0,
    actor=None,
    retry_times: int = 0,
    **fields,
) -> Plan:
    """A plan submitted through its verb, as POST /api/schedules does."""
    job = PIPELINE_JOB if group == "PIPELINE" else NOTEBOOK_JOB
    param = "pipeline" if group == "PIPELINE" else "notebook"
    body = {
        "entityGroup": group,
        "entityKey": key,
        "planItems": items if items is not None else [cron_item("0 * * * * ?")],
        "execDetail": {"jobClass": job, "jobParams": {param: 1}, "retryTimes": retry_times},
        **fields,
    }
    return verbs.plan_submit(actor=actor, data=inputs.plan_input(body), now=now).plan


def end_run(task_id: int, status: str = TaskStatus.SUCCESSFUL) -> None:
    """Test set-up: a context's task ends (no engine runs in these tests)."""
    sub_status = "SUCCESSFUL" if status == TaskStatus.SUCCESSFUL else "FAILED"
    SubtaskInstance.objects.filter(task_id=task_id).update(status=sub_status)
    TaskInstance.objects.filter(pk=task_id).update(status=status, finish_time=T0)
