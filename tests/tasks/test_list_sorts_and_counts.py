"""The task list's sort by duration and start time, and its total kept in TaskCount.

sort=duration's page is merged from index walks on PostgreSQL (selectors._page_ids); it
must give the very rows, in the very order, of the ORDER BY it replaces: that order is
asked of the database here beside it, as the oracle. The total read from TaskCount must be
the count of the tasks, after any kind of change a task can go through.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskcenter.tasks import selectors
from taskcenter.tasks.models import Cluster, TaskCount, TaskInstance, TaskNameCount, Tenant
from taskcenter.tasks.services.counts import fold_task_counts

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="TaskCount is kept on PostgreSQL only"
)


def _tasks(clusters: list[Cluster]) -> None:
    """Finished tasks with tied and distinct durations, running and unstarted ones."""
    now = timezone.now()
    rows = []
    for index in range(60):
        start = now - timedelta(hours=index % 7)
        if index % 5 == 4:
            start_time, finish_time, status = start, None, "RUNNING"
        elif index % 11 == 10:
            start_time, finish_time, status = None, None, "RUNNING"
        else:
            # Durations 0 to 3 minutes: many ties, broken by id.
            start_time = start
            finish_time = start + timedelta(minutes=index % 4)
            status = "FAILED" if index % 3 == 0 else "SUCCESSFUL"
        rows.append(
            TaskInstance(
                name=f"Task {index}",
                status=status,
                type="SCHEDULED" if index % 2 else "MANUAL",
                cluster=clusters[index % len(clusters)],
                start_time=start_time,
                finish_time=finish_time,
            )
        )
    TaskInstance.objects.bulk_create(rows)


def _clusters() -> list[Cluster]:
    return [Cluster.objects.create(name=f"c{n}", ob_cluster_id=100 + n) for n in range(3)]


@pytest.mark.parametrize(
    "filters",
    ["", "status=FAILED", "status=RUNNING", "type=SCHEDULED", "name=task%201", "clusterId=c1"],
)
@pytest.mark.parametrize("sort", ["duration,desc", "duration,asc", "startTime,desc", "startTime"])
@pytest.mark.parametrize("deep_from", [10**9, 0], ids=["shallow", "deep"])
def test_sorted_pages_are_the_rows_of_the_sort_in_its_order(
    db, monkeypatch, filters, sort, deep_from
):
    """Every page also as a deep page (selectors.DEEP_OFFSET): where only finished tasks
    match (status=FAILED), sort=duration's page is then their index walk alone."""
    monkeypatch.setattr(selectors, "DEEP_OFFSET", deep_from)
    clusters = _clusters()
    _tasks(clusters)
    filters = filters.replace("c1", str(clusters[1].pk))
    params = QueryDict(f"{filters}&sort={sort}")
    queryset = selectors.task_list(visible=TaskInstance.objects.all(), params=params)
    assert_pages_are_the_order(queryset, sizes=(1, 7, 100))


