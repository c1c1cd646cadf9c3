"""The role matrix of every schedules and contexts endpoint: anonymous 401, viewer reads
and gets 403 on every change, operator and admin may do all; run-now also needs the run
permission; contexts are scoped by cluster exactly as tasks."""

from __future__ import annotations

import pytest

from taskcenter.schedules.models import Plan
from taskcenter.tasks.models import Cluster, TaskInstance
from tests.api.conftest import basic_client, persona_client
from tests.factories import (
    NOTEBOOK_JOB,
    cron_item,
    grant_scoped,
    make_cluster,
    make_plan,
    make_role,
    make_user,
)

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "viewer", "operator", "admin"]
READ = {"anonymous": 401, "viewer": 200, "operator": 200, "admin": 200}
MANAGE = {"anonymous": 401, "viewer": 403, "operator": 200, "admin": 200}
CREATE = {
    "entityGroup": "NOTEBOOK",
    "entityKey": "7",
    "planItems": [cron_item("0 0 * * * ?")],
    "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 7}},
}
RUN_NOW = {**CREATE, "planItems": [{"triggerType": "ONCE"}]}
ENTITY = {"entityGroup": "NOTEBOOK", "entityKey": "1"}


def _world() -> tuple[Plan, int]:
    plan = make_plan("1")
    context = make_plan("1", [{"triggerType": "ONCE"}])
    return plan, context.fires.get().task_id


# (name, method, url with {plan} and {context}, body, expected by persona)
MATRIX = [
    ("list", "get", "/api/schedules", None, READ),
    ("users", "get", "/api/schedules/users", None, READ),
    ("detail", "get", "/api/schedules/{plan}", None, READ),
    ("contexts", "get", "/api/contexts", None, READ),
    ("context users", "get", "/api/contexts/users", None, READ),
    ("context", "get", "/api/contexts/{context}", None, READ),
    ("context logs", "get", "/api/contexts/{context}/logs?block=false", None, READ),
    ("context results", "get", "/api/contexts/{context}/results?block=false", None, READ),
    ("create", "post", "/api/schedules", CREATE, MANAGE),
    ("run now", "post", "/api/schedules", RUN_NOW, MANAGE),
    ("update", "put", "/api/schedules/{plan}", {"enabled": False}, MANAGE),
    ("enable", "post", "/api/schedules/{plan}/enable", {}, MANAGE),
    ("disable", "post", "/api/schedules/{plan}/disable", {}, MANAGE),
    ("cancel", "put", "/api/schedules/{plan}/cancel", {}, MANAGE),
    ("cancel by entity", "post", "/api/schedules/cancel", ENTITY, MANAGE),
    ("delete", "delete", "/api/schedules/{plan}", None, MANAGE),
    ("schema", "get", "/api/schedules-schema", None, {p: 200 for p in PERSONAS}),
]
CODES = {401: 30000, 403: 30014}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "method", "url", "body", "expected"), MATRIX, ids=[row[0] for row in MATRIX]
)
def test_permission_matrix(persona, name, method, url, body, expected):
    plan, context = _world()
    client = persona_client(persona)
    target = url.format(plan=plan.pk, context=context)
    kwargs = {"content_type": "application/json"} if body is not None else {}
    response = getattr(client, method)(target, *([body] if body is not None else []), **kwargs)
    assert response.status_code == expected[persona], (persona, name, response.content[:300])
    if name == "schema":
        return
    answer = response.json()
    assert set(answer) >= {"code", "msg", "data", "version"}
    if response.status_code >= 400:
        assert answer["code"] == CODES[response.status_code]
        before_plans = list(Plan.objects.values())
        assert before_plans and TaskInstance.objects.count() == 1  # nothing was done


def test_run_now_also_needs_the_run_permission():
    make_role("schedulers", "view_taskinstance", "manage_schedules")
    make_user("scheduler", "schedulers")
    client = basic_client("scheduler")
    assert client.post("/api/schedules", CREATE, "application/json").status_code == 200
    response = client.post("/api/schedules", RUN_NOW, "application/json")
    assert response.status_code == 403 and "run" in response.json()["msg"]
    assert not TaskInstance.objects.exists()


def test_contexts_are_scoped_by_cluster_as_tasks():
    _, context = _world()
    user = make_user("scoped", "TASK_VIEWER")
    grant_scoped(user, "TASK_VIEWER", make_cluster("c1", 1))
    client = basic_client("scoped")
    assert client.get("/api/contexts").json()["totalHits"] == 0
    assert client.get(f"/api/contexts/{context}").status_code == 404
    TaskInstance.objects.filter(pk=context).update(cluster=Cluster.objects.get(name="c1"))
    assert client.get("/api/contexts").json()["totalHits"] == 1
