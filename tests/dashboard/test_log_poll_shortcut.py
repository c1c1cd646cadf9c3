"""The log poll's shortcut (taskcenter.dashboard.log_poll): a session let in to a log has
its next polls answered after one statement, with the very answer the whole view gives,
and loses the shortcut on the next poll once anything the decision rested on changes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.accounts import services as accounts
from taskcenter.dashboard import log_poll
from taskcenter.tasks import services
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import client_for
from tests.factories import make_cluster, subtask_named

HX = {"HTTP_HX_REQUEST": "true"}
SECRET_LINE = b"copied block 7 of 9 (not for a signed-out reader)\n"


@pytest.fixture
def tail(running_task, viewer):
    """A viewer's open log panel: signed in, one poll answered by the whole view."""
    sub = subtask_named(running_task, "Back up data files")
    client = client_for(viewer)
    url = reverse("dashboard:subtask_log", args=[running_task.pk, sub.pk])
    size = SubtaskInstance.objects.get(pk=sub.pk).log_size
    assert client.get(f"{url}?offset={size}", **HX).status_code == 204
    return client, url, sub, size


def _poll(client, url, offset):
    with CaptureQueriesContext(connection) as statements:
        answer = client.get(f"{url}?offset={offset}", **HX)
    return answer, len(statements)


def _append(sub, data=SECRET_LINE) -> None:
    services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=data)


def test_a_let_in_session_polls_with_one_statement_and_gets_the_whole_views_answer(tail):
    client, url, sub, size = tail
    idle, statements = _poll(client, url, size)
    assert idle.status_code == 204 and idle.content == b"" and statements == 1
    _append(sub)
    new, statements = _poll(client, url, size)
    assert new.status_code == 200 and statements == 2  # the check, then the new text
    assert SECRET_LINE.decode() in new.content.decode()
    log_poll.forget_all()  # the same poll through the whole view answers the same bytes
    whole, statements = _poll(client, url, size)
    assert whole.content == new.content and statements >= 5


def test_the_end_of_the_subtask_still_stops_the_polling(tail):
    client, url, sub, size = tail
    services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True, log=b"done\n")
    final, statements = _poll(client, url, size)
    assert final.status_code == 286 and "done\n" in final.content.decode() and statements == 2


def test_signing_out_ends_it_at_once_even_for_a_kept_cookie(tail):
    client, url, sub, size = tail
    kept = client.cookies["sessionid"].value
    client.logout()
    client.cookies["sessionid"] = kept  # a copy of the cookie made before signing out
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 401 and SECRET_LINE not in answer.content


def test_an_expired_session_ends_it(tail):
    client, url, sub, size = tail
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 401 and SECRET_LINE not in answer.content


def test_deactivation_ends_it_at_once(tail, viewer):
    client, url, sub, size = tail
    accounts.user_deactivate(user_id=viewer.pk)
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 401 and SECRET_LINE not in answer.content


def test_a_new_password_set_elsewhere_ends_it(tail, viewer):
    client, url, sub, size = tail
    accounts.user_set_password(user_id=viewer.pk, password="An0ther-long-Passphrase!")
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 401 and SECRET_LINE not in answer.content


def test_a_withdrawn_role_ends_it_on_the_next_poll(tail, viewer):
    client, url, sub, size = tail
    accounts.user_set_roles(user_id=viewer.pk, grants={})
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 403 and SECRET_LINE not in answer.content


def test_a_role_scoped_to_another_cluster_ends_it(tail, viewer):
    client, url, sub, size = tail
    elsewhere = make_cluster("elsewhere", 4242)
    viewing = Group.objects.get(name=roles.VIEWER)
    accounts.user_set_roles(user_id=viewer.pk, grants={viewing.pk: [elsewhere.pk]})
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 404 and SECRET_LINE not in answer.content


def test_a_membership_changed_outside_the_account_pages_ends_it(tail, viewer):
    """Django's admin or a shell changes memberships without the account services: the
    signals still move the access counter."""
    client, url, sub, size = tail
    viewer.groups.clear()
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 403 and SECRET_LINE not in answer.content


def test_a_role_losing_its_permission_ends_it(tail):
    client, url, sub, size = tail
    Group.objects.get(name=roles.VIEWER).permissions.clear()
    _append(sub)
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 403 and SECRET_LINE not in answer.content


def test_another_session_or_another_log_is_checked_in_full(tail, running_task, operator):
    client, url, sub, size = tail
    # The same session asking for another subtask's log: not let in there yet.
    other = subtask_named(running_task, "Prepare backup")
    other_url = reverse("dashboard:subtask_log", args=[running_task.pk, other.pk])
    _, statements = _poll(client, other_url, 0)
    assert statements >= 5
    # A forged session cookie is no session at all.
    forged = client_for(None)
    forged.cookies["sessionid"] = "x" * 32
    assert forged.get(f"{url}?offset={size}", **HX).status_code == 401
    # The right log under the wrong task id is not the remembered log.
    wrong = reverse("dashboard:subtask_log", args=[running_task.pk + 1000, sub.pk])
    assert client.get(f"{wrong}?offset={size}", **HX).status_code == 404


def test_a_bad_offset_gets_the_whole_views_clear_refusal(tail):
    client, url, _sub, _size = tail
    answer = client.get(f"{url}?offset=-1", **HX)
    assert answer.status_code == 400 and b"offset" in answer.content


@pytest.mark.django_db(transaction=True)
def test_a_poll_on_a_connection_the_database_ended_is_answered_on_a_new_one(tail):
    """The shortcut's statement stands in for Django's health check of a kept connection
    (a SELECT 1 before each request's first statement): when the database ended the
    connection (a restart), the statement fails, the connection is closed and the poll is
    answered all the same, on a new one."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend, as a restart does")
    client, url, sub, size = tail
    _append(sub)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(100):  # until the backend is gone
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    break
                time.sleep(0.05)
    finally:
        other.close()
    connection.health_check_done = False  # as every request starts in production
    answer, _ = _poll(client, url, size)
    assert answer.status_code == 200 and SECRET_LINE.decode() in answer.content.decode()
    again, statements = _poll(client, url, size)  # and the next poll takes the shortcut
    assert again.status_code == 200 and statements == 2
