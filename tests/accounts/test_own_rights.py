"""No path past one's own rights: nobody makes a key for, changes, or gives roles to a user
holding rights they do not hold; an action made with a key names its owner and the key, and
a key made for someone else names who made it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from taskcenter.accounts import roles
from taskcenter.accounts import services as account_services
from taskcenter.accounts.models import AccessKey
from taskcenter.core.errors import NotPermitted
from taskcenter.tasks.models import AuditEntry
from tests.api.conftest import check_envelope
from tests.api.test_signature import signed_request
from tests.conftest import client_for
from tests.factories import failed_task, grant_scoped, make_role, make_superuser, make_user


@pytest.fixture
def root(db):
    return make_superuser("root")


def test_an_admin_cannot_make_a_key_for_the_superuser_on_the_keys_page(admin, root):
    response = client_for(admin).post("/manage/keys/", {"owner": root.pk, "description": "x"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "only they may make their own keys" in page
    assert not AccessKey.objects.filter(owner=root).exists()


def test_only_the_superuser_makes_or_revokes_their_own_keys(admin, root):
    other_root = make_superuser("root2")
    with pytest.raises(NotPermitted):
        account_services.access_key_create(owner=root, actor=other_root)
    key, _ = account_services.access_key_create(owner=root, actor=root)
    assert key.created_by == root
    with pytest.raises(account_services.AccessKeyNotFound):
        account_services.access_key_revoke(key_id=key.key_id, actor=admin)


def test_a_key_admin_makes_keys_only_for_users_within_their_own_rights(clusters):
    alpha = clusters[0]
    scoped_admin = make_user("scoped-admin", roles.ADMIN)
    grant_scoped(scoped_admin, roles.ADMIN, alpha)
    everywhere = make_user("everywhere", roles.MANAGER)  # unscoped: more than the admin holds
    within = make_user("within", roles.VIEWER)
    grant_scoped(within, roles.VIEWER, alpha)
    with pytest.raises(NotPermitted, match="holds rights you do not hold"):
        account_services.access_key_create(owner=everywhere, actor=scoped_admin)
    key, _ = account_services.access_key_create(owner=within, actor=scoped_admin)
    assert key.created_by == scoped_admin
    row = AuditEntry.objects.get(action="ACCESS_KEY_CREATE")
    assert row.actor == scoped_admin and key.key_id in row.target and "within" in row.target


def test_an_admin_cannot_reset_or_regrant_a_user_with_more_rights(db):
    narrow_admin_role = make_role(
        "USER-ADMIN", "view_user", "add_user", "change_user", "view_group", "change_group"
    )
    user_admin = make_user("user-admin", "USER-ADMIN")
    manager = make_user("manager", roles.MANAGER)
    with pytest.raises(NotPermitted):
        account_services.user_set_password(
            user_id=manager.pk, password="An0ther-passw0rd!", actor=user_admin
        )
    nobody = make_user("nobody")
    with pytest.raises(NotPermitted, match="rights you do not hold"):
        account_services.user_set_roles(
            user_id=nobody.pk,
            grants={Group.objects.get(name=roles.MANAGER).pk: []},
            actor=user_admin,
        )
    # Nor can they give themselves more through a role they may edit.
    with pytest.raises(NotPermitted):
        account_services.role_update(
            role_id=narrow_admin_role.pk,
            permissions=["auth.change_user", "tasks.retry_taskinstance"],
            actor=user_admin,
        )


def test_an_admin_still_manages_users_within_their_rights(admin):
    viewer = make_user("plain-viewer", roles.VIEWER)
    account_services.user_set_password(user_id=viewer.pk, password="An0ther-passw0rd!", actor=admin)
    key, _ = account_services.access_key_create(owner=viewer, actor=admin)
    assert key.created_by == admin


def test_an_action_made_with_a_key_names_its_owner_and_the_key(operator):
    key, secret = account_services.access_key_create(owner=operator, actor=operator)
    task = failed_task()
    from django.test import Client

    response = signed_request(
        Client(), (key.key_id, secret), "POST", f"/api/v2/tasks/instances/{task.pk}/retry"
    )
    check_envelope(response)
    row = task.audit_entries.get(action="RETRY")
    assert row.actor == operator and row.access_key_id == key.key_id
    # A session's action names no key.
    other = failed_task()
    client_for(operator).post(f"/tasks/{other.pk}/retry/", {"reason": "again"})
    assert other.audit_entries.get(action="RETRY").access_key_id == ""
