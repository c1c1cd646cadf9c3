"""Every read of tasks, subtasks and logs: one function per question."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import (
    BigIntegerField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Now
from django.utils import timezone

from taskcenter.core.errors import InvalidDefinition, TaskNotFound
from taskcenter.tasks import definitions, parameters, sql
from taskcenter.tasks.filters import (
    AnyOf,
    CountedFilters,
    clusters_named_like,
    counted_filters,
    duration_sort,
    filter_operations,
    filter_tasks,
    parse_sort,
    read_task_filters,
)
from taskcenter.tasks.models import (
    ACTIVE_SUBTASK_STATUSES,
    FINISHED,
    FINISHED_DURATION,
    RUNNING_STARTED,
    AuditEntry,
    Cluster,
    Host,
    LogChunk,
    NodeType,
    SubtaskAttempt,
    SubtaskInstance,
    SubtaskStatus,
    TaskCount,
    TaskDefinition,
    TaskInstance,
    TaskNameCount,
    TaskStatus,
)


def task_get(*, task_id: int) -> TaskInstance:
    try:
        return TaskInstance.objects.select_related("cluster", "tenant", "creator").get(pk=task_id)
    except (TaskInstance.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def definition_get(
    *, name: str, version: int | None = None
) -> tuple[definitions.DefinitionSpec, TaskDefinition | None]:
    """The spec of a definition, code-registered or data, and its stored row if any.

    A code definition's row is created by task_start, once the parameters are accepted,
    so a refused request leaves nothing behind.
    """
    spec = definitions.get_registered_definition(name)
    if spec is not None and (version is None or version == spec.version):
        row = TaskDefinition.objects.filter(name=spec.name, version=spec.version).first()
        return spec, row
    rows = TaskDefinition.objects.filter(name=name, source=TaskDefinition.Source.DATA)
    row = rows.filter(version=version).first() if version else rows.order_by("-version").first()
    if row is None:
        raise InvalidDefinition(f"There is no task definition named '{name}'.")
    return definitions.definition_from_data(row.name, row.version, row.spec), row


def shown_parameters(task: TaskInstance) -> dict | None:
    """A task's parameters as pages show them: the secrets its definition declares masked."""
    definition = task.definition
    if definition is None:
        return task.parameters
    try:
        spec = definition_get(name=definition.name, version=definition.version)[0]
    except InvalidDefinition:
        return task.parameters
    return parameters.masked(spec, task.parameters)


def task_list(*, visible: QuerySet[TaskInstance], params) -> QuerySet[TaskInstance]:
    """The filtered, sorted list of tasks (params: OCP list parameters, a QueryDict).

    `visible` is the caller's scope, from taskcenter.accounts.access.visible_tasks(user).
    Raises InvalidParameter for a malformed filter or sort.
    """
    queryset = filter_tasks(visible, params)
    return queryset.order_by(*parse_sort(params.getlist("sort")))


def task_list_with_tally(
    *, visible: QuerySet[TaskInstance], clusters: frozenset[int] | None, params
) -> tuple[QuerySet[TaskInstance], TaskTally | None]:
    """task_list, and how to total it (a TaskTally; None: count it), the filters read
    once: what a page of the list asks for (the API's and the dashboard's). `clusters` is
    the scope of `visible` (access.visible_clusters)."""
    filterset = read_task_filters(visible, params)
    queryset = filterset.qs.order_by(*parse_sort(params.getlist("sort")))
    return queryset, _tally(clusters, counted_filters(filterset))


class SubtaskBrief(NamedTuple):
    """A subtask as a list page shows it (task_page's `subtasks_brief` on each task)."""

    pk: int
    name: str
    description: str
    status: str
    operation: str
    series_id: int


def task_page(
    *,
    queryset: QuerySet[TaskInstance],
    page: int,
    size: int,
    with_subtasks: bool = True,
    tally: TaskTally | None = None,
) -> tuple[list[TaskInstance], int]:
    """One page of tasks with cluster, tenant, creator and basic subtasks (as
    `subtasks_brief`, a list of SubtaskBrief in series order), and the total.

    A constant number of queries whatever the page size: count, page ids, page, subtasks.
    with_subtasks=False skips the subtasks (the dashboard's list shows only counts, and a
    page of 50 tasks of 1,000 subtasks each would otherwise load 50,000 rows).
    `tally` (from task_list_with_tally, for the same filters and scope) adds the total up
    from TaskCount or TaskNameCount instead of counting the tasks.

    The page's ids come first from the bare filtered, sorted queryset (an index walk), and
    only those rows are then joined and counted: joining and grouping before the OFFSET
    would make a deep page of a million tasks aggregate every row before it.
    """
    total, ids = _total_and_page_ids(queryset, page=page, size=size, tally=tally)
    if not ids:
        return [], total
    rows = (
        queryset.filter(AnyOf(F("pk"), ids))
        .select_related("cluster", "tenant", "creator")
        .annotate(subtask_successful=_successful_subtasks())
    )
    by_id = {row.pk: row for row in rows}
    if with_subtasks:
        # Plain tuples, not model instances: a page that holds a task of 1,000 subtasks
        # spent more time building instances than the database took to find the rows.
        for task in by_id.values():
            task.subtasks_brief = []
        for task_id, *brief in _subtask_brief_values(list(by_id)):
            by_id[task_id].subtasks_brief.append(SubtaskBrief(*brief))
    return [by_id[pk] for pk in ids if pk in by_id], total


class TaskRow(NamedTuple):
    """A task as the API's list shows it, read as one tuple (no model instances: a page
    of 2,000 tasks spent more time building 8,000 of them than the database took)."""

    pk: int
    name: str
    cluster_id: int | None
    cluster_name: str | None
    cluster_ob_id: int | None
    cluster_type: str | None
    tenant_id: int | None
    tenant_name: str | None
    tenant_ob_id: int | None
    tenant_cluster_id: int | None
    tenant_mode: str | None
    creator_id: int | None
    creator_name: str | None
    status: str
    type: str
    operation: str
    # The times as integer microseconds since the epoch (api.envelope.MicrosIso formats
    # them).
    create_us: int | None
    start_us: int | None
    finish_us: int | None
    # Each subtask as the tuple the database sent: (task id, then SubtaskBrief's fields).
    # A page of 2,000 tasks holds 10,000 of them, and every object made per subtask is
    # time spent, in its making and in the garbage collector's passes over it.
    subtasks: list[tuple]


