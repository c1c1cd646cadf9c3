"""Account services: users, roles, scopes and keys, each audited; bad input changes nothing."""

from __future__ import annotations

import io
import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from taskcenter.accounts import access, roles, services
from taskcenter.accounts.models import AccessKey, RoleScope
from taskcenter.core.errors import InvalidParameter, NotPermitted
from taskcenter.tasks.models import AuditEntry
from tests.accounts.conftest import PASSWORD, narrow_role
from tests.factories import make_superuser, make_user

User = get_user_model()


def audit_actions() -> list[str]:
    return list(
        AuditEntry.objects.filter(task__isnull=True).order_by("id").values_list("action", flat=True)
    )


def fresh(user):
    return User.objects.get(pk=user.pk)


def test_builtin_roles_hold_one_permission_per_operation(db):
    def names(role):
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role).permissions.select_related("content_type")
        }

    assert set(roles.ROLE_PERMISSIONS[roles.VIEWER]) == names(roles.VIEWER)
    manager = names(roles.MANAGER)
    for perm in (
        "retry_taskinstance",
        "rollback_taskinstance",
        "skip_subtaskinstance",
        "cancel_subtaskinstance",
        "run_taskinstance",
        "manage_schedules",
    ):
        assert f"tasks.{perm}" in manager
    assert "auth.change_user" not in manager
    assert {"auth.change_user", "auth.change_group", "accounts.manage_all_accesskeys"} <= names(
        roles.ADMIN
    )


def test_roles_resync_after_a_permission_is_removed(db):
    from django.contrib.auth.models import Permission as P

    from taskcenter.accounts.roles import sync_builtin_roles

    manager = Group.objects.get(name=roles.MANAGER)
    manager.permissions.remove(P.objects.get(codename="manage_schedules"))
    sync_builtin_roles(Group, P)
    assert manager.permissions.filter(codename="manage_schedules").exists()


def test_user_create_with_scoped_roles_is_audited(clusters, admin):
    a, _ = clusters
    manager = Group.objects.get(name=roles.MANAGER)
    user = services.user_create(
        username="carol", password=PASSWORD, grants={manager.pk: [a.pk]}, actor=admin
    )
    assert user.check_password(PASSWORD) and user.is_active
    assert list(RoleScope.objects.get(user=user).clusters.all()) == [a]
    assert audit_actions() == ["USER_CREATE", "ROLE_GRANT"]
    grant = AuditEntry.objects.get(action="ROLE_GRANT")
    assert grant.actor == admin and grant.actor_name == "admin" and grant.created_at
    assert grant.target == "user carol" and "TASK_MANAGER on alpha" in grant.reason


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("admin", PASSWORD, "username"),  # taken (case-insensitive below too)
        ("ADMIN", PASSWORD, "username"),
        ("bad name!", PASSWORD, "username"),
        ("", PASSWORD, "username"),
        ("dave", "short", "password"),
        ("dave", "12345678901", "password"),
        ("dave", "password123", "password"),
        ("davecooper", "davecooper1", "password"),
    ],
)
def test_user_create_refuses_bad_input_and_changes_nothing(admin, username, password, field):
    before = (User.objects.count(), AuditEntry.objects.count())
    with pytest.raises(InvalidParameter) as refused:
        services.user_create(username=username, password=password, actor=admin)
    assert f"'{field}'" in refused.value.message
    assert (User.objects.count(), AuditEntry.objects.count()) == before


def test_only_admins_manage_users(viewer, operator):
    with pytest.raises(NotPermitted):
        services.user_create(username="eve", password=PASSWORD, actor=operator)
    with pytest.raises(NotPermitted):
        services.user_deactivate(user_id=viewer.pk, actor=operator)
    with pytest.raises(NotPermitted):
        services.user_set_password(user_id=viewer.pk, password="N3w-passw0rd!", actor=operator)
    with pytest.raises(NotPermitted):
        services.role_create(name="x", permissions=[], actor=operator)
    assert fresh(viewer).is_active and not AuditEntry.objects.exists()


