"""Access hardened: Django's admin for superusers only (and audited), no staff rights from
the ADMIN role, and sessions that end for good on deactivation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from taskcenter.accounts import roles, services
from taskcenter.core.errors import NotPermitted
from taskcenter.tasks.models import AuditEntry
from tests.accounts.conftest import PASSWORD
from tests.conftest import client_for
from tests.factories import make_superuser, make_user

User = get_user_model()


@pytest.fixture
def staff_admin(db):
    """The ADMIN role with the staff flag: what once opened Django's admin."""
    user = make_user("boss", roles.ADMIN)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def superuser(db):
    return make_superuser("root")


def test_staff_admins_cannot_use_djangos_admin(staff_admin, superuser):
    client = client_for(staff_admin)
    for url in ["/admin/", "/admin/auth/user/", f"/admin/auth/user/{superuser.pk}/change/"]:
        assert client.get(url).status_code == 302, url
    # Neither the superuser's password nor its own is_superuser flag can be set.
    client.post(
        f"/admin/auth/user/{superuser.pk}/password/",
        {"password1": "Taken-over-1", "password2": "Taken-over-1"},
    )
    client.post(
        f"/admin/auth/user/{staff_admin.pk}/change/",
        {"username": "boss", "is_superuser": "on", "is_staff": "on", "is_active": "on"},
    )
    superuser.refresh_from_db()
    staff_admin.refresh_from_db()
    assert superuser.check_password(PASSWORD) and not staff_admin.is_superuser


def test_staff_admins_cannot_sign_in_to_djangos_admin(staff_admin):
    client = Client()
    response = client.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_superusers_use_djangos_admin_and_their_changes_are_audited(superuser):
    client = client_for(superuser)
    assert client.get("/admin/").status_code == 200
    response = client.post("/admin/auth/group/add/", {"name": "Night shift"})
    assert response.status_code == 302
    row = AuditEntry.objects.get(action="ADMIN_SITE_ADD")
    assert row.actor_name == "root" and "Night shift" in row.target


def test_the_admin_role_cannot_give_staff_rights(staff_admin):
    with pytest.raises(NotPermitted):
        services.user_create(
            username="helper", password="Helper-passw0rd", is_staff=True, actor=staff_admin
        )
    client_for(staff_admin).post(
        "/manage/users/new/",
        {
            "username": "helper",
            "password1": "Helper-passw0rd",
            "password2": "Helper-passw0rd",
            "is_staff": "on",
        },
    )
    assert not User.objects.filter(username="helper", is_staff=True).exists()


def test_only_superusers_see_the_link_to_djangos_admin(staff_admin, superuser):
    assert b'href="/admin/"' not in client_for(staff_admin).get("/tasks/").content
    assert b'href="/admin/"' in client_for(superuser).get("/tasks/").content


def test_the_admin_role_cannot_change_a_superuser(staff_admin, superuser):
    with pytest.raises(NotPermitted):
        services.user_set_password(user_id=superuser.pk, password="Taken-over-1", actor=staff_admin)
    with pytest.raises(NotPermitted):
        services.user_deactivate(user_id=superuser.pk, actor=staff_admin)


# --- Sessions end for good ---------------------------------------------------------------


def test_a_reactivated_users_old_session_stays_ended(db):
    viewer = make_user("viewer", roles.VIEWER)
    session = Client()
    session.post("/login/", {"username": "viewer", "password": PASSWORD})
    forced = client_for(viewer)
    assert session.get("/tasks/").status_code == 200 and forced.get("/tasks/").status_code == 200
    services.user_deactivate(user_id=viewer.pk)
    services.user_activate(user_id=viewer.pk)
    assert session.get("/tasks/").status_code == 302
    assert forced.get("/tasks/").status_code == 302
    fresh = Client()
    fresh.post("/login/", {"username": "viewer", "password": PASSWORD})
    assert fresh.get("/tasks/").status_code == 200  # signing in again works


def test_own_password_change_after_a_reactivation_keeps_the_session(db):
    operator = make_user("operator", roles.MANAGER)
    services.user_deactivate(user_id=operator.pk)
    services.user_activate(user_id=operator.pk)
    client = Client()
    client.post("/login/", {"username": "operator", "password": PASSWORD})
    response = client.post(
        "/account/password/",
        {"current": PASSWORD, "password1": "New-passw0rd-7", "password2": "New-passw0rd-7"},
    )
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
