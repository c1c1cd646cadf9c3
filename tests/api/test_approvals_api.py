"""GET /api/v2/approvals: the waiting approval gates the caller may see (cluster scope),
paged, each saying whether the caller may decide it now."""

from __future__ import annotations

import pytest

from taskcenter.accounts import roles
from taskcenter.tasks.models import TaskInstance
from tests.conftest import client_for
from tests.factories import (
    APPROVAL_GATE,
    grant_scoped,
    make_cluster,
    make_user,
    subtask_named,
    waiting_approval,
)

pytestmark = pytest.mark.django_db

URL = "/api/v2/approvals"


def test_the_list_is_paged_oldest_first_and_says_who_may_decide(viewer, no_broker):
    starter = make_user("starter", roles.MANAGER)
    second = make_user("second", roles.MANAGER)
    first = waiting_approval(starter, release="v1")
    later = waiting_approval(starter, release="v2")
    answer = client_for(second).get(URL, {"size": 1}).json()
    assert answer["successful"] is True
    assert answer["data"]["page"]["totalElements"] == 2
    (row,) = answer["data"]["contents"]
    gate = subtask_named(first, APPROVAL_GATE)
    assert (row["taskInstanceId"], row["subtaskInstanceId"]) == (first.pk, gate.pk)
    assert row["name"] == APPROVAL_GATE and row["parameters"]["release"] == "v1"
    assert row["mayDecide"] is True and row["whyNot"] is None and row["waitingSince"]
    second_page = client_for(second).get(URL, {"size": 1, "page": 2}).json()["data"]
    assert [r["taskInstanceId"] for r in second_page["contents"]] == [later.pk]
    own = client_for(starter).get(URL).json()["data"]["contents"]
    assert own[0]["mayDecide"] is False and "four eyes" in own[0]["whyNot"]
    seen_only = client_for(viewer).get(URL).json()["data"]["contents"]
    assert len(seen_only) == 2 and not any(r["mayDecide"] for r in seen_only)


def test_a_scoped_user_sees_the_gates_of_their_clusters_only(no_broker):
    alpha, bravo = make_cluster("alpha"), make_cluster("bravo")
    here, there = waiting_approval(release="a"), waiting_approval(release="b")
    TaskInstance.objects.filter(pk=here.pk).update(cluster=alpha)
    TaskInstance.objects.filter(pk=there.pk).update(cluster=bravo)
    scoped = make_user("scoped", roles.MANAGER)
    grant_scoped(scoped, roles.MANAGER, alpha)
    rows = client_for(scoped).get(URL).json()["data"]["contents"]
    assert [(r["taskInstanceId"], r["cluster"]["name"]) for r in rows] == [(here.pk, "alpha")]
    assert client_for(make_user("nobody")).get(URL).status_code == 403


def test_bad_paging_is_a_400_in_the_envelope(viewer):
    answer = client_for(viewer).get(URL, {"page": "zero"})
    assert answer.status_code == 400
    assert answer.json()["successful"] is False and answer.json()["error"]["target"] == "page"
