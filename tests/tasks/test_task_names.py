"""The task name dictionary behind the list's name filter, and the filter's results.

The name filter matches names in TaskName and then tasks by name, so it is only right if
every task's name is in TaskName, however the task was written. Each result is checked
against the plain test on the task rows (name__icontains), which the filter replaces.

Tasks here are built by hand on purpose (a hand-built corner case, not a state of the
product): the dictionary must follow every way a row can be written (create, bulk_create,
raw SQL, update, save), and the filter tests need thousands of bare named rows, not runs.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict

from taskcenter.tasks import selectors
from taskcenter.tasks.models import Cluster, TaskInstance, TaskName, TaskStatus, Tenant
from tests.factories import make_cluster, make_user

pytestmark = pytest.mark.django_db

NAMES = [
    "Migrate tenant",
    "Create tenant",
    "Restore tenant",
    "Back up cluster",
    "Migrate tenant t-42 to zone 2",  # a custom name
    "MIGRATE TENANT (upper case)",
    "100%_done",  # LIKE wildcards are literal characters in a name
    "Rolling upgrade of observers",
]


def known_names() -> set[str]:
    return set(TaskName.objects.values_list("name", flat=True))


def listed(params: str) -> tuple[list[int], int]:
    queryset = selectors.task_list(visible=TaskInstance.objects.all(), params=QueryDict(params))
    rows, total = selectors.task_page(queryset=queryset, page=1, size=2000)
    return [row.pk for row in rows], total


def expected(**filters) -> list[int]:
    return list(TaskInstance.objects.filter(**filters).order_by("-id").values_list("pk", flat=True))


# --- The dictionary follows every way a task is written -------------------------------------


def test_a_created_task_adds_its_name():
    TaskInstance.objects.create(name="Brand new name")
    assert "Brand new name" in known_names()


def test_bulk_created_tasks_add_their_names_once():
    TaskInstance.objects.bulk_create(
        [TaskInstance(name=name) for name in ["Bulk A", "Bulk B", "Bulk A"]]
    )
    assert {"Bulk A", "Bulk B"} <= known_names()
    assert TaskName.objects.filter(name="Bulk A").count() == 1


def test_a_raw_sql_insert_adds_its_name():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tasks_taskinstance (name, status, type, operation, executor, "
            "prohibit_rollback, parameters, create_time, subtask_total) VALUES "
            "(%s, 'RUNNING', 'MANUAL', 'EXECUTE', '', false, '{}', CURRENT_TIMESTAMP, 0)",
            ["Raw insert"],
        )
    assert "Raw insert" in known_names()


def test_a_renamed_task_adds_its_new_name():
    task = TaskInstance.objects.create(name="Old name")
    TaskInstance.objects.filter(pk=task.pk).update(name="New name by update")
    task.refresh_from_db()
    task.name = "New name by save"
    task.save()
    assert {"Old name", "New name by update", "New name by save"} <= known_names()
    assert listed("name=by save") == ([task.pk], 1)
    assert listed("name=by update") == ([], 0)


def test_a_status_update_does_not_touch_the_dictionary():
    task = TaskInstance.objects.create(name="Steady name")
    TaskName.objects.filter(name="Steady name").delete()
    TaskInstance.objects.filter(pk=task.pk).update(status=TaskStatus.FAILED)
    assert "Steady name" not in known_names()


def test_a_name_outlives_its_tasks_and_matches_nothing():
    task = TaskInstance.objects.create(name="Short-lived")
    task.delete()
    assert "Short-lived" in known_names()
    assert listed("name=short-lived") == ([], 0)


def test_the_task_start_service_adds_the_definition_name():
    from taskcenter.tasks import verbs

    task = verbs.task_start(definition_name="Back up cluster")
    assert task.name in known_names()
    assert task.pk in listed("name=back up")[0]


# --- The name filter gives exactly what name__icontains gives ------------------------------


@pytest.fixture
def named_tasks():
    cluster = make_cluster("east", 7)
    tasks = []
    for index, name in enumerate(NAMES * 3):
        status = [TaskStatus.FAILED, TaskStatus.SUCCESSFUL, TaskStatus.RUNNING][index % 3]
        tasks.append(
            TaskInstance.objects.create(
                name=name, status=status, cluster=cluster if index % 2 else None
            )
        )
    return tasks


@pytest.mark.parametrize(
    "value",
    [
        "migrate tenant",
        "MIGRATE",
        "tenant",
        "t-42",
        "zone 2",
        "Migrate tenant t-42 to zone 2",
        "grate ten",  # inside words
        "%",
        "_",
        "0%_d",
        "of obs",
        "no such name",
    ],
)
def test_name_filter_matches_like_icontains(named_tasks, value):
    ids, total = listed(QueryDict.fromkeys(["name"], value).urlencode())
    want = expected(name__icontains=value)
    assert ids == want
    assert total == len(want)


def test_name_filter_combines_with_status_and_cluster(named_tasks):
    cluster = Cluster.objects.get(name="east")
    ids, total = listed(f"name=tenant&status=FAILED,RUNNING&clusterId={cluster.pk}")
    want = expected(
        name__icontains="tenant", status__in=["FAILED", "RUNNING"], cluster_id=cluster.pk
    )
    assert want and ids == want and total == len(want)


def test_name_filter_pages_are_exact(named_tasks):
    want = expected(name__icontains="tenant")
    queryset = selectors.task_list(
        visible=TaskInstance.objects.all(), params=QueryDict("name=TENANT")
    )
    seen = []
    for page in range(1, 5):
        rows, total = selectors.task_page(queryset=queryset, page=page, size=4)
        assert total == len(want)
        seen += [row.pk for row in rows]
    assert seen == want


def test_name_filter_sorted_by_name(named_tasks):
    ids, _ = listed("name=tenant&sort=name,asc")
    want = list(
        TaskInstance.objects.filter(name__icontains="tenant")
        .order_by("name", "-id")
        .values_list("pk", flat=True)
    )
    assert ids == want


def test_keyword_still_matches_names_and_other_fields(named_tasks):
    owner = make_user("keyword-owner")
    owned = TaskInstance.objects.create(name="Unrelated", creator=owner)
    for value, extra in [("t-42", None), ("east", None), ("keyword-own", owned.pk)]:
        ids, total = listed(QueryDict.fromkeys(["keyword"], value).urlencode())
        want = set(expected(name__icontains=value)) | set(expected(cluster__name__icontains=value))
        if extra:
            want.add(extra)
        assert set(ids) == want and total == len(want), value
    ids, _ = listed(f"keyword={owned.pk}")
    assert owned.pk in ids
    cluster = Cluster.objects.get(name="east")
    tenant = Tenant.objects.create(cluster=cluster, name="keyword-tenant", ob_tenant_id=77)
    in_tenant = TaskInstance.objects.create(name="Unrelated too", tenant=tenant)
    ids, total = listed("keyword=WORD-TEN")
    assert ids == [in_tenant.pk] and total == 1


def test_name_filter_with_thousands_of_matching_names():
    TaskInstance.objects.bulk_create(
        [TaskInstance(name=f"Custom run {n}") for n in range(3000)], batch_size=500
    )
    TaskInstance.objects.create(name="Other")
    ids, total = listed("name=custom run 1")
    assert ids == expected(name__icontains="custom run 1") and total == 1111
    assert listed("name=CUSTOM RUN")[1] == 3000


def test_name_filter_with_more_names_than_it_lists(named_tasks, monkeypatch):
    from taskcenter.tasks import filters

    monkeypatch.setattr(filters, "NAME_LIST_MAX", 2)  # "tenant" matches more names
    ids, total = listed("name=tenant&status=FAILED")
    want = expected(name__icontains="tenant", status="FAILED")
    assert want and ids == want and total == len(want)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL index")
def test_the_names_a_filter_looks_up_are_found_by_their_trigram_index():
    """The lookup of matching names is the statement the dictionary's trigram index
    serves (its expression is the one icontains compiles to): with the table read out of
    the question, the plan is the index's, not a scan of every name."""
    from django.test.utils import CaptureQueriesContext

    from taskcenter.tasks.filters import name_contains

    # A dictionary of thousands of names, as a production one is.
    TaskName.objects.bulk_create(
        TaskName(name=f"{name} {n}") for name in NAMES for n in range(1000)
    )
    with CaptureQueriesContext(connection) as captured:
        name_contains("tenant t-42")
    (lookup,) = [query["sql"] for query in captured.captured_queries]
    with connection.cursor() as cursor:
        # As autovacuum would: the new names moved from the index's pending list into it.
        cursor.execute("SELECT gin_clean_pending_list('taskname_name_upper_trgm')")
        cursor.execute("ANALYZE tasks_taskname")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "taskname_name_upper_trgm" in plan, plan
