"""The account pages for every persona, their forms, and what bad input does (nothing)."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from taskcenter.accounts import roles, services
from taskcenter.accounts.models import AccessKey
from taskcenter.tasks.models import AuditEntry
from tests.accounts.conftest import PASSWORD, narrow_role
from tests.api.test_signature import signed_request
from tests.conftest import client_for
from tests.factories import make_user

User = get_user_model()

ADMIN_PAGES = [
    "/manage/users/",
    "/manage/users/new/",
    "/manage/users/{user}/",
    "/manage/roles/",
    "/manage/roles/{role}/",
    "/manage/keys/",
    "/manage/audit/",
    "/manage/retention/",
]
OWN_PAGES = ["/account/"]


@pytest.fixture
def people(db):
    return {
        "viewer": make_user("viewer", roles.VIEWER),
        "operator": make_user("operator", roles.MANAGER),
        "nobody": make_user("nobody"),
        "admin": make_user("admin", roles.ADMIN),
    }


def fill(url: str, people) -> str:
    return url.format(user=people["viewer"].pk, role=Group.objects.get(name=roles.MANAGER).pk)


def state() -> tuple:
    """Everything the account pages can change."""
    return (
        list(User.objects.order_by("pk").values_list("username", "is_active", "password")),
        list(Group.objects.order_by("pk").values_list("name")),
        list(AccessKey.objects.order_by("pk").values_list("key_id", "revoked_at")),
        AuditEntry.objects.count(),
    )


@pytest.mark.parametrize("url", ADMIN_PAGES + OWN_PAGES)
def test_anonymous_is_sent_to_sign_in(people, url):
    response = Client().get(fill(url, people))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("persona", ["viewer", "operator", "nobody"])
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_non_admins_get_a_403_page(people, persona, url):
    response = client_for(people[persona]).get(fill(url, people))
    assert response.status_code == 403
    assert b"You do not have permission" in response.content
    assert b'class="topbar"' in response.content  # the product's page, not a bare error


@pytest.mark.parametrize("persona", ["viewer", "operator", "nobody"])
@pytest.mark.parametrize(
    "url",
    [
        "/manage/users/new/",
        "/manage/users/{user}/roles/",
        "/manage/users/{user}/password/",
        "/manage/users/{user}/deactivate/",
        "/manage/roles/",
        "/manage/roles/{role}/delete/",
        "/manage/keys/",
    ],
)
def test_non_admins_cannot_post_admin_forms(people, persona, url):
    before = state()
    data = {
        "username": "x9",
        "password1": "Xx-passw0rd-9",
        "password2": "Xx-passw0rd-9",
        "name": "x9",
        "role_1": "on",
        "owner": people[persona].pk,
    }
    response = client_for(people[persona]).post(fill(url, people), data)
    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize("url", ADMIN_PAGES + OWN_PAGES)
def test_admin_opens_every_page(people, url):
    response = client_for(people["admin"]).get(fill(url, people))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/manage/"' in html and ">Admin</a>" in html  # the top bar links here
    assert 'class="user-name" href="/account/"' in html


@pytest.mark.parametrize("persona", ["viewer", "operator", "nobody"])
def test_everyone_has_their_own_account_page(people, persona):
    response = client_for(people[persona]).get("/account/")
    assert response.status_code == 200
    assert b"Change password" in response.content and b"Your access keys" in response.content
    assert b'href="/manage/"' not in response.content


def test_the_task_list_links_admins_to_the_admin_pages(people):
    assert b'href="/manage/"' in client_for(people["admin"]).get("/tasks/").content
    assert b'href="/manage/"' not in client_for(people["operator"]).get("/tasks/").content


@pytest.mark.parametrize(
    "url", ["/manage/users/99999/", "/manage/roles/99999/", "/manage/users/99999/deactivate/"]
)
def test_unknown_ids_are_a_404_page(people, url):
    before = state()
    client = client_for(people["admin"])
    response = client.post(url) if url.endswith("deactivate/") else client.get(url)
    assert response.status_code == 404 and b"does not exist" in response.content
    assert state() == before


def test_revoking_an_unknown_key_is_a_404(people):
    before = state()
    assert client_for(people["admin"]).post("/manage/keys/AKNOPE/revoke/").status_code == 404
    assert client_for(people["viewer"]).post("/account/keys/AKNOPE/revoke/").status_code == 404
    assert state() == before


# --- Users -------------------------------------------------------------------------------------


def test_admin_creates_a_user_with_a_narrow_role(people):
    role = narrow_role()
    client = client_for(people["admin"])
    response = client.post(
        "/manage/users/new/",
        {
            "username": "dana",
            "email": "dana@example.com",
            "password1": "Dana-passw0rd",
            "password2": "Dana-passw0rd",
            "roles": [role.pk],
        },
    )
    dana = User.objects.get(username="dana")
    assert response.status_code == 302 and response["Location"] == f"/manage/users/{dana.pk}/"
    assert [g.name for g in dana.groups.all()] == [role.name] and dana.check_password(
        "Dana-passw0rd"
    )
    page = client.get(response["Location"]).content.decode()
    assert "User dana was created." in page and "ROLE_GRANT" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "viewer"}, "is already taken"),
        ({"username": "Viewer"}, "is already taken"),
        ({"password1": "abc", "password2": "abc"}, "too short"),
        ({"password1": "password", "password2": "password"}, "too common"),
        ({"password1": "83920174651", "password2": "83920174651"}, "entirely numeric"),
        ({"password2": "Something-else-1"}, "The two passwords differ"),
        ({"username": ""}, "This field is required"),
        ({"email": "not-an-email"}, "valid email"),
    ],
)
def test_bad_new_users_are_refused_and_change_nothing(people, data, message):
    before = state()
    form = {"username": "erin", "password1": "Erin-passw0rd", "password2": "Erin-passw0rd", **data}
    response = client_for(people["admin"]).post("/manage/users/new/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert state() == before


def test_admin_sets_roles_and_scopes(people, clusters):
    a, _ = clusters
    viewer = people["viewer"]
    manager = Group.objects.get(name=roles.MANAGER)
    response = client_for(people["admin"]).post(
        f"/manage/users/{viewer.pk}/roles/",
        {f"role_{manager.pk}": "on", f"clusters_{manager.pk}": [str(a.pk)]},
    )
    assert response.status_code == 302
    assert [g.name for g in User.objects.get(pk=viewer.pk).groups.all()] == [roles.MANAGER]
    page = client_for(people["admin"]).get("/manage/users/").content.decode()
    assert "TASK_MANAGER · scoped" in page
    actions = list(AuditEntry.objects.values_list("action", flat=True).order_by("id"))
    assert actions == ["ROLE_REVOKE", "ROLE_GRANT"]


def test_admin_resets_a_password_and_the_old_session_ends(people):
    viewer = people["viewer"]
    session = client_for(viewer)
    assert session.get("/account/").status_code == 200
    response = client_for(people["admin"]).post(
        f"/manage/users/{viewer.pk}/password/",
        {"password1": "Fresh-passw0rd", "password2": "Fresh-passw0rd"},
    )
    assert response.status_code == 302
    assert User.objects.get(pk=viewer.pk).check_password("Fresh-passw0rd")
    assert session.get("/account/").status_code == 302  # signed out
    bad = client_for(people["admin"]).post(
        f"/manage/users/{viewer.pk}/password/", {"password1": "viewer12", "password2": "viewer12"}
    )
    assert bad.status_code == 400 and User.objects.get(pk=viewer.pk).check_password(
        "Fresh-passw0rd"
    )


def test_own_password_change_keeps_the_session(people):
    client = client_for(people["operator"])
    wrong = client.post(
        "/account/password/",
        {"current": "nope", "password1": "New-passw0rd-7", "password2": "New-passw0rd-7"},
    )
    assert wrong.status_code == 400 and b"current password is not right" in wrong.content
    response = client.post(
        "/account/password/",
        {"current": PASSWORD, "password1": "New-passw0rd-7", "password2": "New-passw0rd-7"},
    )
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
    assert User.objects.get(username="operator").check_password("New-passw0rd-7")
    assert AuditEntry.objects.get().action == "PASSWORD_CHANGE"


def basic(username: str, password: str = PASSWORD) -> Client:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {token}")


def test_deactivated_users_are_refused_at_once_everywhere(people):
    viewer = people["viewer"]
    key, secret = services.access_key_create(owner=viewer, actor=viewer)
    session = client_for(viewer)
    assert session.get("/tasks/").status_code == 200
    assert basic("viewer").get("/api/v2/tasks/instances").status_code == 200
    assert (
        signed_request(Client(), (key.key_id, secret), "GET", "/api/v2/tasks/instances").status_code
        == 200
    )

    admin = client_for(people["admin"])
    dialog = admin.get(f"/manage/users/{viewer.pk}/").content.decode()
    assert '<dialog id="deactivate-dialog"' in dialog  # confirmed before it happens
    assert admin.post(f"/manage/users/{viewer.pk}/deactivate/").status_code == 302

    assert session.get("/tasks/").status_code == 302  # the next request is signed out
    assert basic("viewer").get("/api/v2/tasks/instances").status_code == 401
    refused = signed_request(Client(), (key.key_id, secret), "GET", "/api/v2/tasks/instances")
    assert refused.status_code == 401
    signin = Client().post("/login/", {"username": "viewer", "password": PASSWORD})
    assert signin.status_code == 200 and "_auth_user_id" not in signin.client.session
    assert AuditEntry.objects.filter(action="USER_DEACTIVATE", actor=people["admin"]).exists()


def test_admins_cannot_deactivate_themselves(people):
    admin = people["admin"]
    response = client_for(admin).post(f"/manage/users/{admin.pk}/deactivate/", follow=True)
    assert b"cannot deactivate your own account" in response.content
    assert User.objects.get(pk=admin.pk).is_active


# --- Roles -------------------------------------------------------------------------------------


def test_admin_creates_and_edits_a_custom_role(people):
    client = client_for(people["admin"])
    response = client.post(
        "/manage/roles/",
        {
            "name": "Retriers",
            "permissions": ["tasks.view_taskinstance", "tasks.retry_taskinstance"],
        },
    )
    role = Group.objects.get(name="Retriers")
    assert response.status_code == 302 and response["Location"] == f"/manage/roles/{role.pk}/"
    page = client.get(f"/manage/roles/{role.pk}/").content.decode()
    assert 'value="tasks.retry_taskinstance" checked' in page
    assert 'value="tasks.rollback_taskinstance">' in page
    client.post(
        f"/manage/roles/{role.pk}/",
        {
            "name": "Retriers",
            "permissions": ["tasks.view_taskinstance", "tasks.cancel_subtaskinstance"],
        },
    )
    assert set(role.permissions.values_list("codename", flat=True)) == {
        "view_taskinstance",
        "cancel_subtaskinstance",
    }
    assert '<dialog id="role-delete"' in client.get(f"/manage/roles/{role.pk}/").content.decode()
    assert client.post(f"/manage/roles/{role.pk}/delete/").status_code == 302
    assert not Group.objects.filter(pk=role.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "TASK_VIEWER"}, "is a built-in role"),
        ({"name": ""}, "This field is required"),
        (
            {"name": "Ok", "permissions": ["auth.delete_user"]},
            "is not one of the available choices",
        ),
    ],
)
def test_bad_roles_are_refused_and_change_nothing(people, data, message):
    before = state()
    response = client_for(people["admin"]).post("/manage/roles/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert state() == before


def test_builtin_roles_are_read_only_on_their_page(people):
    manager = Group.objects.get(name=roles.MANAGER)
    client = client_for(people["admin"])
    page = client.get(f"/manage/roles/{manager.pk}/").content.decode()
    assert "cannot be renamed, changed or deleted" in page and "Delete role" not in page
    before = state()
    assert (
        client.post(f"/manage/roles/{manager.pk}/", {"name": "X", "permissions": []}).status_code
        == 400
    )
    assert client.post(f"/manage/roles/{manager.pk}/delete/").status_code == 302
    assert state() == before
    assert manager.permissions.count() > 0


# --- Access keys -------------------------------------------------------------------------------


def test_own_key_secret_is_shown_once(people):
    client = client_for(people["viewer"])
    response = client.post("/account/keys/", {"description": "CI pipeline"})
    key = AccessKey.objects.get(owner=people["viewer"])
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-key-secret" class="secret">([^<]+)<', html).group(1)
    assert "shown only this once" in html and 'data-copy="new-key-secret"' in html
    from taskcenter.accounts.selectors import access_key_for_signature

    assert access_key_for_signature(key_id=key.key_id)[1] == secret
    again = client.get("/account/").content.decode()
    assert key.key_id in again and secret not in again
    assert client.post(f"/account/keys/{key.key_id}/revoke/").status_code == 302
    assert AccessKey.objects.get(pk=key.pk).revoked_at is not None


def test_users_cannot_revoke_someone_elses_key_from_their_page(people):
    key, _ = services.access_key_create(owner=people["operator"])
    before = state()
    assert (
        client_for(people["viewer"]).post(f"/account/keys/{key.key_id}/revoke/").status_code == 404
    )
    assert state() == before


def test_admin_lists_creates_and_revokes_keys(people):
    client = client_for(people["admin"])
    response = client.post(
        "/manage/keys/", {"owner": people["operator"].pk, "description": "deploy"}
    )
    key = AccessKey.objects.get(owner=people["operator"])
    assert response.status_code == 200 and "shown only this once" in response.content.decode()
    listing = client.get("/manage/keys/").content.decode()
    assert key.key_id in listing and "never" in listing and "operator" in listing
    secret = services.crypto.decrypt(key.secret_encrypted)
    assert (
        signed_request(Client(), (key.key_id, secret), "GET", "/api/v2/tasks/instances").status_code
        == 200
    )
    assert client.post(f"/manage/keys/{key.key_id}/revoke/").status_code == 302
    refused = signed_request(Client(), (key.key_id, secret), "GET", "/api/v2/tasks/instances")
    assert refused.status_code == 401  # at once
    assert "Revoked" in client.get("/manage/keys/?state=revoked").content.decode()
    assert client.post("/manage/keys/", {"owner": 99999}).status_code == 400


def test_key_last_used_is_shown(people):
    key, secret = services.access_key_create(owner=people["operator"])
    signed_request(Client(), (key.key_id, secret), "GET", "/api/v2/tasks/instances")
    key.refresh_from_db()
    listing = client_for(people["admin"]).get("/manage/keys/").content.decode()
    assert key.last_used_at is not None and key.last_used_at.strftime("%Y-%m-%d %H:%M") in listing


# --- Audit -------------------------------------------------------------------------------------


def test_account_changes_appear_in_the_account_audit_with_who_and_when(people, clusters):
    admin = people["admin"]
    client = client_for(admin)
    client.post(
        "/manage/users/new/",
        {"username": "finn", "password1": "Finn-passw0rd", "password2": "Finn-passw0rd"},
    )
    finn = User.objects.get(username="finn")
    manager = Group.objects.get(name=roles.MANAGER)
    client.post(
        f"/manage/users/{finn.pk}/roles/",
        {f"role_{manager.pk}": "on", f"clusters_{manager.pk}": [str(clusters[0].pk)]},
    )
    client.post(
        f"/manage/users/{finn.pk}/password/",
        {"password1": "Finn-passw0rd-2", "password2": "Finn-passw0rd-2"},
    )
    client.post("/manage/keys/", {"owner": finn.pk})
    client.post("/manage/roles/", {"name": "Readers", "permissions": ["tasks.view_taskinstance"]})
    client.post(f"/manage/users/{finn.pk}/deactivate/")
    html = client.get("/manage/audit/").content.decode()
    for action in (
        "USER_CREATE",
        "ROLE_GRANT",
        "PASSWORD_RESET",
        "ACCESS_KEY_CREATE",
        "ROLE_CREATE",
        "USER_DEACTIVATE",
    ):
        assert action in html
    assert "<b>admin</b>" in html and "TASK_MANAGER on alpha" in html
    filtered = client.get("/manage/audit/", {"action": "ROLE_CREATE"}).content.decode()
    assert "Readers" in filtered and "USER_CREATE</span>" not in filtered
    assert client_for(people["viewer"]).get("/manage/audit/").status_code == 403


def test_account_changes_also_appear_in_the_main_audit_page_for_admins_only(people):
    admin = people["admin"]
    client_for(admin).post(
        "/manage/users/new/",
        {"username": "gwen", "password1": "Gwen-passw0rd", "password2": "Gwen-passw0rd"},
    )
    audit = client_for(admin).get("/audit/", {"action": "USER_CREATE"})
    assert audit.status_code == 200 and "USER_CREATE" in audit.content.decode()
    assert "gwen" in audit.content.decode()
    viewer_page = client_for(people["viewer"]).get("/audit/").content.decode()
    assert "gwen" not in viewer_page
