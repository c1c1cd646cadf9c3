"""Fixtures of the account tests: fast hashing, two clusters with a failed task each, and
the five personas of the permission matrix."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from taskcenter.accounts import roles
from taskcenter.accounts.models import RoleScope
from taskcenter.tasks.models import Cluster, SubtaskInstance, TaskInstance, Tenant
from tests.conftest import make_user

PASSWORD = "Pa55word!long"
NARROW = "Retry and cancel"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clusters(db):
    a = Cluster.objects.create(name="alpha", ob_cluster_id=1)
    b = Cluster.objects.create(name="bravo", ob_cluster_id=2)
    return a, b


def failed_task_on(cluster, name: str) -> TaskInstance:
    """A failed task on `cluster`: a successful step, a failed one, a pending one."""
    from django.utils import timezone

    tenant, _ = Tenant.objects.get_or_create(
        cluster=cluster, name=f"{cluster.name}-t1", defaults={"ob_tenant_id": cluster.pk}
    )
    owner, _ = get_user_model().objects.get_or_create(username=f"owner-{cluster.name}")
    now = timezone.now()
    task = TaskInstance.objects.create(
        name=name,
        cluster=cluster,
        tenant=tenant,
        creator=owner,
        status="FAILED",
        start_time=now,
        finish_time=now,
        subtask_total=3,
    )
    rows = []
    for index, status in enumerate(["SUCCESSFUL", "FAILED", "PENDING"]):
        started = status != "PENDING"
        rows.append(
            SubtaskInstance.objects.create(
                task=task,
                name=f"{name} step {index}",
                series_id=index,
                status=status,
                node_type="PYTHON_TASK",
                run_time=1 if started else 0,
                attempt=1 if started else 0,
                start_time=now if started else None,
                finish_time=now if started else None,
                action={"callable": "demo.noop", "kwargs": {}},
            )
        )
    for before, after in zip(rows, rows[1:], strict=False):
        before.downstream_ids = [after.pk]
        after.upstream_ids = [before.pk]
    SubtaskInstance.objects.bulk_update(rows, ["upstream_ids", "downstream_ids"])
    return task


@pytest.fixture
def tasks(clusters):
    a, b = clusters
    return failed_task_on(a, "Alpha resize"), failed_task_on(b, "Bravo migrate")


def narrow_role() -> Group:
    from taskcenter.accounts import services

    role = Group.objects.filter(name=NARROW).first()
    if role is None:
        role = services.role_create(
            name=NARROW,
            permissions=[
                "tasks.view_taskinstance",
                "tasks.view_subtaskinstance",
                "tasks.view_operation",
                "tasks.retry_taskinstance",
                "tasks.cancel_subtaskinstance",
            ],
        )
    return role


def scoped_operator(cluster, username: str = "scoped"):
    user = make_user(username, roles.MANAGER)
    scope = RoleScope.objects.create(user=user, group=Group.objects.get(name=roles.MANAGER))
    scope.clusters.set([cluster])
    return user


def make_persona(name: str, clusters=None):
    """viewer, manager, narrow, scoped (TASK_MANAGER on the first cluster) or admin."""
    if name == "viewer":
        return make_user("viewer", roles.VIEWER)
    if name == "manager":
        return make_user("manager", roles.MANAGER)
    if name == "narrow":
        user = make_user("narrow")
        user.groups.add(narrow_role())
        return user
    if name == "scoped":
        return scoped_operator(clusters[0])
    if name == "admin":
        return make_user("admin", roles.ADMIN)
    raise ValueError(name)


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