_TASK_ROW_COLUMNS = (
    "pk",
    "name",
    "cluster_id",
    "cluster__name",
    "cluster__ob_cluster_id",
    "cluster__type",
    "tenant_id",
    "tenant__name",
    "tenant__ob_tenant_id",
    "tenant__cluster_id",
    "tenant__mode",
    "creator_id",
    "creator__username",
    "status",
    "type",
    "operation",
)
_TASK_ROW_TIMES = ("create_time", "start_time", "finish_time")


def task_list_page(
    *, queryset: QuerySet[TaskInstance], page: int, size: int, tally: TaskTally | None = None
) -> tuple[list[TaskRow], int]:
    """task_page for the API: the same tasks in the same order, as TaskRow tuples with
    their subtasks in brief. Queries: count, page ids, rows, subtasks."""
    total, ids = _total_and_page_ids(queryset, page=page, size=size, tally=tally)
    if not ids:
        return [], total
    rows = queryset.order_by().filter(AnyOf(F("pk"), ids))
    if connection.vendor == "postgresql":
        times = {f"{name}_us": sql.EpochMicros(name) for name in _TASK_ROW_TIMES}
        values = rows.annotate(**times).values_list(*_TASK_ROW_COLUMNS, *times)
        by_id = {row[0]: TaskRow._make((*row, [])) for row in values}
    else:
        width = len(_TASK_ROW_COLUMNS)
        by_id = {
            row[0]: TaskRow._make((*row[:width], *map(_micros, row[width:]), []))
            for row in rows.values_list(*_TASK_ROW_COLUMNS, *_TASK_ROW_TIMES)
        }
    for values in _subtask_brief_values(list(by_id)):
        by_id[values[0]].subtasks.append(values)
    return [by_id[pk] for pk in ids if pk in by_id], total


def _successful_subtasks() -> Count:
    """A task's successful subtasks: what its progress bar shows."""
    return Count("subtasks", filter=Q(subtasks__status=SubtaskStatus.SUCCESSFUL))


# A page from this offset on is deep: a list whose total is counted (not read from
# TaskCount) may get its total and its page's ids from one pass over the matching tasks
# (PostgreSQL; _total_and_deep_page_ids), and sort=duration first asks whether only
# finished tasks match (_page_ids). Shallower pages are a short index walk.
DEEP_OFFSET = 5_000
# One pass sorts every match, where a page of its own may be an index walk that stops at
# offset + size: it is taken when the planner expects at most this many times offset +
# size matches, so that a page of its own would read a good part of them anyway.
ONE_PASS_MATCHES_PER_ROW = 4


def _total_and_page_ids(
    queryset: QuerySet[TaskInstance], *, page: int, size: int, tally: TaskTally | None
) -> tuple[int, list[int]]:
    """A list's total (from TaskCount when `tally` says how, else counted) and the ids of
    its page: the first two queries of task_page and task_list_page alike (one for a deep
    page of a counted list)."""
    offset = (page - 1) * size
    if (
        tally is None
        and offset >= DEEP_OFFSET
        and connections[queryset.db].vendor == "postgresql"
        and duration_sort(queryset.query.order_by) is None
        and _expected_matches(queryset) <= ONE_PASS_MATCHES_PER_ROW * (offset + size)
    ):
        return _total_and_deep_page_ids(queryset, offset=offset, size=size)
    total = tally.total(queryset) if tally is not None else _task_count(queryset)
    return total, _page_ids(queryset, offset=offset, size=size)


def _expected_matches(queryset: QuerySet[TaskInstance]) -> int:
    """PostgreSQL: how many tasks the planner expects the filtered `queryset` to match
    (EXPLAIN, no execution: half a millisecond)."""
    try:
        plan = queryset.order_by().values("pk").explain(format="json")
    except EmptyResultSet:  # filters that match nothing: no SQL to run
        return 0
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"]) if plan else 0


def _total_and_deep_page_ids(
    queryset: QuerySet[TaskInstance], *, offset: int, size: int
) -> tuple[int, list[int]]:
    """PostgreSQL: the count of the filtered `queryset` and the ids of its rows offset + 1
    to offset + size in its order, from one statement: count(*) and the sorted array of
    the matching ids, sliced in the database (the same order as the ORDER BY, which
    always ends with the id).

    The count reads every match, and a deep page served by no index in its order reads
    them all again and keeps the top offset + size: a name filter matching 101,000 tasks
    (an index-only scan of the (name, id) index), page 5,000, took 13 ms to count, then
    25 ms for the page; both at once take 25 ms."""
    # The stubs allow names only; Django takes expressions too (sort=duration, name).
    ordered = ArrayAgg("pk", order_by=queryset.query.order_by)  # type: ignore[arg-type]
    page = Func(
        ordered,
        template=f"(%(expressions)s)[{offset + 1}:{offset + size}]",
        output_field=ArrayField(BigIntegerField()),
    )
    found = queryset.order_by().aggregate(total=Count("pk"), ids=page)
    return found["total"], found["ids"] or []


def _subtask_brief_values(task_ids: list[int]) -> QuerySet:
    """(task id, then SubtaskBrief's fields) of every subtask of `task_ids`, in series
    order."""
    return (
        SubtaskInstance.objects.filter(AnyOf(F("task_id"), task_ids))
        .order_by("task_id", "series_id", "pk")
        .values_list("task_id", *SubtaskBrief._fields)
    )


