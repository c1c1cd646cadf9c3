"""Fixtures of the account tests: two clusters with a failed task each, and
the five personas of the permission matrix."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from taskcenter.accounts import roles
from tests.factories import failed_task_on, grant_scoped, make_user

PASSWORD = "Pa55word!long"
NARROW = "Retry and cancel"


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
                "tasks.view_auditentry",
                "tasks.retry_taskinstance",
                "tasks.cancel_subtaskinstance",
            ],
        )
    return role


def scoped_operator(cluster, username: str = "scoped"):
    user = make_user(username, roles.MANAGER)
    grant_scoped(user, roles.MANAGER, cluster)
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
