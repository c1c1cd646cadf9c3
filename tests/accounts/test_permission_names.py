"""The backend's permissions (ThrottledModelBackend.get_all_permissions, which every page's
top bar asks for its links): Django's ModelBackend's answer for every kind of user, read
in one statement."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter.accounts import roles
from taskcenter.accounts.throttle import ThrottledModelBackend
from tests.factories import make_role, make_superuser, make_user

pytestmark = pytest.mark.django_db


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)  # nothing cached on it


def _users() -> list:
    both = make_user("both", roles.VIEWER)
    both.user_permissions.add(Permission.objects.get(codename="change_user"))
    custom = make_user("custom")
    custom.groups.add(make_role("AUDITOR", "view_taskinstance", "view_auditentry"))
    inactive = make_user("inactive", roles.MANAGER)
    inactive.is_active = False
    inactive.save()
    return [
        make_user("nobody"),
        make_user("viewer-1", roles.VIEWER),
        make_user("manager-1", roles.MANAGER),
        make_user("admin-1", roles.ADMIN),
        make_user("two-roles", roles.VIEWER, roles.ADMIN),
        both,
        custom,
        inactive,
        make_superuser(),
    ]


def test_every_kind_of_user_holds_what_djangos_model_backend_says():
    for user in _users():
        expected = ModelBackend().get_all_permissions(_fresh(user))
        assert ThrottledModelBackend().get_all_permissions(_fresh(user)) == expected, user
        checked = _fresh(user)
        for permission in ("auth.change_user", "auth.change_group", "tasks.retry_taskinstance"):
            assert checked.has_perm(permission) == (permission in expected), (user, permission)


def test_a_users_permissions_are_read_in_one_statement_and_kept_on_the_user():
    user = _fresh(make_user("both-ways", roles.ADMIN))
    user.user_permissions.add(Permission.objects.get(codename="change_user"))
    user = _fresh(user)
    with CaptureQueriesContext(connection) as seen:
        assert user.has_perm("auth.change_group") and user.has_perm("auth.change_user")
        assert not user.has_perm("auth.delete_permission")
    assert len(seen.captured_queries) == 1
