"""The small polled endpoints (top-bar counts, fleet, banner) for each persona, and with
malformed cursors: signed out is sent to sign in, a user without a task role is refused,
a malformed cursor neither fails nor hides a change."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import client_for

URLS = ["/live/counts/", "/fleet/", "/fleet/banner/"]


@pytest.mark.parametrize("url", URLS)
def test_signed_out_is_sent_to_sign_in(db, url):
    answer = Client().get(url)
    assert answer.status_code == 302 and "/login/" in answer["Location"]


@pytest.mark.parametrize("url", URLS)
def test_each_role_that_may_view_gets_an_answer(url, viewer, operator, admin):
    for user in (viewer, operator, admin):
        assert client_for(user).get(url).status_code in (200, 204), (user, url)


@pytest.mark.parametrize("url", ["/fleet/"])
def test_a_user_without_a_task_role_is_refused(url, nobody):
    assert client_for(nobody).get(url).status_code == 403


@pytest.mark.parametrize("cursor", ["", "garbage", "x" * 5000, "9999999999999999999.1.zz"])
def test_a_malformed_counts_cursor_answers_the_counts(viewer, done_task, cursor):
    answer = client_for(viewer).get("/live/counts/", {"c": cursor})
    assert answer.status_code == 200  # read as "everything may have changed": counts sent
    assert b"running" in answer.content
