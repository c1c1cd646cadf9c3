"""Bad input is refused with a clear message naming the field, and nothing is saved."""

from __future__ import annotations

import copy

import pytest

from taskcenter.schedules.models import Fire, Plan, PlanDependency, PlanItem
from taskcenter.tasks.models import AuditEntry, TaskInstance
from tests.factories import NOTEBOOK_JOB, cron_item, dependency_item, make_plan

pytestmark = pytest.mark.django_db

VALID = {
    "entityGroup": "NOTEBOOK",
    "entityKey": "9",
    "planItems": [cron_item("0 15 0 ? * 1", "GMT+08:00")],
    "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 1}, "retryTimes": 1},
}


def _with(path: str, value):
    body = copy.deepcopy(VALID)
    target = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return body


def _snapshot() -> tuple:
    models = (Plan, PlanItem, PlanDependency, Fire, TaskInstance, AuditEntry)
    return tuple(model.objects.count() for model in models)


BAD_POSTS = [
    ("invalid cron", _with("planItems.0.cronDesc", "0 15 0 * * 1"), "planItems[0].cronDesc",
     "Support for specifying both a day-of-week AND a day-of-month"),
    ("cron seconds out of range", _with("planItems.0.cronDesc", "61 * * * * ?"),
     "planItems[0].cronDesc", "Minute and Second values must be between 0 and 59"),
    ("bad zone", _with("planItems.0.timeZone", "Mars/Olympus"), "planItems[0].timeZone",
     "Unknown time zone"),
    ("unknown jobClass", _with("execDetail.jobClass", "java.lang.Runtime"),
     "execDetail.jobClass", "unknown job class"),
    ("unknown job parameter", _with("execDetail.jobParams", {"notebook": 1, "x": 2}),
     "execDetail.jobParams", "'x' is not a parameter of this job (known: notebook)"),
    ("missing job parameter", _with("execDetail.jobParams", {}), "execDetail.jobParams",
     "required"),
    ("DEPENDENCY without jobs", _with("planItems.0", {"triggerType": "DEPENDENCY"}),
     "planItems[0].triggerByJobs", "non-empty array"),
    ("unknown trigger type", _with("planItems.0.triggerType", "HOURLY"),
     "planItems[0].triggerType", "CRON_JOB"),
    ("enabled as text", _with("enabled", "yes"), "enabled", "true or false"),
    ("retryTimes as text", _with("execDetail.retryTimes", "1"), "execDetail.retryTimes",
     "integer"),
    ("planItems as an object", _with("planItems", {"triggerType": "ONCE"}), "planItems",
     "array"),
    ("entityKey as a number", _with("entityKey", 9), "entityKey", "string"),
    ("no execDetail on create", {k: v for k, v in VALID.items() if k != "execDetail"},
     "execDetail", "required"),
    ("unknown item id on create", _with("planItems.0.id", 12345), "planItems[0].id",
     "is not a CRON_JOB or DEPENDENCY item"),
    ("self dependency", _with("planItems.0", dependency_item(("NOTEBOOK", "9"))),
     "planItems[0].triggerByJobs", "cycle"),
    ("Unix cron", _with("planItems.0.cronDesc", "* * * * *"), "planItems[0].cronDesc",
     "Quartz needs seconds first: did you mean `0 * * * * ?`"),
    ("both days", _with("planItems.0.cronDesc", "0 0 12 * * *"), "planItems[0].cronDesc",
     "Use `?` in one of them: did you mean `0 0 12 * * ?`"),
    ("never fires", _with("planItems.0.cronDesc", "0 0 0 30 2 ?"), "planItems[0].cronDesc",
     "This expression never fires: February has no day 30."),
    ("fired for the last time", _with("planItems.0.cronDesc", "0 0 0 1 1 ? 2020"),
     "planItems[0].cronDesc", "This expression never fires: no date from now on matches it."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "field", "words"), BAD_POSTS, ids=[row[0] for row in BAD_POSTS]
)
def test_bad_post_is_refused_and_saves_nothing(as_operator, name, body, field, words):
    before = _snapshot()
    response = as_operator.post("/api/schedules", body, content_type="application/json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] != 0 and answer["data"] is None and answer["field"] == field
    assert field in answer["msg"] and words in answer["msg"], answer["msg"]
    assert _snapshot() == before


def test_a_plan_edited_to_never_fire_is_refused_and_keeps_its_schedule(as_operator):
    plan = make_plan("9", [cron_item("0 15 0 ? * 1")])
    item = PlanItem.objects.get(plan=plan)
    body = {"planItems": [cron_item("0 0 0 31 4,6 ?", item_id=item.pk)]}
    response = as_operator.put(f"/api/schedules/{plan.pk}", body, content_type="application/json")
    assert response.status_code == 400
    assert "never fires: April or June has no day 31." in response.json()["msg"]
    assert PlanItem.objects.get(pk=item.pk).cron_desc == "0 15 0 ? * 1"


def test_a_dependency_cycle_is_refused_when_saved(as_operator):
    make_plan("a", [dependency_item(("NOTEBOOK", "c"))])
    make_plan("b", [dependency_item(("NOTEBOOK", "a"))])
    before = _snapshot()
    body = {**VALID, "entityKey": "c", "planItems": [dependency_item(("NOTEBOOK", "b"))]}
    response = as_operator.post("/api/schedules", body, content_type="application/json")
    assert response.status_code == 400
    assert "cycle" in response.json()["msg"] and "NOTEBOOK/c" in response.json()["msg"]
    assert _snapshot() == before


def test_a_bad_update_changes_nothing(as_operator):
    plan = make_plan("1")
    before = _snapshot()
    items = list(PlanItem.objects.filter(plan=plan).values())
    for body, field in (
        ({"planItems": [cron_item("bad")]}, "planItems[0].cronDesc"),
        ({"enabled": 0}, "enabled"),
        ({"planItems": [{"triggerType": "ONCE"}]}, "planItems[0].triggerType"),
        ({"planItems": [cron_item("0 * * * * ?", item_id=999)]}, "planItems[0].id"),
    ):
        response = as_operator.put(f"/api/schedules/{plan.pk}", body, "application/json")
        assert response.status_code == 400 and response.json()["field"] == field
    assert _snapshot() == before and list(PlanItem.objects.filter(plan=plan).values()) == items


@pytest.mark.parametrize(
    ("method", "url", "status", "field"),
    [
        ("get", "/api/schedules/999", 404, None),
        ("get", "/api/schedules/abc", 400, "scheduleId"),
        ("put", "/api/schedules/999", 404, None),
        ("delete", "/api/schedules/999", 404, None),
        ("post", "/api/schedules/999/enable", 404, None),
        ("put", "/api/schedules/999/cancel", 404, None),
        ("get", "/api/contexts/999", 404, None),
        ("get", "/api/contexts/0", 400, "contextId"),
        ("get", "/api/contexts/999/logs", 404, None),
        ("get", "/api/schedules?limit=0", 400, "limit"),
        ("get", "/api/contexts?jobStatus=DONE", 400, "jobStatus"),
        ("get", "/api/schedules?entityCreatedByList=a,b", 400, "entityCreatedByList"),
    ],
)
def test_unknown_ids_and_bad_parameters(as_operator, method, url, status, field):
    response = getattr(as_operator, method)(url, content_type="application/json")
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] != 0 and body["msg"] and body["field"] == field


def test_cancel_by_entity_of_an_unknown_plan(as_operator):
    body = {"entityGroup": "PIPELINE", "entityKey": "404"}
    response = as_operator.post("/api/schedules/cancel", body, content_type="application/json")
    assert response.status_code == 404 and "PIPELINE/404" in response.json()["msg"]
