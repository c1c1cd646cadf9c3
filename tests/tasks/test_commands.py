"""The management commands: seed_demo (run_task and serve: tests/runtime)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.tasks import selectors
from taskcenter.tasks.models import (
    AuditEntry,
    Cluster,
    Host,
    LogChunk,
    SubtaskStatus,
    TaskInstance,
    TaskType,
    Tenant,
)

ROOT = Path(__file__).resolve().parent.parent.parent


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def printed_password(output: str) -> str | None:
    match = re.search(r"demo users viewer, operator, admin; password: (\S+)", output)
    return match.group(1) if match else None


# --- seed_demo ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_creates_ocp_shaped_topology():
    run("seed_demo", tasks=0)

    clusters = {c.name: c for c in Cluster.objects.all()}
    assert set(clusters) == {"meta", "prod-east", "prod-east-standby"}
    assert (clusters["meta"].ob_cluster_id, clusters["meta"].type) == (1, "PRIMARY")
    assert clusters["prod-east"].type == "PRIMARY"
    assert clusters["prod-east-standby"].type == "STANDBY"
    for cluster in clusters.values():
        assert cluster.tenants.filter(name="sys").exists()
    assert set(Tenant.objects.values_list("mode", flat=True)) == {"ORACLE", "MYSQL"}
    hosts = list(Host.objects.all())
    assert len(hosts) >= 8
    assert all(h.address.startswith("10.") and h.cluster_id for h in hosts)


@pytest.mark.django_db
def test_seed_demo_creates_demo_users_in_their_roles_and_prints_the_password():
    out, _ = run("seed_demo", tasks=0)

    password = printed_password(out)
    assert password
    expected = {"viewer": roles.VIEWER, "operator": roles.MANAGER, "admin": roles.ADMIN}
    for username, role in expected.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.check_password(password)
    assert User.objects.get(username="admin").is_staff
    assert not User.objects.get(username="viewer").is_staff


@pytest.mark.django_db
def test_seed_demo_uses_the_configured_password_without_printing_it(settings):
    settings.TASKCENTER_DEMO_PASSWORD = "configured-Secret-42"
    out, _ = run("seed_demo", tasks=0)

    assert "configured-Secret-42" not in out
    assert "from TASKCENTER_DEMO_PASSWORD" in out
    assert User.objects.get(username="operator").check_password("configured-Secret-42")


@pytest.mark.django_db
def test_seed_demo_twice_duplicates_nothing_and_keeps_passwords():
    first, _ = run("seed_demo", tasks=30, seed=1)
    password = printed_password(first)
    counts = [
        model.objects.count() for model in (Cluster, Tenant, Host, User, TaskInstance, AuditEntry)
    ]

    second, _ = run("seed_demo", tasks=30, seed=2)

    assert printed_password(second) is None
    assert "password" not in second.replace("passwords are unchanged", "")
    assert "already exist" in second
    assert counts == [
        model.objects.count() for model in (Cluster, Tenant, Host, User, TaskInstance, AuditEntry)
    ]
    assert User.objects.get(username="admin").check_password(password)


@pytest.mark.django_db
def test_seed_demo_history_has_every_status_type_and_creator():
    run("seed_demo", tasks=60, seed=7)

    tasks = list(TaskInstance.objects.all())
    assert len(tasks) == 60
    kinds = Counter(
        "rolled back" if t.is_rolled_back else f"{t.status}/{t.operation}" for t in tasks
    )
    assert set(kinds) == {"SUCCESSFUL/EXECUTE", "SUCCESSFUL/RETRY", "FAILED/EXECUTE", "rolled back"}
    assert {t.type for t in tasks} == set(TaskType.values)
    assert {t.creator.username for t in tasks if t.creator} == {"operator", "admin"}
    assert all(t.creator is None for t in tasks if t.type.startswith("SYS_"))
    assert len({t.cluster_id for t in tasks if t.cluster_id}) == 3
    assert any(t.tenant_id for t in tasks) and any(t.hosts.exists() for t in tasks)
    names = {t.name for t in tasks}
    assert not any(name.startswith("Benchmark") for name in names)
    assert {"Migrate tenant", "Reinstall OCP agent"} <= names

    now = timezone.now()
    for task in tasks:
        assert now - timedelta(days=31) < task.create_time <= task.start_time
        assert task.start_time < task.finish_time < now


def assert_consistent(task: TaskInstance) -> None:
    subs = selectors.task_subtasks(task=task)
    by_id = {s.pk: s for s in subs}
    assert task.subtask_total == len(subs)
    for sub in subs:
        for up in sub.upstream_ids:
            assert sub.pk in by_id[up].downstream_ids
        for down in sub.downstream_ids:
            assert sub.pk in by_id[down].upstream_ids
        if sub.attempt:
            assert task.start_time <= sub.start_time <= sub.finish_time <= task.finish_time
            assert sub.executor
        else:
            assert (sub.start_time, sub.finish_time, sub.log_size) == (None, None, 0)
        chunks = list(LogChunk.objects.filter(subtask=sub).order_by("offset"))
        offset = 0
        for chunk in chunks:
            assert (chunk.offset, chunk.length) == (offset, len(bytes(chunk.data)))
            offset += chunk.length
        assert offset == sub.log_size
        assert len({c.attempt for c in chunks}) == sub.attempt

    statuses = Counter(s.status for s in subs)
    if task.is_rolled_back:
        assert statuses == {SubtaskStatus.PENDING: len(subs)}
        undone = [s for s in subs if s.operation == "ROLLBACK"]
        assert undone and all((s.run_time, s.attempt) == (1, 2) for s in undone)
        assert all("start rollback of" in selectors.log_tail(subtask=s).text for s in undone)
    elif task.status == "SUCCESSFUL":
        assert statuses == {SubtaskStatus.SUCCESSFUL: len(subs)}
        retried = [s for s in subs if s.operation == "RETRY"]
        if task.operation == "RETRY":
            assert len(retried) == 1 and (retried[0].run_time, retried[0].attempt) == (2, 2)
        else:
            assert not retried and all(s.run_time == 1 for s in subs)
    else:
        (failed,) = [s for s in subs if s.status == SubtaskStatus.FAILED]
        assert all(by_id[u].status == SubtaskStatus.SUCCESSFUL for u in failed.upstream_ids)
        assert all(by_id[d].status == SubtaskStatus.PENDING for d in failed.downstream_ids)
        assert statuses[SubtaskStatus.SUCCESSFUL] + statuses[SubtaskStatus.PENDING] == len(subs) - 1
        assert "failed" in selectors.log_tail(subtask=failed).text

    audit = list(task.audit_entries.order_by("created_at", "pk"))
    assert audit[0].action == "START" and audit[0].actor == task.creator
    ended = "ROLLED_BACK" if task.is_rolled_back else task.status  # as the pages word it
    assert audit[-1].action == "FINISH" and audit[-1].to_status == ended
    assert all(task.start_time <= op.created_at <= task.finish_time for op in audit)


@pytest.mark.django_db
def test_seed_demo_history_subtasks_logs_and_audit_are_consistent():
    run("seed_demo", tasks=60, seed=11)

    tasks = list(TaskInstance.objects.all())
    assert not TaskInstance.objects.filter(status="RUNNING").exists()
    for task in tasks:
        assert_consistent(task)
    migrations = [t for t in tasks if t.name == "Migrate tenant" and t.status == "FAILED"]
    for task in migrations:  # the failed step is the one the parameters name
        failed = task.subtasks.get(status="FAILED")
        assert failed.action["kwargs"]["step"] == task.parameters["fail_step"]


@pytest.mark.django_db
def test_seed_demo_live_starts_three_demo_tasks_once():
    out, _ = run("seed_demo", tasks=0, live=True)
    live = TaskInstance.objects.filter(status="RUNNING")
    assert sorted(live.values_list("name", flat=True)) == [
        "Back up cluster",
        "Migrate tenant",
        "Scale out tenant units",
    ]
    assert all(t.creator.username == "operator" and t.cluster_id for t in live)
    assert out.count("live: started task") == 3

    out, _ = run("seed_demo", tasks=0, live=True)
    assert TaskInstance.objects.count() == 3
    assert "live: started task" not in out
