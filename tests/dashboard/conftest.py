"""Fixtures of the dashboard tests: tasks in every state, driven through the services by
tests/factories.py. The browser tests use the real `worker` fixture instead."""

from __future__ import annotations

import pytest

from tests.factories import drive, make_user, start

PASSWORD = "Pa55word!long"


@pytest.fixture
def nobody(db):
    """Signed in, but without any role."""
    return make_user("nobody")


@pytest.fixture
def staff_admin(db):
    from taskcenter.accounts import roles

    # Django's admin site is for superusers only (taskcenter.accounts.admin_site).
    user = make_user("boss", roles.ADMIN)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def failed_task(db, operator):
    """Migrate tenant, failed at "Copy tenant data"."""
    return drive(start(creator=operator), fail={"Copy tenant data"})


@pytest.fixture
def running_task(db, operator):
    """Back up cluster with "Back up data files" running."""
    return drive(start("Back up cluster", creator=operator), stop_at={"Back up data files"})


@pytest.fixture
def done_task(db, operator):
    return drive(start("Reinstall OCP agent", creator=operator))