def test_an_admin_cannot_take_over_a_superuser(admin):
    boss = make_superuser("boss")
    with pytest.raises(NotPermitted):
        services.user_set_password(user_id=boss.pk, password="Takeover-passw0rd", actor=admin)
    with pytest.raises(NotPermitted):
        services.user_deactivate(user_id=boss.pk, actor=admin)
    assert fresh(boss).check_password(PASSWORD) and fresh(boss).is_active


def test_deactivate_and_activate(admin, viewer):
    services.user_deactivate(user_id=viewer.pk, actor=admin)
    assert not fresh(viewer).is_active
    with pytest.raises(InvalidParameter):
        services.user_deactivate(user_id=admin.pk, actor=admin)  # not yourself
    services.user_activate(user_id=viewer.pk, actor=admin)
    assert fresh(viewer).is_active
    assert audit_actions() == ["USER_DEACTIVATE", "USER_ACTIVATE"]


def test_password_reset_and_own_change(admin, viewer):
    services.user_set_password(user_id=viewer.pk, password="Another-passw0rd", actor=admin)
    assert fresh(viewer).check_password("Another-passw0rd")
    services.user_set_password(user_id=viewer.pk, password="Mine-passw0rd-1", actor=viewer)
    with pytest.raises(InvalidParameter):
        services.user_set_password(user_id=viewer.pk, password="viewer", actor=viewer)
    assert fresh(viewer).check_password("Mine-passw0rd-1")
    assert audit_actions() == ["PASSWORD_RESET", "PASSWORD_CHANGE"]


def test_set_roles_grants_revokes_and_scopes(clusters, admin, viewer):
    a, b = clusters
    viewer_role = Group.objects.get(name=roles.VIEWER)
    manager = Group.objects.get(name=roles.MANAGER)
    services.user_set_roles(
        user_id=viewer.pk, grants={viewer_role.pk: [], manager.pk: [a.pk]}, actor=admin
    )
    user = fresh(viewer)
    assert access.permission_clusters(user, access.PERM_RETRY) == {a.pk}
    services.user_set_roles(
        user_id=viewer.pk, grants={viewer_role.pk: [], manager.pk: [a.pk, b.pk]}, actor=admin
    )
    services.user_set_roles(user_id=viewer.pk, grants={manager.pk: []}, actor=admin)
    user = fresh(viewer)
    assert access.permission_clusters(user, access.PERM_RETRY) is access.ALL_CLUSTERS
    assert not RoleScope.objects.filter(user=user).exists()
    assert audit_actions() == ["ROLE_GRANT", "SCOPE_SET", "ROLE_REVOKE", "SCOPE_SET"]
    with pytest.raises(InvalidParameter):
        services.user_set_roles(user_id=viewer.pk, grants={99999: []}, actor=admin)
    with pytest.raises(InvalidParameter):
        services.user_set_roles(user_id=viewer.pk, grants={manager.pk: [99999]}, actor=admin)
    assert [g.name for g in fresh(viewer).groups.all()] == [roles.MANAGER]


def test_custom_role_create_update_delete(admin):
    role = narrow_role()
    assert {p.codename for p in role.permissions.all()} >= {"retry_taskinstance"}
    services.role_update(
        role_id=role.pk,
        name="Retry only",
        permissions=["tasks.view_taskinstance", "tasks.retry_taskinstance"],
        actor=admin,
    )
    role.refresh_from_db()
    assert role.name == "Retry only" and role.permissions.count() == 2
    holder = make_user("holder")
    holder.groups.add(role)
    services.role_delete(role_id=role.pk, actor=admin)
    assert not Group.objects.filter(pk=role.pk).exists() and not fresh(holder).groups.exists()
    assert audit_actions()[-2:] == ["ROLE_UPDATE", "ROLE_DELETE"]


