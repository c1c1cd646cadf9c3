"""A context's jobStatus, from its task's state: the one place the mapping is written.

    NONE        no run: the plan never started one (or the fire was skipped or missed)
    PENDING     the task is RUNNING but none of its subtasks has started yet
    RUNNING     the task is RUNNING and some subtask has started
    SUCCESSFUL  the task ended SUCCESSFUL (and was not rolled back)
    CANCELLED   the task ended FAILED because a subtask was cancelled, or was rolled back
                (given up: nothing it did remains)
    FAILED      the task ended FAILED otherwise

It is a database expression, so lists filter and page by it (jobStatus, jobStatusList)
with the same words they show.
"""

from __future__ import annotations

from django.db.models import Case, CharField, Exists, OuterRef, Q, Value, When

from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskRunMode,
    TaskStatus,
)

NONE = "NONE"
PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCESSFUL = "SUCCESSFUL"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
JOB_STATUSES = (NONE, PENDING, RUNNING, SUCCESSFUL, FAILED, CANCELLED)


def job_status() -> Case:
    """The jobStatus of each row of a TaskInstance queryset (annotate with it)."""
    started = Exists(
        SubtaskInstance.objects.filter(task_id=OuterRef("pk"), start_time__isnull=False)
    )
    cancelled = Exists(
        SubtaskInstance.objects.filter(
            task_id=OuterRef("pk"),
            status=SubtaskStatus.FAILED,
            operation=SubtaskRunMode.CANCEL,
        )
    )
    return Case(
        When(Q(~started, status=TaskStatus.RUNNING), then=Value(PENDING)),
        When(status=TaskStatus.RUNNING, then=Value(RUNNING)),
        When(status=TaskStatus.SUCCESSFUL, operation=TaskRunMode.ROLLBACK, then=Value(CANCELLED)),
        When(status=TaskStatus.SUCCESSFUL, then=Value(SUCCESSFUL)),
        When(Q(cancelled, status=TaskStatus.FAILED), then=Value(CANCELLED)),
        When(status=TaskStatus.FAILED, then=Value(FAILED)),
        default=Value(NONE),
        output_field=CharField(),
    )