def _page_ids(queryset: QuerySet[TaskInstance], *, offset: int, size: int) -> list[int]:
    """The ids of one page of the filtered, sorted `queryset`.

    sort=duration orders by an expression that no index holds (a running task's duration
    grows with the clock). Where the database can order and limit each part of a UNION
    (PostgreSQL), the page is merged from three index walks instead of a sort of every
    matching task: finished tasks by their stored-by-index duration, running ones by start
    time (now minus start: the earlier, the longer), then the tasks not started (no
    duration: last, newest first). Each part stops at offset + size rows.
    """
    direction = duration_sort(queryset.query.order_by)
    features = connections[queryset.db].features
    if direction is None or not features.supports_slicing_ordering_in_compound:
        return list(queryset.values_list("pk", flat=True)[offset : offset + size])
    base = queryset.order_by()
    limit = offset + size
    descending = direction == "desc"
    finished = (
        base.filter(FINISHED)
        .annotate(sort_duration=FINISHED_DURATION, sort_rank=Value(0))
        .order_by(
            FINISHED_DURATION.desc() if descending else FINISHED_DURATION.asc(), F("id").desc()
        )
        .values_list("pk", "sort_duration", "sort_rank")[:limit]
    )
    running = (
        base.filter(finish_time__isnull=True, start_time__isnull=False)
        .annotate(
            sort_duration=ExpressionWrapper(Now() - F("start_time"), output_field=DurationField()),
            sort_rank=Value(0),
        )
        .order_by("start_time" if descending else "-start_time", "-id")
        .values_list("pk", "sort_duration", "sort_rank")[:limit]
    )
    unstarted = (
        base.filter(start_time__isnull=True)
        .annotate(sort_duration=Value(None, output_field=DurationField()), sort_rank=Value(1))
        .order_by("-id")
        .values_list("pk", "sort_duration", "sort_rank")[:limit]
    )
    if (
        offset >= DEEP_OFFSET
        and not base.filter(RUNNING_STARTED).exists()
        and not base.filter(start_time__isnull=True).exists()
    ):
        # Only finished tasks match (a status filter of a finished state, say): the page
        # is the finished tasks' index walk itself, offset included, instead of the
        # merge's sort of offset + size rows (page 10,000 of status=FAILED: 100,000 rows
        # sorted on disk).
        return [pk for pk, _, _ in finished[offset:limit]]
    if offset >= DEEP_OFFSET and not descending:
        page = _finished_walk_alone(base, finished, offset, limit)
        if page is not None:
            return page
    if offset >= DEEP_OFFSET and descending:
        page = _running_then_finished(base, running, finished, offset, limit)
        if page is not None:
            return page
    merged = finished.union(running, unstarted, all=True).order_by(
        "sort_rank", "-sort_duration" if descending else "sort_duration", "-pk"
    )
    return [pk for pk, _, _ in merged[offset:limit]]


def _finished_walk_alone(
    base: QuerySet[TaskInstance], finished, offset: int, limit: int
) -> list[int] | None:
    """Ascending by duration, the page from the finished tasks' walk alone, when its rows
    are the sort's: the walk fills the page and every matching running task is longer than
    the page's last finished one (tasks not started come last). None otherwise. A running
    task only grows longer, so what holds now still holds when the page is read. Page
    10,000 of an unfiltered list merged and sorted 100,000 rows of each walk (57 ms); the
    finished walk alone reads its index once, the page's rows and their durations at
    once."""
    rows = list(finished[offset:limit])
    if len(rows) < limit - offset:
        return None
    if _running_shorter_than(base, rows[-1][1]):
        return None
    return [pk for pk, _, _ in rows]


def _running_then_finished(
    base: QuerySet[TaskInstance], running, finished, offset: int, limit: int
) -> list[int] | None:
    """Descending by duration, when every matching running task is longer than every
    finished one: the page is the running tasks' walk, then the finished tasks' walk past
    the running ones' count (None otherwise, or when the page reaches the tasks not
    started, which come last). A running task only grows longer, so what holds now still
    holds when the page is read. Page 10,000 of an unfiltered list merged and sorted
    100,000 rows of each walk (58 ms). The running tasks are counted only when their walk
    leaves the page empty: a walk that ends inside the page has counted them itself."""
    longest = list(finished[:1])
    if longest and _running_shorter_than(base, longest[0][1]):
        return None
    rows = [pk for pk, _, _ in running[offset:limit]]
    if len(rows) == limit - offset:
        return rows
    running_count = offset + len(rows) if rows else base.filter(RUNNING_STARTED).count()
    start = max(offset - running_count, 0)
    rows += [pk for pk, _, _ in finished[start : limit - running_count]]
    return rows if len(rows) == limit - offset else None


def _running_shorter_than(base: QuerySet[TaskInstance], duration) -> bool:
    """Whether a matching running task has run for no longer than `duration` yet (it would
    sort among finished tasks of that duration, not beyond them)."""
    return base.filter(RUNNING_STARTED, start_time__gte=Now() - duration).exists()


class TaskTally(NamedTuple):
    """A task list's filters that TaskCount can total: statuses, types, one cluster, and
    the caller's cluster scope (None: all of each); and, for a keyword, the clusters whose
    name contains it (every task of theirs matches) and the others (counted). With a name
    filter's match (`names`), TaskNameCount totals the same filters."""

    scope: frozenset[int] | None
    statuses: list[str] | None
    types: list[str] | None
    cluster_id: int | None
    keyword_clusters: tuple[list[int], list[int]] | None = None
    names: Q | None = None

    def total(self, queryset: QuerySet[TaskInstance]) -> int:
        """The total of `queryset`, the list these filters and scope select."""
        counts: QuerySet = (
            TaskCount.objects.all()
            if self.names is None
            else TaskNameCount.objects.filter(self.names)
        )
        if self.scope is not None:
            counts = counts.filter(cluster_id__in=self.scope)
        if self.cluster_id is not None:
            counts = counts.filter(cluster_id=self.cluster_id)
        if self.statuses:
            counts = counts.filter(status__in=self.statuses)
        if self.types:
            counts = counts.filter(type__in=self.types)
        if self.keyword_clusters is None:
            return counts.aggregate(total=Sum("n"))["total"] or 0
        # A keyword that names a cluster matches all its tasks: those are totalled, and
        # the tasks of the other clusters (and of none) counted. A keyword that every
        # cluster's name holds counted all million tasks in 89 ms; now the few of no
        # cluster, through the cluster index.
        named, others = self.keyword_clusters
        in_named = counts.filter(cluster_id__in=named).aggregate(total=Sum("n"))["total"] or 0
        rest = queryset.filter(Q(cluster_id__in=others) | Q(cluster_id__isnull=True))
        return in_named + _task_count(rest)


def _tally(clusters: frozenset[int] | None, counted: CountedFilters | None) -> TaskTally | None:
    """How to total the task list of the filters `counted` (counted_filters') from TaskCount
    or TaskNameCount, for a caller who sees the tasks of `clusters` (None: every cluster;
    access.visible_clusters); None when its filters need the tasks themselves (tenant, host,
    creator, time range; a keyword that names no cluster, or too many) or the database
    keeps no counts (SQLite)."""
    if counted is None or connection.vendor != "postgresql":
        return None
    keyword_clusters = None
    if counted.keyword is not None:
        keyword_clusters = clusters_named_like(counted.keyword)
        if keyword_clusters is None:
            return None
    return TaskTally(
        scope=clusters,
        statuses=counted.statuses,
        types=counted.types,
        cluster_id=counted.cluster_id,
        keyword_clusters=keyword_clusters,
        names=counted.names,
    )