def test_builtin_roles_cannot_be_changed_renamed_or_deleted(admin):
    manager = Group.objects.get(name=roles.MANAGER)
    count = manager.permissions.count()
    with pytest.raises(InvalidParameter):
        services.role_delete(role_id=manager.pk, actor=admin)
    with pytest.raises(InvalidParameter):
        services.role_update(role_id=manager.pk, name="Ops", permissions=[], actor=admin)
    with pytest.raises(InvalidParameter):
        services.role_create(name="task_viewer", permissions=[], actor=admin)
    manager.refresh_from_db()
    assert manager.name == roles.MANAGER and manager.permissions.count() == count


def test_roles_hold_only_task_center_permissions(admin):
    with pytest.raises(InvalidParameter):
        services.role_create(name="Root", permissions=["auth.delete_user"], actor=admin)
    with pytest.raises(InvalidParameter):
        services.role_create(name="Root", permissions=["sessions.view_session"], actor=admin)
    assert not Group.objects.filter(name="Root").exists()
    assert Permission.objects.filter(codename="manage_schedules").exists()


def test_access_keys_are_audited_and_owners_only(admin, viewer, operator):
    key, secret = services.access_key_create(owner=viewer, actor=viewer)
    with pytest.raises(NotPermitted):
        services.access_key_create(owner=viewer, actor=operator)
    services.access_key_create(owner=viewer, actor=admin)  # admins manage every key
    with pytest.raises(services.AccessKeyNotFound):
        services.access_key_revoke(key_id=key.key_id, actor=operator)
    services.access_key_revoke(key_id=key.key_id, actor=viewer)
    assert AccessKey.objects.get(pk=key.pk).revoked_at is not None
    assert audit_actions() == ["ACCESS_KEY_CREATE", "ACCESS_KEY_CREATE", "ACCESS_KEY_REVOKE"]


# --- Management commands -------------------------------------------------------------------


def test_create_user_command_with_roles_scope_and_generated_password(clusters):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_user", "ops1", "--role", roles.MANAGER, "--scope", "alpha", stdout=out, stderr=err
    )
    username, password = out.getvalue().split()
    user = User.objects.get(username="ops1")
    assert username == "ops1" and user.check_password(password)
    assert access.permission_clusters(user, access.PERM_RETRY) == {clusters[0].pk}
    assert "TASK_MANAGER on alpha" in err.getvalue()


def test_create_user_command_reads_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("NEW_PASSWORD", "From-the-env-1")
    out = io.StringIO()
    call_command(
        "create_user",
        "bot",
        "--role",
        roles.VIEWER,
        "--password-env",
        "NEW_PASSWORD",
        "--staff",
        stdout=out,
        stderr=io.StringIO(),
    )
    user = User.objects.get(username="bot")
    assert user.check_password("From-the-env-1") and user.is_staff and out.getvalue() == ""
    assert os.environ["NEW_PASSWORD"] not in out.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        ["x1", "--role", "NOPE"],
        ["x1", "--role", roles.VIEWER, "--scope", "nowhere"],
        ["x1", "--scope", "alpha"],
        ["x1", "--role", roles.VIEWER, "--password-env", "UNSET_VARIABLE_XYZ"],
        ["admin", "--role", roles.VIEWER],
    ],
)
def test_create_user_command_refuses_bad_input(clusters, admin, args):
    with pytest.raises(CommandError):
        call_command("create_user", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not User.objects.filter(username="x1").exists()


def test_create_access_key_command_prints_id_and_secret(viewer):
    out = io.StringIO()
    call_command("create_access_key", "viewer", stdout=out)
    key_id, secret = out.getvalue().split()
    from taskcenter.accounts.selectors import access_key_for_signature

    key, plain = access_key_for_signature(key_id=key_id)
    assert key.owner == viewer and plain == secret
