"""A context's jobStatus, from its task's state: the one place the mapping is written.

    NONE        no run: the plan never started one (or the fire was skipped or missed)
    PENDING     the task is RUNNING but none of its subtasks has started yet
    RUNNING     the task is RUNNING and some subtask has started
    SUCCESSFUL  the task ended SUCCESSFUL (and was not rolled back)
    CANCELLED   the task ended FAILED because a subtask was cancelled, or was rolled back
                (given up: nothing it did remains)
    FAILED      the task ended FAILED otherwise

It is a database expression, so lists filter and page by it (jobStatus, jobStatusList)
with the same words they show. The annotation (`job_status`) takes the first condition that
holds; a filter (`job_status_in`) asks the wanted words' conditions directly, written so
that they exclude each other (`_conditions`), so a list of running contexts reads the
RUNNING tasks by their status rather than working out every row's word first. A test holds
the two to each other (tests/schedules/test_job_status.py).
"""

from __future__ import annotations

from collections.abc import Iterable

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


def _subtask_marks() -> tuple[Exists, Exists]:
    """Whether some subtask has started, and whether some subtask failed by a cancel."""
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
    return started, cancelled


def job_status() -> Case:
    """The jobStatus of each row of a TaskInstance queryset (annotate with it): the first
    condition that holds, so each subtask mark is asked once (`_conditions` says the same
    with conditions that exclude each other)."""
    started, cancelled = _subtask_marks()
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


def _conditions() -> dict[str, Q]:
    """Each jobStatus as a condition on a TaskInstance row; exactly one holds for any row,
    the one `job_status` gives it."""
    started, cancelled = _subtask_marks()
    rolled_back = Q(operation=TaskRunMode.ROLLBACK)
    return {
        PENDING: Q(~started, status=TaskStatus.RUNNING),
        RUNNING: Q(started, status=TaskStatus.RUNNING),
        CANCELLED: Q(rolled_back, status=TaskStatus.SUCCESSFUL)
        | Q(cancelled, status=TaskStatus.FAILED),
        SUCCESSFUL: Q(~rolled_back, status=TaskStatus.SUCCESSFUL),
        FAILED: Q(~cancelled, status=TaskStatus.FAILED),
        NONE: ~Q(status__in=[TaskStatus.RUNNING, TaskStatus.SUCCESSFUL, TaskStatus.FAILED]),
    }


def job_status_in(wanted: Iterable[str]) -> Q:
    """The TaskInstance rows whose jobStatus is one of `wanted` (filter with it)."""
    names = set(wanted)
    conditions = _conditions()
    if {PENDING, RUNNING} <= names:
        # Together they are every running task, whether or not a step has started.
        names -= {PENDING, RUNNING}
        conditions[RUNNING] = Q(status=TaskStatus.RUNNING)
        names.add(RUNNING)
    query = Q(pk__in=[])
    for name in JOB_STATUSES:
        if name in names:
            query |= conditions[name]
    return query