SLOW_COUNT_SECONDS = 0.05


def _task_count(queryset: QuerySet[TaskInstance]) -> int:
    """The count of a filtered list; a slow one is kept for a few seconds.

    On a million tasks a substring filter matching many rows costs ~0.2 s to count, and a
    list is asked for again and again (paging, the dashboard's refresh). A count that took
    longer than SLOW_COUNT_SECONDS is cached for TASKCENTER_SLOW_COUNT_CACHE_SECONDS under
    its exact SQL (filters and visibility included); fast counts are always exact.
    """
    ttl = getattr(settings, "TASKCENTER_SLOW_COUNT_CACHE_SECONDS", 0)
    if ttl <= 0:
        return queryset.count()
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # e.g. a name filter that matches no name: no SQL to run
        return 0
    key = "taskcenter:task-count:" + hashlib.sha256(repr((sql, params)).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    started = time.monotonic()
    total = queryset.count()
    if time.monotonic() - started >= SLOW_COUNT_SECONDS:
        cache.set(key, total, ttl)
    return total


def task_rows_by_id(*, visible: QuerySet[TaskInstance], ids: list[int]) -> list[TaskInstance]:
    """The visible tasks among `ids`, newest first, shaped like the rows of a list page."""
    rows, _ = task_page(
        queryset=visible.filter(pk__in=ids).order_by("-id"),
        page=1,
        size=max(1, len(ids)),
        with_subtasks=False,
    )
    return rows


def running_progress(*, visible: QuerySet[TaskInstance], ids: list[int]) -> dict[int, int]:
    """How many subtasks have succeeded in each RUNNING task among `ids`: what a list's
    progress bar shows. It changes without the tasks' change stamp (a finish does not
    stamp its task: sql.lock_task_statement), so a live list reads it for the running
    rows it shows; one grouped count over the (task, status) index."""
    if not ids:
        return {}
    return dict(
        visible.filter(pk__in=ids, status=TaskStatus.RUNNING)
        .order_by()
        .values_list("pk")
        .annotate(n=_successful_subtasks())
    )


def task_repeats(*, visible: QuerySet[TaskInstance], task_id: int, limit: int = 20) -> list[int]:
    """The ids of the visible tasks that run `task_id` again, newest first."""
    return list(
        visible.filter(repeat_of_id=task_id).order_by("-id").values_list("pk", flat=True)[:limit]
    )


def definition_version_or_current(*, name: str, version: int | None):
    """The spec of a definition at `version` when it can still be started, else its
    current one (a code definition keeps only its current version)."""
    try:
        return definition_get(name=name, version=version)[0]
    except InvalidDefinition:
        return definition_get(name=name)[0]


def task_creators(*, visible: QuerySet[TaskInstance]) -> list[tuple[int, str]]:
    """The users who created at least one visible task, as (id, username)."""
    return list(
        visible.filter(creator__isnull=False)
        .values_list("creator_id", "creator__username")
        .distinct()
        .order_by("creator__username")
    )


def task_counts_by_status(*, visible: QuerySet[TaskInstance]) -> dict[str, int]:
    return dict(visible.values_list("status").annotate(n=Count("pk")).order_by())


# --- Changes since a cursor (the live pages) ----------------------------------------------------

# A change is stamped (updated_at) a moment before its transaction commits, so a change
# can become visible after a poll that already read later stamps. A cursor therefore never
# moves past CHANGE_LAG before the moment it was made (longer than any transaction that
# changes tasks takes: a start stamps its tasks again as its last write), and holds a
# fingerprint of the changes stamped after it: a poll whose rows since the cursor have the
# same fingerprint has nothing new. A change is so sent for a few polls, never missed.
CHANGE_LAG = timedelta(seconds=5)
# More changes than this since a cursor: the caller reloads instead of patching rows.
CHANGES_MAX = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def change_stamp(moment: datetime | None) -> str:
    """A moment as an exact integer of microseconds: the text of a cursor."""
    return str((moment - _EPOCH) // timedelta(microseconds=1)) if moment else "0"


class Changes(NamedTuple):
    """What changed among the visible tasks since a cursor (task_changes)."""

    cursor: str  # hand it back on the next poll
    changed: bool  # anything changed since the cursor the caller gave
    # The tasks changed lately (newest change first): those the caller has not seen and
    # perhaps a few it has. None when there were too many to list, or the caller had no
    # readable cursor: then reload everything.
    ids: list[int] | None


def task_changes(*, visible: QuerySet[TaskInstance], cursor: str = "") -> Changes:
    """The tasks changed since `cursor` (from a previous call; "" for none), read through
    the (updated_at, id) index: the cost follows the number of recent changes, never the
    number of tasks."""
    return row_changes(stamped=visible, cursor=cursor)


def row_changes(*, stamped: QuerySet[Any], cursor: str = "") -> Changes:
    """task_changes for any rows stamped by an `updated_at` (the schedules' plans too)."""
    visible = stamped
    since, seen = _parse_cursor(cursor)
    new_since = timezone.now() - CHANGE_LAG
    floor = new_since if since is None else min(since, new_since)
    rows = list(
        visible.filter(updated_at__gt=floor)
        .order_by("-updated_at", "-id")
        .values_list("pk", "updated_at")[: CHANGES_MAX + 1]
    )
    truncated = len(rows) > CHANGES_MAX
    if since is not None and not truncated and _fingerprint(rows) == seen:
        return Changes(cursor, False, [])
    recent = [(pk, at) for pk, at in rows if at > new_since]
    mark = "*" if truncated else _fingerprint(recent)  # "*": never equal to a fingerprint
    new_cursor = f"{change_stamp(new_since)}.{mark}"
    if since is None or truncated:
        return Changes(new_cursor, True, None)
    return Changes(new_cursor, True, [pk for pk, _ in rows])


def _parse_cursor(cursor: str) -> tuple[datetime | None, str]:
    stamp, _, seen = cursor.partition(".")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 18:
        return None, ""
    return _EPOCH + timedelta(microseconds=int(stamp)), seen


def _fingerprint(rows: list[tuple[int, datetime]]) -> str:
    digest = hashlib.blake2b(digest_size=6)
    for pk, at in sorted(rows):
        digest.update(f"{pk}:{change_stamp(at)};".encode())
    return digest.hexdigest()


def task_top_counts(*, visible: QuerySet[TaskInstance]) -> dict[str, int]:
    """Running and failed tasks, as the top bar shows them, counted through the (status,
    id) index once per scope and latest change: every open page of a scope polling the
    same state shares one count. Kept CHANGE_LAG at most, so that a change committed
    after a later one still reaches the counts."""
    try:
        scope = hashlib.sha256(str(visible.query).encode()).hexdigest()[:16]
    except EmptyResultSet:  # a user who sees no task
        return {TaskStatus.RUNNING: 0, TaskStatus.FAILED: 0}
    latest = visible.order_by("-updated_at", "-id").values_list("updated_at", flat=True)[:1]
    key = f"taskcenter:top-counts:{scope}:{change_stamp(latest[0] if latest else None)}"
    counts = cache.get(key)
    if counts is None:
        counts = {
            status: visible.filter(status=status).count()
            for status in (TaskStatus.RUNNING, TaskStatus.FAILED)
        }
        cache.set(key, counts, CHANGE_LAG.total_seconds())
    return counts


def task_ids_among(*, queryset: QuerySet[TaskInstance], ids: list[int]) -> set[int]:
    """Those of `ids` that a (filtered) list holds."""
    return set(queryset.filter(pk__in=ids).order_by().values_list("pk", flat=True))


def task_subtasks(*, task: TaskInstance) -> list[SubtaskInstance]:
    return list(task.subtasks.order_by("series_id", "pk"))


class SubtaskRow(NamedTuple):
    """A subtask with what the API's task detail shows of it, read as one tuple: the same
    attribute names as SubtaskInstance but for its times, which are integer microseconds
    since the epoch (`create_us`, `start_us`, `finish_us`; `start_time` is there as a
    datetime for the approval gate's expiry). A task of 1,000 subtasks spent three times
    the query's time building model instances, and a third of what was left making and
    formatting 3,000 datetimes."""

    pk: int
    name: str
    series_id: int
    description: str
    timeout: int
    status: str
    operation: str
    executor: str
    run_time: int
    retry_count: int
    node_type: str
    parallel_idx: int
    upstream_ids: list[int]
    downstream_ids: list[int]
    prohibit_rollback: bool
    create_us: int | None
    start_us: int | None
    finish_us: int | None
    result: Any
    action: dict

    @property
    def start_time(self) -> datetime | None:
        return _from_micros(self.start_us)


# SubtaskRow's columns as SubtaskInstance names them.
_SUBTASK_ROW_COLUMNS = (
    *SubtaskRow._fields[:15],
    "create_time",
    "start_time",
    "finish_time",
    "result",
    "action",
)


def task_subtask_rows(*, task_id: int) -> list[SubtaskRow]:
    """Every subtask of a task in series order, as SubtaskRow tuples (on PostgreSQL read
    by sql.subtask_rows_statement: see there why)."""
    if connection.vendor != "postgresql":
        return [
            SubtaskRow._make(
                (*head, _micros(created), _micros(started), _micros(finished), result, action)
            )
            for *head, created, started, finished, result, action in SubtaskInstance.objects.filter(
                task_id=task_id
            )
            .order_by("series_id", "pk")
            .values_list(*_SUBTASK_ROW_COLUMNS)
        ]
    return [
        SubtaskRow._make((*head, sql.json_value(result), sql.json_value(action) or {}))
        for *head, result, action in sql.run(*sql.subtask_rows_statement(task_id))
    ]


_ONE_MICROSECOND = timedelta(microseconds=1)


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _micros(value: datetime | None) -> int | None:
    """A time as integer microseconds since the epoch, as sql._micros reads it."""
    return None if value is None else (value - _EPOCH) // _ONE_MICROSECOND


def subtask_get(*, task_id: int, subtask_id: int) -> SubtaskInstance:
    try:
        return SubtaskInstance.objects.get(pk=subtask_id, task_id=task_id)
    except (SubtaskInstance.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(
            f"The {subtask_id} subtask does not exist in the {task_id} task."
        ) from None


def subtask_identities(*, subtask_ids: list[int]) -> list[tuple[int, int, str, int]]:
    """(id, task id, name, attempt) of these subtasks: what an event about them names."""
    return list(
        SubtaskInstance.objects.filter(pk__in=subtask_ids).values_list(
            "pk", "task_id", "name", "attempt"
        )
    )


def subtask_attempt_status(*, subtask_id: int, attempt: int) -> str | None:
    """The status of this attempt, or None when the subtask has moved on to another."""
    row = SubtaskInstance.objects.filter(pk=subtask_id).values_list("attempt", "status").first()
    if row is None or row[0] != attempt:
        return None
    return row[1]


def attempts_without_heartbeat(*, since: datetime) -> list[tuple[int, int, datetime]]:
    """Running attempts whose last heartbeat (or claim) is older than `since`."""
    rows = SubtaskInstance.objects.filter(
        status__in=[SubtaskStatus.RUNNING, SubtaskStatus.CANCELING], heartbeat_at__lt=since
    ).values_list("pk", "attempt", "heartbeat_at")
    # The filter already leaves out a NULL heartbeat; the guard says so to the reader too.
    return [(pk, attempt, beat) for pk, attempt, beat in rows if beat is not None]


def running_tasks_without_work(*, limit: int = 1000) -> list[int]:
    """RUNNING tasks none of whose subtasks is READY, RUNNING or CANCELING.

    A task's status is derived from its subtasks when an attempt ends; a worker that stops
    right after ending the last attempt of a task can leave it RUNNING with nothing left
    to run. The reaper settles these.
    """
    at_work = SubtaskInstance.objects.filter(
        task_id=OuterRef("pk"), status__in=ACTIVE_SUBTASK_STATUSES
    )
    return list(
        TaskInstance.objects.filter(status=TaskStatus.RUNNING)
        .filter(~Exists(at_work))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def subtask_counts_by_status() -> dict[str, int]:
    return dict(SubtaskInstance.objects.values_list("status").annotate(n=Count("pk")).order_by())


def oldest_ready_at() -> datetime | None:
    """When the attempt that has waited longest for a worker became READY (None: none)."""
    return SubtaskInstance.objects.filter(status=SubtaskStatus.READY).aggregate(
        oldest=Min("ready_at")
    )["oldest"]


def ready_attempts_among(*, attempts: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Those of the (subtask id, attempt) pairs that are still READY at that attempt."""
    return set(
        SubtaskInstance.objects.filter(
            pk__in={subtask_id for subtask_id, _ in attempts}, status=SubtaskStatus.READY
        ).values_list("pk", "attempt")
    )


def ready_downstreams(*, subtask_id: int) -> list[tuple[int, int]]:
    """The (subtask id, attempt) of the subtask's downstreams that are READY."""
    downstreams = (
        SubtaskInstance.objects.filter(pk=subtask_id)
        .values_list("downstream_ids", flat=True)
        .first()
    )
    if not downstreams:
        return []
    return list(
        SubtaskInstance.objects.filter(pk__in=downstreams, status=SubtaskStatus.READY).values_list(
            "pk", "attempt"
        )
    )


def attempts_ready_since(*, before: datetime) -> list[tuple[int, int]]:
    """READY attempts that no worker has claimed since `before`."""
    return list(
        SubtaskInstance.objects.filter(status=SubtaskStatus.READY, ready_at__lt=before).values_list(
            "pk", "attempt"
        )
    )


@dataclass
class LogSlice:
    text: str
    offset: int
    next_offset: int
    size: int
    finished: bool
    truncated: bool


def log_read(
    *,
    subtask: SubtaskInstance,
    offset: int = 0,
    limit: int | None = None,
    attempt: int | None = None,
) -> LogSlice:
    """Bytes [offset, offset+limit) of a subtask's log, reading only the chunks that hold them.

    Chunks are at most LOG_CHUNK_MAX bytes and contiguous, so the first one needed starts
    after offset - LOG_CHUNK_MAX; the (subtask, offset) index finds it directly. Offsets
    are positions in the whole log; with `attempt`, only that attempt's chunks are read
    (the text of the range that this attempt wrote) and `finished` says whether that
    attempt has ended.
    """
    size = subtask.log_size
    offset = max(0, min(offset, size))
    end = size if limit is None else min(size, offset + max(0, limit))
    parts: list[bytes] = []
    if end > offset:
        for chunk_offset, data in sql.run(
            *sql.log_read_statement(subtask.pk, offset, end, attempt)
        ):
            data = bytes(data)
            lo = max(offset - chunk_offset, 0)
            hi = min(end - chunk_offset, len(data))
            if hi > lo:
                parts.append(data[lo:hi])
    blob = b"".join(parts)
    running = subtask.status in (
        SubtaskStatus.READY,
        SubtaskStatus.RUNNING,
        SubtaskStatus.CANCELING,
    )
    if attempt is not None:
        running = running and attempt == subtask.attempt
    return LogSlice(
        text=blob.decode(errors="replace"),
        offset=offset,
        # Every byte of the attempt before `end` has been read, whoever wrote the rest.
        next_offset=offset + len(blob) if attempt is None else max(offset, end),
        size=size,
        finished=not running,
        truncated=subtask.log_truncated,
    )


def log_tail(*, subtask: SubtaskInstance, max_bytes: int = 64 * 1024) -> LogSlice:
    return log_read(subtask=subtask, offset=max(0, subtask.log_size - max_bytes))


@dataclass(frozen=True)
class LogAttempt:
    """Where one attempt's output is in a subtask's log (whole-log offsets)."""

    attempt: int
    start: int  # offset of its first byte
    end: int  # offset just past its last byte
    size: int  # bytes it wrote
    started_at: datetime | None


def log_attempt_ranges(*, subtask: SubtaskInstance) -> list[LogAttempt]:
    """Every attempt of the subtask with where its output is, oldest first.

    The attempts that wrote nothing are listed too (1 to the current attempt), so a
    retry that has not printed yet can be picked. The chunks record their attempt: one
    grouped read of the subtask's chunks (on the (subtask, offset) index, reading the
    columns stored before the data) finds the ranges, and one read of each attempt's
    first chunk its time.
    """
    chunks = LogChunk.objects.filter(subtask_id=subtask.pk)
    rows = {
        row["attempt"]: row
        for row in chunks.values("attempt")
        .annotate(first=Min("offset"), last=Max(F("offset") + F("length")), size=Sum("length"))
        .order_by()
    }
    began = dict(
        chunks.filter(offset__in=[row["first"] for row in rows.values()]).values_list(
            "offset", "created_at"
        )
    )
    ranges = []
    for number in sorted(set(rows) | set(range(1, subtask.attempt + 1))):
        row = rows.get(number)
        if row is None:
            ranges.append(LogAttempt(number, subtask.log_size, subtask.log_size, 0, None))
        else:
            first = row["first"]
            ranges.append(LogAttempt(number, first, row["last"], row["size"], began.get(first)))
    return ranges


def log_attempt_data(*, subtask: SubtaskInstance, attempt: int, end: int) -> Iterator[bytes]:
    """The bytes one attempt wrote before offset `end`, chunk by chunk (for downloads)."""
    yield from (
        bytes(data)
        for data in LogChunk.objects.filter(subtask_id=subtask.pk, attempt=attempt, offset__lt=end)
        .order_by("offset")
        .values_list("data", flat=True)
        .iterator(chunk_size=16)
    )


def log_attempts(*, subtask: SubtaskInstance) -> list[tuple[int, bytes]]:
    """The log split by attempt, for downloads: [(attempt, bytes), ...] in order."""
    by_attempt: dict[int, list[bytes]] = {}
    for attempt, data in (
        subtask.chunks.order_by("offset").values_list("attempt", "data").iterator()
    ):
        by_attempt.setdefault(attempt, []).append(bytes(data))
    return [(attempt, b"".join(parts)) for attempt, parts in by_attempt.items()]


# --- Dashboard: the graph, live states, filter choices and the audit trail --------------------


class SubtaskNode(NamedTuple):
    """What the DAG and the subtask list show of a subtask (no actions, results or logs)."""

    pk: int
    name: str
    status: str
    operation: str
    node_type: str
    run_time: int
    retry_count: int
    parallel_idx: int
    series_id: int
    upstream_ids: list[int]
    downstream_ids: list[int]
    start_time: datetime | None
    finish_time: datetime | None


def task_graph_nodes(*, task: TaskInstance) -> list[SubtaskNode]:
    """A task's subtasks as light tuples: thousands of them without building models."""
    rows = (
        SubtaskInstance.objects.filter(task_id=task.pk)
        .order_by("series_id", "pk")
        .values_list(*SubtaskNode._fields)
    )
    return [SubtaskNode._make(row) for row in rows]


def task_subtask_states(*, task_id: int) -> list[tuple[int, str, str, int]]:
    """(id, status, operation, run_time) of every subtask: what a live view polls."""
    return list(
        SubtaskInstance.objects.filter(task_id=task_id)
        .order_by("pk")
        .values_list("pk", "status", "operation", "run_time")
    )


def task_filter_choices(
    *, clusters: Collection[int] | None = None
) -> dict[str, list[tuple[int, str]]]:
    """Clusters and hosts as (id, name) for the task list's filter menus.

    `clusters`: the viewer's scope (taskcenter.accounts.access.visible_clusters), None for
    every cluster. A scoped viewer is offered their clusters, and the hosts of those
    clusters or of their tasks, nothing of anyone else's.
    """
    cluster_rows = Cluster.objects.all()
    host_rows = Host.objects.all()
    if clusters is not None:
        ids = list(clusters)
        cluster_rows = cluster_rows.filter(pk__in=ids)
        # A host of no cluster is offered when one of their tasks used it: looked up from
        # those few hosts (the host_id index), never by walking their clusters' tasks.
        loose_of_their_tasks = TaskInstance.hosts.through.objects.filter(
            host__cluster__isnull=True, taskinstance__cluster_id__in=ids
        ).values("host_id")
        host_rows = host_rows.filter(
            Q(cluster_id__in=ids) | Q(cluster__isnull=True, pk__in=loose_of_their_tasks)
        )
    return {
        "clusters": list(cluster_rows.order_by("name").values_list("pk", "name")),
        "hosts": list(host_rows.order_by("address").values_list("pk", "address")),
    }


def operation_list(*, visible: QuerySet[AuditEntry], params) -> QuerySet[AuditEntry]:
    """The audit trail, newest first, filtered by user, action, task and time (a QueryDict).

    `visible`: the rows the viewer may see (taskcenter.accounts.access.visible_audit).
    Raises InvalidParameter.
    """
    queryset = visible.select_related("task", "subtask")
    return filter_operations(queryset, params).order_by("-id")


def operation_page(
    *, queryset: QuerySet[AuditEntry], page: int, size: int
) -> tuple[list[AuditEntry], int]:
    return list(queryset[(page - 1) * size : page * size]), queryset.count()


def operation_actions(*, visible: QuerySet[AuditEntry]) -> list[str]:
    """The actions that occur among the audit rows the viewer may see, for its filter menu."""
    return list(visible.order_by("action").values_list("action", flat=True).distinct())


def task_last_audit_entry_id(*, task_id: int) -> int:
    """The id of the newest audit row of a task (0 if none): a page's "seen up to" mark."""
    return (
        AuditEntry.objects.filter(task_id=task_id)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
        or 0
    )


# What ends a failed task's wait for an operator (Action values of taskcenter.tasks.audit).
_OPERATOR_ACTIONS = ("RETRY", "ROLLBACK", "SUBTASK_RETRY", "SKIP")


def task_operator_wait(*, task_id: int) -> timedelta:
    """How long the task stood FAILED until an operator retried, skipped or rolled back:
    from each audit row of it ending FAILED to the next operator's operation on it.

    A task's start and finish span those waits (retried ten days after it failed, it
    "took" ten days); the detail page shows the waits apart. Reads the task's FINISH and
    operator rows only, through the audit trail's task index.
    """
    waited = timedelta(0)
    failed_at: datetime | None = None
    rows = (
        AuditEntry.objects.filter(task_id=task_id, action__in=("FINISH", *_OPERATOR_ACTIONS))
        .order_by("pk")
        .values_list("action", "to_status", "created_at")
    )
    for action, to_status, at in rows:
        if action == "FINISH":
            failed_at = at if to_status == TaskStatus.FAILED else None
        elif failed_at is not None:
            waited += max(timedelta(0), at - failed_at)
            failed_at = None
    return waited


def task_audit_entries_after(*, task_id: int, after_id: int) -> list[AuditEntry]:
    """Audit rows of a task newer than after_id by a person, newest first."""
    return list(
        AuditEntry.objects.filter(task_id=task_id, pk__gt=after_id, actor__isnull=False)
        .select_related("subtask")
        .order_by("-id")[:20]
    )


def subtask_routing_facts(*, subtask_ids: list[int]) -> list[tuple[int, str, str | None]]:
    """(subtask id, node type, the task's cluster name or None): what routes a subtask."""
    return list(
        SubtaskInstance.objects.filter(pk__in=subtask_ids).values_list(
            "pk", "node_type", "task__cluster__name"
        )
    )


def ready_by_routing_facts(
    *, clusters: Collection[int] | None = None
) -> list[tuple[str, str | None, int, datetime | None]]:
    """(node type, cluster name or None, READY attempts, oldest ready_at) per pair of what
    routes a subtask: the queues' depths once the routes are applied (fleet page). Read
    through the (status, heartbeat_at) index: READY rows only. `clusters`: of the tasks of
    these clusters only (a scoped viewer's), None for all."""
    ready = SubtaskInstance.objects.filter(status=SubtaskStatus.READY)
    if clusters is not None:
        ready = ready.filter(task__cluster_id__in=list(clusters))
    return list(
        ready.values_list("node_type", "task__cluster__name")
        .annotate(n=Count("pk"), oldest=Min("ready_at"))
        .order_by()
    )


# --- A job's history grid ------------------------------------------------------------------------


class GridRun(NamedTuple):
    """A run of a job as the history grid heads its column."""

    pk: int
    status: str
    operation: str
    cluster_name: str | None
    version: int | None
    create_time: datetime
    start_time: datetime | None
    finish_time: datetime | None


class GridCell(NamedTuple):
    """A step of one run: what the history grid colours, times and links."""

    task_id: int
    pk: int
    key: str
    name: str
    series_id: int
    status: str
    operation: str
    start_time: datetime | None
    finish_time: datetime | None


# A run's outcome, as the grid's filter names it: (status, operation) conditions.
RUN_OUTCOMES: dict[str, Q] = {
    "running": Q(status=TaskStatus.RUNNING),
    "failed": Q(status=TaskStatus.FAILED),
    "successful": Q(status=TaskStatus.SUCCESSFUL) & ~Q(operation="ROLLBACK"),
    "rolledback": Q(status=TaskStatus.SUCCESSFUL, operation="ROLLBACK"),
}


def job_history_runs(
    *,
    visible: QuerySet[TaskInstance],
    name: str,
    limit: int,
    outcome: str | None = None,
    cluster_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[GridRun]:
    """The latest `limit` runs of the job `name` among `visible` (every version), newest
    first, narrowed by outcome (a RUN_OUTCOMES key), cluster and creation time: one query.
    A run keeps its column whatever version of the job it ran."""
    runs = visible.filter(definition__name=name)
    if outcome:
        runs = runs.filter(RUN_OUTCOMES[outcome])
    if cluster_id is not None:
        runs = runs.filter(cluster_id=cluster_id)
    if since is not None:
        runs = runs.filter(create_time__gte=since)
    if until is not None:
        runs = runs.filter(create_time__lt=until)
    rows = runs.order_by("-id").values_list(
        "pk",
        "status",
        "operation",
        "cluster__name",
        "definition__version",
        "create_time",
        "start_time",
        "finish_time",
    )[:limit]
    return [GridRun._make(row) for row in rows]


def job_history_cells(*, task_ids: Collection[int]) -> list[GridCell]:
    """Every step of these runs, each run's in series order, in one query through the
    (task, status) index."""
    if not task_ids:
        return []
    rows = (
        SubtaskInstance.objects.filter(task_id__in=list(task_ids))
        .order_by("task_id", "series_id", "pk")
        .values_list(*GridCell._fields)
    )
    return [GridCell._make(row) for row in rows]


def cluster_names(*, clusters: Collection[int] | None = None) -> list[tuple[int, str]]:
    """(id, name) of the clusters in `clusters` (every cluster for None), by name: a
    filter menu of a viewer's scope (taskcenter.accounts.access.visible_clusters)."""
    rows = Cluster.objects.order_by("name")
    if clusters is not None:
        rows = rows.filter(pk__in=list(clusters))
    return list(rows.values_list("pk", "name"))


# --- A task's timeline ---------------------------------------------------------------------------


class PastAttempt(NamedTuple):
    """An attempt a later one replaced (SubtaskAttempt)."""

    subtask_id: int
    attempt: int
    operation: str
    status: str
    ready_at: datetime | None
    start_time: datetime | None
    finish_time: datetime | None


def task_attempt_marks(*, task_id: int) -> dict[int, tuple[int, datetime | None]]:
    """Each subtask's current attempt number and when it was made READY (the timeline's
    complement of task_graph_nodes)."""
    rows = SubtaskInstance.objects.filter(task_id=task_id).values_list("pk", "attempt", "ready_at")
    return {pk: (attempt, ready_at) for pk, attempt, ready_at in rows}


def task_past_attempts(*, task_id: int) -> list[PastAttempt]:
    """Every replaced attempt of a task's subtasks, oldest first per subtask."""
    rows = (
        SubtaskAttempt.objects.filter(task_id=task_id)
        .order_by("subtask_id", "attempt")
        .values_list(*PastAttempt._fields)
    )
    return [PastAttempt._make(row) for row in rows]


# --- Approval gates and what a subtask waits for ----------------------------------------------------

WAITING_GATES_MAX = 200  # the pending approvals a page lists (the oldest first)


def waiting_gates(
    *, visible: QuerySet[TaskInstance], limit: int = WAITING_GATES_MAX
) -> list[SubtaskInstance]:
    """Approval gates waiting for a decision, of the tasks in `visible`, the longest
    waiting first (at most `limit`)."""
    return list(waiting_gate_list(visible=visible)[:limit])


def waiting_gates_to_count(
    *, visible: QuerySet[TaskInstance], limit: int = WAITING_GATES_MAX
) -> list[SubtaskInstance]:
    """The same gates as waiting_gates, with their task's own row only: what deciding
    whether a user may decide each one reads (the top bar's count on every page). The
    four tables more that the lists show cost more to build and plan than the usual
    answer, no gate at all, costs to read."""
    gates = SubtaskInstance.objects.filter(
        status=SubtaskStatus.RUNNING,
        heartbeat_at__isnull=True,
        node_type=NodeType.APPROVAL_TASK,
        task__in=visible,
    )
    return list(gates.select_related("task").order_by("start_time", "pk")[:limit])


def waiting_gate_list(*, visible: QuerySet[TaskInstance]) -> QuerySet[SubtaskInstance]:
    """Approval gates waiting for a decision, of the tasks in `visible`, the longest
    waiting first, each with its task (cluster, tenant, creator, definition), for paging.
    A waiting gate is RUNNING without a heartbeat: read through the (status,
    heartbeat_at) index."""
    return (
        SubtaskInstance.objects.filter(
            status=SubtaskStatus.RUNNING,
            heartbeat_at__isnull=True,
            node_type=NodeType.APPROVAL_TASK,
            task__in=visible,
        )
        .select_related(
            "task", "task__cluster", "task__tenant", "task__creator", "task__definition"
        )
        .order_by("start_time", "pk")
    )


class UpstreamState(NamedTuple):
    pk: int
    name: str
    status: str
    node_type: str


def subtask_upstreams(*, subtask: SubtaskInstance) -> list[UpstreamState]:
    """The subtask's upstream steps with their states, in the task's order."""
    if not subtask.upstream_ids:
        return []
    rows = (
        SubtaskInstance.objects.filter(pk__in=list(subtask.upstream_ids), task_id=subtask.task_id)
        .order_by("series_id", "pk")
        .values_list("pk", "name", "status", "node_type")
    )
    return [UpstreamState(*row) for row in rows]


# --- The fleet's drill-down ----------------------------------------------------------------------

QUEUE_ATTEMPTS_SHOWN = 100  # the waiting attempts a queue's page lists (the oldest first)
QUEUE_ATTEMPTS_READ = 2000  # READY rows read to find them, routes applied by the caller


def subtasks_by_ids(*, ids: list[int], visible: QuerySet[TaskInstance]) -> list[SubtaskInstance]:
    """These subtasks, of the tasks in `visible` only, in the order of `ids` (with their
    tasks and clusters): what a worker runs or ran."""
    if not ids:
        return []
    found = {
        sub.pk: sub
        for sub in SubtaskInstance.objects.filter(pk__in=ids, task__in=visible).select_related(
            "task", "task__cluster"
        )
    }
    return [found[pk] for pk in dict.fromkeys(ids) if pk in found]


def ready_attempts(
    *, visible: QuerySet[TaskInstance], limit: int = QUEUE_ATTEMPTS_READ
) -> list[SubtaskInstance]:
    """READY subtasks of the tasks in `visible`, the longest waiting first, with their
    tasks' clusters (what routes them to a queue). Through the (status, heartbeat_at)
    index: READY rows only."""
    return list(
        SubtaskInstance.objects.filter(status=SubtaskStatus.READY, task__in=visible)
        .select_related("task", "task__cluster")
        .order_by("ready_at", "pk")[:limit]
    )