def assert_pages_are_the_order(queryset, *, sizes) -> None:
    """Every page of every size, read as the list reads it, is the queryset's ORDER BY."""
    expected = list(queryset.values_list("pk", flat=True))
    assert expected, "the filters match some tasks"
    for size in sizes:
        pages = []
        for page in range(1, len(expected) // size + 3):
            rows, total = selectors.task_list_page(queryset=queryset, page=page, size=size)
            assert total == len(expected)
            pages.extend(row.pk for row in rows)
        assert pages == expected, (str(queryset.query), size)


def _running_tasks_the_longest() -> None:
    """40 tasks: every running one longer than every finished one, and some not started."""
    now = timezone.now()
    rows = []
    for index in range(40):
        if index % 4 == 0:  # running for days
            start, finish, status = now - timedelta(days=1 + index), None, "RUNNING"
        elif index % 9 == 8:  # not started
            start, finish, status = None, None, "RUNNING"
        else:  # finished within minutes, ties included
            start = now - timedelta(hours=index)
            finish, status = start + timedelta(minutes=index % 3), "SUCCESSFUL"
        rows.append(
            TaskInstance(
                name=f"Task {index}",
                status=status,
                type="SCHEDULED" if index % 2 else "MANUAL",
                start_time=start,
                finish_time=finish,
            )
        )
    TaskInstance.objects.bulk_create(rows)


@pytest.mark.parametrize("sort", ["duration,desc", "duration,asc"])
@pytest.mark.parametrize("filters", ["", "status=RUNNING", "type=SCHEDULED"])
def test_deep_duration_pages_where_every_running_task_is_the_longest(
    db, monkeypatch, sort, filters
):
    """Every running task longer than every finished one, and tasks not started: a deep
    page reads the running tasks' walk and then the finished tasks' (descending), or the
    finished tasks' alone (ascending), and must still be the ORDER BY's rows."""
    monkeypatch.setattr(selectors, "DEEP_OFFSET", 0)
    _running_tasks_the_longest()
    queryset = selectors.task_list(
        visible=TaskInstance.objects.all(), params=QueryDict(f"{filters}&sort={sort}")
    )
    assert_pages_are_the_order(queryset, sizes=(1, 3, 7))


@postgres_only
def test_a_deep_duration_page_walks_each_index_once(db, monkeypatch):
    """Ascending, the finished tasks' walk that makes the page also tells whether it holds
    (one walk, not one to check and one to read); descending, a running tasks' walk that
    fills the page needs no count of them (each walk reads offset + size index entries,
    100,000 on page 10,000)."""
    monkeypatch.setattr(selectors, "DEEP_OFFSET", 0)
    _running_tasks_the_longest()
    visible = TaskInstance.objects.all()

    def page_statements(sort: str, page: int) -> list[str]:
        queryset = selectors.task_list(visible=visible, params=QueryDict(f"sort={sort}"))
        with CaptureQueriesContext(connection) as captured:
            rows, _ = selectors.task_list_page(queryset=queryset, page=page, size=3)
        assert len(rows) == 3
        return [query["sql"] for query in captured.captured_queries]

    finished_walk = '("tasks_taskinstance"."finish_time" - "tasks_taskinstance"."start_time")'
    ascending = page_statements("duration,asc", page=2)
    assert sum(finished_walk in sql and "OFFSET" in sql for sql in ascending) == 1, ascending
    descending = page_statements("duration,desc", page=2)  # rows 4-6 of 10 running tasks
    assert not [sql for sql in descending if "COUNT(" in sql and "finish_time" in sql]


def _visible_list(params: str, clusters):
    visible = TaskInstance.objects.all()
    if clusters is not None:
        visible = visible.filter(cluster_id__in=clusters)
    return selectors.task_list(visible=visible, params=QueryDict(params))


def _tally_of(params: str, clusters=None) -> selectors.TaskTally | None:
    """How the list of `params` is totalled for a caller who sees `clusters`."""
    return selectors.task_list_with_tally(
        visible=TaskInstance.objects.all(), clusters=clusters, params=QueryDict(params)
    )[1]


def _tally(params: str = "", clusters=None) -> int:
    tally = _tally_of(params, clusters)
    assert tally is not None
    return tally.total(_visible_list(params, clusters))


def _exact(params: str = "", clusters=None) -> int:
    return _visible_list(params, clusters).count()


LISTS = [
    "",
    "status=FAILED",
    "status=RUNNING,SUCCESSFUL",
    "type=MANUAL",
    "status=FAILED&type=SCHEDULED",
    # Totalled from TaskNameCount: a name filter, alone and with the others.
    "name=task 1",
    "name=TASK&status=FAILED",
    "name=5&type=MANUAL&status=RUNNING,FAILED",
    "name=renamed",
    "name=nothing like it",
]


def _check_every_list(clusters: list[Cluster]) -> None:
    scopes = [None, frozenset({clusters[0].pk}), frozenset({clusters[1].pk, clusters[2].pk})]
    for scope in scopes:
        for params in [
            *LISTS,
            f"clusterId={clusters[2].pk}",
            f"status=FAILED&clusterId={clusters[0].pk}",
            f"name=task&clusterId={clusters[1].pk}",
        ]:
            assert _tally(params, scope) == _exact(params, scope), (params, scope)


@postgres_only
def test_the_kept_total_is_the_count_whatever_changes_the_tasks(db):
    clusters = _clusters()
    _tasks(clusters)  # a bulk insert
    _check_every_list(clusters)
    task = TaskInstance.objects.filter(status="RUNNING").first()
    task.status = "FAILED"
    task.save()  # a save of every column
    TaskInstance.objects.filter(status="SUCCESSFUL", type="MANUAL").update(status="FAILED")
    TaskInstance.objects.filter(pk=task.pk).update(cluster=clusters[2], type="SCHEDULED")
    TaskInstance.objects.filter(status="FAILED").update(updated_at=timezone.now())  # no move
    TaskInstance.objects.filter(name__endswith="3").update(name="Renamed")  # a name's move
    _check_every_list(clusters)
    clusters[1].delete()  # its tasks' cluster becomes NULL
    TaskInstance.objects.filter(name__endswith="7").delete()
    TaskInstance.objects.create(name="One more", status="RUNNING", cluster=clusters[0])
    _check_every_list([clusters[0], clusters[0], clusters[2]])
    assert _tally() == TaskInstance.objects.count()
    rows_before = TaskCount.objects.count()
    name_rows_before = TaskNameCount.objects.count()
    fold_task_counts()
    assert TaskCount.objects.count() < rows_before
    assert TaskNameCount.objects.count() < name_rows_before
    assert not TaskNameCount.objects.filter(folded=False).exists()
    _check_every_list([clusters[0], clusters[0], clusters[2]])
    with connection.cursor() as cursor:
        # The deletes above left foreign-key checks pending, which TRUNCATE refuses.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE tasks_taskinstance CASCADE")
    assert _tally() == 0
    assert _tally("name=task") == 0


@postgres_only
def test_a_fold_adds_up_the_names_written_since_the_last_one_and_no_other(db):
    """A task with a name of its own has a count row of its own: a fold rewrites the
    rows of the keys that changed since the last fold, and leaves the others as they
    are."""
    clusters = _clusters()
    _tasks(clusters)
    fold_task_counts()
    kept = dict(TaskNameCount.objects.values_list("pk", "n"))
    task = TaskInstance.objects.filter(name="Task 12").get()
    task.status = "SUCCESSFUL" if task.status == "FAILED" else "FAILED"
    task.save(update_fields=["status"])
    fold_task_counts()
    after = dict(TaskNameCount.objects.values_list("pk", "n"))
    rewritten = set(kept) - set(after)
    assert len(rewritten) == 1  # "Task 12" in its old status: the one key gone to zero
    assert set(after) - set(kept) == {
        TaskNameCount.objects.get(name="Task 12", status=task.status).pk
    }
    _check_every_list(clusters)


@postgres_only
def test_only_status_type_cluster_and_name_filters_are_totalled_from_the_counts(db):
    for params in [
        "tenantId=1",
        "keyword=x",  # names no cluster
        "creator=a",
        "createdFrom=2025-01-01T00:00:00Z",
        "status=FAILED&hostId=1",
    ]:
        assert _tally_of(params) is None, params
    for params in [
        "",
        "status=FAILED",
        "type=MANUAL&clusterId=3",
        "sort=duration,desc&page=3",
        "name=x",
        "name=x&status=FAILED",
    ]:
        assert _tally_of(params) is not None, params


@postgres_only
def test_a_keyword_naming_clusters_totals_their_tasks_and_counts_the_others(db):
    """A keyword that names clusters matches every task of theirs: those are totalled from
    TaskCount and the rest counted, matched by name, tenant, creator or id."""
    clusters = _clusters()  # c0, c1, c2
    clusters.append(Cluster.objects.create(name="other", ob_cluster_id=200))
    _tasks(clusters)
    tenant = Tenant.objects.create(name="tenant c-side", cluster=clusters[3], ob_tenant_id=7)
    TaskInstance.objects.create(name="c outside", status="FAILED", cluster=clusters[3])
    TaskInstance.objects.create(name="no cluster c", status="RUNNING")
    TaskInstance.objects.create(name="none", status="RUNNING")
    TaskInstance.objects.create(
        name="by tenant", status="FAILED", cluster=clusters[3], tenant=tenant
    )
    some = TaskInstance.objects.filter(cluster=clusters[3]).first()
    scopes = [None, frozenset({clusters[0].pk}), frozenset({clusters[0].pk, clusters[3].pk})]
    for scope in scopes:
        for params in [
            "keyword=c",
            "keyword=C1",
            "keyword=c&status=FAILED",
            "keyword=c&type=MANUAL&status=RUNNING,FAILED",
            f"keyword=c&clusterId={clusters[3].pk}",
            f"keyword=c&clusterId={clusters[1].pk}",
            "keyword=c&name=task 1",
            "keyword=c-side",  # a tenant's name, and no cluster's: not totalled
            f"keyword={some.pk}",
        ]:
            tally = _tally_of(params, scope)
            if tally is None:  # it names no cluster (an id may, by its digits)
                assert params in ("keyword=c-side", f"keyword={some.pk}"), params
                continue
            assert _tally(params, scope) == _exact(params, scope), (params, scope)
    assert _tally_of("keyword=c-side") is None
    # The rest counted: "c outside", "no cluster c" and "by tenant" (its tenant's name).
    named = TaskInstance.objects.filter(cluster__in=clusters[:3]).count()
    assert _tally("keyword=c") == named + 3


def test_no_kept_total_on_sqlite(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    assert _tally_of("status=FAILED") is None


@pytest.mark.parametrize(
    "filters",
    ["name=task", "name=task%201", "status=FAILED&name=task", "createdFrom=2000-01-01", "name=zz"],
)
@pytest.mark.parametrize(
    "sort",
    [
        "",
        "name",
        "name,desc",
        "startTime",
        "startTime,desc",
        "finishTime",
        "id,asc",
        "duration,desc&sort=name",
    ],
)
def test_a_deep_page_of_a_counted_list_is_the_page_a_shallow_one_would_be(
    db, monkeypatch, filters, sort
):
    """Past DEEP_OFFSET a counted list reads its total and its page in one
    statement on PostgreSQL: the same total and the same rows in the same order, tasks
    without a start or finish time included, and nothing past the end."""
    _tasks(_clusters())
    params = QueryDict(f"{filters}&sort={sort}")
    queryset = selectors.task_list(visible=TaskInstance.objects.all(), params=params)
    expected = list(queryset.values_list("pk", flat=True))
    # One pass whatever the planner expects: the tables here are too small to expect few.
    monkeypatch.setattr(selectors, "ONE_PASS_MATCHES_PER_ROW", 10**9)
    for deep_from in (10**9, 0):
        monkeypatch.setattr(selectors, "DEEP_OFFSET", deep_from)
        for size in (1, 7):
            pages = []
            for page in range(1, len(expected) // size + 3):
                rows, total = selectors.task_list_page(queryset=queryset, page=page, size=size)
                assert total == len(expected), (filters, sort, page)
                pages.extend(row.pk for row in rows)
            assert pages == expected, (filters, sort, size, deep_from)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="one pass on PostgreSQL only")
def test_a_deep_page_of_a_broad_list_keeps_its_own_walk(db, monkeypatch):
    """A deep page of a list the planner expects to match many more tasks than the page
    reaches is not read in one pass (which would sort every match): its count and its page
    are two statements, the page a walk that stops at offset + size."""
    _tasks(_clusters())
    monkeypatch.setattr(selectors, "DEEP_OFFSET", 0)
    params = QueryDict("name=task")
    queryset = selectors.task_list(visible=TaskInstance.objects.all(), params=params)
    expected = list(queryset.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as broad:
        rows, total = selectors.task_list_page(queryset=queryset, page=2, size=1)
    monkeypatch.setattr(selectors, "ONE_PASS_MATCHES_PER_ROW", 10**9)
    with CaptureQueriesContext(connection) as one_pass:
        rows_one_pass, total_one_pass = selectors.task_list_page(queryset=queryset, page=2, size=1)
    assert (total, [row.pk for row in rows]) == (len(expected), expected[1:2])
    assert (total_one_pass, [row.pk for row in rows_one_pass]) == (total, expected[1:2])
    assert not any("ARRAY_AGG" in query["sql"] for query in broad.captured_queries)
    assert any("ARRAY_AGG" in query["sql"] for query in one_pass.captured_queries)
