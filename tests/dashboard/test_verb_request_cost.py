"""What one verb costs a page request: the Retry POST of a subtask in at most 12
queries, its access check and its refusal predicate each run once."""

from __future__ import annotations

import sys
from collections import Counter
from contextlib import contextmanager

import pytest
from django.urls import reverse

from taskcenter.accounts import access
from taskcenter.tasks.models import SubtaskInstance
from taskcenter.tasks.verbs import retry
from tests.conftest import client_for
from tests.factories import subtask_named

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "flash"}


@contextmanager
def calls_of(*functions):
    """How often each of `functions` (the real ones, by their code) runs in the block,
    however it is reached: nothing is replaced, the profiler only counts."""
    codes = {function.__code__: function.__name__ for function in functions}
    counted: Counter[str] = Counter()

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code in codes:
            counted[codes[frame.f_code]] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield counted
    finally:
        sys.setprofile(previous)


def _retry_url(task, subtask) -> str:
    return reverse("dashboard:subtask_operate", args=[task.pk, subtask.pk, "retry"])


def test_subtask_retry_post_takes_at_most_12_queries(
    failed_task, operator, django_assert_max_num_queries
):
    sub = subtask_named(failed_task, "Copy tenant data")
    client = client_for(operator)
    client.get(reverse("dashboard:task_detail", args=[failed_task.pk]))  # a session, as a page has
    with django_assert_max_num_queries(12):
        response = client.post(_retry_url(failed_task, sub), {"seen": 0}, **HX)
    assert response.status_code == 200 and "runs again" in response.content.decode()
    assert SubtaskInstance.objects.get(pk=sub.pk).status == "READY"


def test_subtask_retry_post_checks_access_and_asks_the_refusal_once(failed_task, operator):
    sub = subtask_named(failed_task, "Copy tenant data")
    client = client_for(operator)
    with calls_of(
        access.get_task_for_user, access.can_operate, retry.subtask_retry_refusal
    ) as counted:
        response = client.post(_retry_url(failed_task, sub), {"seen": 0}, **HX)
    assert response.status_code == 200
    assert counted == {
        "get_task_for_user": 1,
        "can_operate": 1,
        "subtask_retry_refusal": 1,
    }


@pytest.mark.parametrize("state", ["allowed", "refused"])
def test_subtask_retry_confirmation_checks_access_and_asks_the_refusal_once(
    failed_task, operator, state
):
    sub = subtask_named(failed_task, "Copy tenant data")
    if state == "refused":
        SubtaskInstance.objects.filter(pk=sub.pk).update(operation="ROLLBACK")
    url = reverse("dashboard:confirm", args=[failed_task.pk])
    url += f"?op=subtask_retry&subtask={sub.pk}&seen=0"
    with calls_of(
        access.get_task_for_user, access.can_operate, retry.subtask_retry_refusal
    ) as counted:
        response = client_for(operator).get(url, **HX)
    assert response.status_code == 200
    assert (b"<dialog" in response.content) == (state == "allowed")
    assert counted == {
        "get_task_for_user": 1,
        "can_operate": 1,
        "subtask_retry_refusal": 1,
    }
