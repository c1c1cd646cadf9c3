"""Every request body of seed 003, sent as it is, and the answer checked against the
seed's sample answer: every key the sample has, with the same JSON type."""

from __future__ import annotations

import json
import re

import pytest

from taskcenter.schedules import scheduler
from taskcenter.schedules.models import Plan, PlanItem
from tests.factories import T0, end_run

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)

SEED_CREATE = """{
    "entityGroup": "NOTEBOOK",
    "entityKey": "1",
    "planItems": [
        {"triggerType": "CRON_JOB", "cronDesc": "0 15 0 ? * 1", "cronType": "WEEKLY",
         "timeZone": "GMT+08:00"},
        {"triggerType": "CRON_JOB", "cronDesc": "*/30 * * * * ?", "cronType": "CRON",
         "timeZone": "GMT+08:00"}
    ],
    "execDetail": {
        "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
        "jobParams": {"notebook": 1},
        "retryTimes": 1
    }
}"""
SEED_RUN_NOW = """{
    "entityGroup": "NOTEBOOK",
    "entityKey": "1",
    "planItems": [{"triggerType": "ONCE"}],
    "execDetail": {
        "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
        "jobParams": {"notebook": 1},
        "retryTimes": 1
    }
}"""
SEED_UPDATE = """{
    "enabled": false,
    "planItems": [
        {"id": 1, "triggerType": "CRON_JOB", "cronDesc": "0 15 0 ? * 1", "cronType": "WEEKLY",
         "timeZone": "GMT+08:00"},
        {"id": 2, "triggerType": "CRON_JOB", "cronDesc": "*/30 * * * * ?", "cronType": "CRON",
         "timeZone": "GMT+08:00"}
    ]
}"""
SEED_CANCEL_BY_ENTITY = '{"entityGroup":"PIPELINE","entityKey":"1"}'
SEED_PLAN = {
    "id": 1,
    "entityGroup": "NOTEBOOK",
    "entityKey": "1",
    "enabled": True,
    "planItems": [
        {
            "id": 1,
            "triggerType": "CRON_JOB",
            "cronDesc": "0 15 0 ? * 1",
            "cronType": "WEEKLY",
            "timeZone": "GMT+08:00",
        }
    ],
    "execDetail": {
        "jobClass": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
        "jobParams": {"notebook": 1},
        "retryTimes": 1,
    },
    "title": "notebook1",
    "createdAt": "2020-03-05 15:01:02",
    "createdBy": 1,
    "updatedAt": "2020-03-05 15:01:02",
    "updatedBy": 1,
}
SEED_CONTEXT = {
    "id": 1,
    "planId": 1,
    "entityGroup": "NOTEBOOK",
    "entityKey": "1",
    "jobStatus": "SUCCESSFUL",
    "createdAt": "2020-03-05 15:01:02",
    "createdBy": 1,
    "scheduleAt": "2020-03-05 15:01:03",
    "startAt": "2020-03-05 15:01:04",
    "stopAt": "2020-03-05 15:01:06",
    "planItem": {
        "id": 1,
        "triggerType": "CRON_JOB",
        "cronDesc": "0 15 0 * * 0",
        "cronType": "WEEKLY",
        "timeZone": "GMT+08:00",
    },
    "jobLogId": 1,
    "jobResultId": 1,
    "execDetail": SEED_PLAN["execDetail"],
}
SEED_USER_KEYS = {
    "id", "name", "email", "description", "avatar", "enable", "userType", "loginName",
    "config", "options", "roles", "organizations",
}  # fmt: skip
WHEN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def assert_shape(sample, answer, where="data"):
    """`answer` has every key of `sample`, with values of the same JSON type."""
    if isinstance(sample, dict):
        assert isinstance(answer, dict), (where, answer)
        for key, value in sample.items():
            assert key in answer, f"{where}.{key} is missing"
            assert_shape(value, answer[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(answer, list), (where, answer)
        if sample and answer:
            assert_shape(sample[0], answer[0], f"{where}[0]")
    elif isinstance(sample, str) and WHEN.match(sample):
        assert answer is None or WHEN.match(answer), (where, answer)
    else:
        assert type(answer) is type(sample), (where, sample, answer)


def envelope(response, status=200) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["code"] == (0 if status == 200 else body["code"]) and "version" in body
    if status == 200:
        assert body["msg"] == "success"
    else:
        assert body["code"] != 0 and body["msg"]
    return body


def send(client, method, url, raw: str | None = None):
    call = getattr(client, method)
    if raw is None:
        return call(url)
    return call(url, data=raw, content_type="application/json")


@pytest.fixture
def seeded(as_operator, operator):
    """The seed's first request: plan 1 with items 1 and 2."""
    body = envelope(send(as_operator, "post", "/api/schedules", SEED_CREATE))
    return body["data"]


def test_create_a_cron_plan(seeded):
    assert_shape(SEED_PLAN, seeded)
    assert seeded["id"] == 1 and [i["id"] for i in seeded["planItems"]] == [1, 2]
    assert seeded["title"] == "notebook1" and seeded["enabled"] is True
    assert seeded["execDetail"] == json.loads(SEED_CREATE)["execDetail"]
    assert seeded["execFrequency"] == "WEEKLY" and seeded["jobStatus"] == "NONE"


def test_run_now_answers_the_same_plan_with_its_context(seeded, as_operator):
    body = envelope(send(as_operator, "post", "/api/schedules", SEED_RUN_NOW))
    data = body["data"]
    once = {"id": 3, "triggerType": "ONCE", "planId": 1}
    assert_shape({**SEED_PLAN, "planItems": [once]}, data)
    assert data["id"] == 1 and data["contextId"]
    assert [(i["triggerType"], i["planId"]) for i in data["planItems"]] == [("ONCE", 1)]
    schedule = envelope(as_operator.get("/api/schedules/1"))["data"]
    assert [i["id"] for i in schedule["planItems"]] == [1, 2]  # the schedule is kept
    context = envelope(as_operator.get(f"/api/contexts/{data['contextId']}"))["data"]
    assert context["planId"] == 1 and context["planItem"]["triggerType"] == "ONCE"


def test_update_replaces_items_and_enabled(seeded, as_operator):
    body = envelope(send(as_operator, "put", "/api/schedules/1", SEED_UPDATE))
    assert_shape({**SEED_PLAN, "enabled": False}, body["data"])
    assert body["data"]["enabled"] is False and body["data"]["nextStartAt"] is None
    assert PlanItem.objects.filter(plan_id=1, next_fire_at__isnull=False).count() == 0


def test_get_and_list(seeded, as_viewer):
    detail = envelope(as_viewer.get("/api/schedules/1"))
    assert_shape(SEED_PLAN, detail["data"])
    listed = envelope(as_viewer.get("/api/schedules?entityKey=1&entityGroup=NOTEBOOK"))
    assert listed["totalHits"] == 1 and listed["offset"] == 0
    assert_shape(SEED_PLAN, listed["data"][0])
    assert envelope(as_viewer.get("/api/schedules?entityGroup=PIPELINE"))["totalHits"] == 0


def test_enable_disable_and_delete(seeded, as_operator):
    assert envelope(send(as_operator, "post", "/api/schedules/1/disable", "{}"))["data"] is None
    assert Plan.objects.get(pk=1).enabled is False
    envelope(send(as_operator, "post", "/api/schedules/1/enable", "{}"))
    assert Plan.objects.get(pk=1).enabled is True
    envelope(send(as_operator, "delete", "/api/schedules/1"))
    assert not Plan.objects.exists()
    envelope(as_operator.get("/api/schedules/1"), 404)


def test_cancel_by_id_and_by_entity(seeded, as_operator):
    envelope(send(as_operator, "put", "/api/schedules/1/cancel", "{}"))
    pipeline = SEED_CREATE.replace("NOTEBOOK", "PIPELINE").replace("NotebookJob", "PipelineJob")
    envelope(
        send(as_operator, "post", "/api/schedules", pipeline.replace('"notebook"', '"pipeline"'))
    )
    envelope(send(as_operator, "post", "/api/schedules/cancel", SEED_CANCEL_BY_ENTITY))


def test_user_lists(seeded, as_operator):
    dataset = {
        "entityGroup": "DATASET",
        "entityKey": "1-2",
        "planItems": [],
        "execDetail": {
            "jobClass": "com.hengshi.nangaparbat.schedulejob.DatasetJob",
            "jobParams": {"app": 1, "dataset": 2},
        },
    }
    envelope(as_operator.post("/api/schedules", dataset, content_type="application/json"))
    users = envelope(as_operator.get("/api/schedules/users?entityGroup=DATASET"))["data"]
    assert [u["loginName"] for u in users] == ["operator"]
    assert SEED_USER_KEYS <= set(users[0]) and "salt" not in users[0]
    envelope(send(as_operator, "post", "/api/schedules", SEED_RUN_NOW))
    users = envelope(as_operator.get("/api/contexts/users?entityGroup=NOTEBOOK"))["data"]
    assert [u["loginName"] for u in users] == ["operator"]
    assert envelope(as_operator.get("/api/contexts/users?entityGroup=DATASET"))["data"] == []


def test_contexts_list_detail_logs_and_results(seeded, as_operator, settings):
    settings.TASKCENTER_CONTEXT_WAIT_SECONDS = 0.2
    [run] = scheduler.tick(now=T0.replace(year=2030)).started  # the 30-second item
    listed = envelope(as_operator.get("/api/contexts?entityKey=1&entityGroup=NOTEBOOK"))
    assert listed["totalHits"] == 1 and listed["offset"] == 0
    assert_shape({**SEED_CONTEXT, "jobStatus": "PENDING", "id": run}, listed["data"][0])
    assert listed["data"][0]["jobStatus"] == "PENDING"
    assert listed["data"][0]["scheduledAt"] == listed["data"][0]["scheduleAt"]
    running = envelope(as_operator.get(f"/api/contexts/{run}/logs?block=false"))
    assert running["done"] is False and len(running["data"]) == 2
    end_run(run)
    detail = envelope(as_operator.get(f"/api/contexts/{run}"))["data"]
    assert_shape({**SEED_CONTEXT, "id": run, "stopAt": "2020-03-05 15:01:06"}, detail)
    assert detail["jobStatus"] == "SUCCESSFUL"
    logs = envelope(as_operator.get(f"/api/contexts/{run}/logs"))
    assert logs["done"] is True
    assert_shape([{"subKey": "1", "logs": ["line"]}], logs["data"])
    results = envelope(as_operator.get(f"/api/contexts/{run}/results?block=true"))
    assert results["done"] is True
    assert_shape([{"subKey": "1", "result": {"schema": [], "data": []}}], results["data"])
    by_status = envelope(as_operator.get("/api/contexts?jobStatusList=FAILED,RUNNING"))
    assert by_status["totalHits"] == 0
    by_status = envelope(as_operator.get("/api/contexts?jobStatus=SUCCESSFUL"))
    assert by_status["totalHits"] == 1
    plans = envelope(as_operator.get("/api/schedules?jobStatusList=SUCCESSFUL"))
    assert plans["totalHits"] == 1 and plans["data"][0]["jobStatus"] == "SUCCESSFUL"


def test_sync_run_now_waits_for_the_end_within_the_bound(seeded, as_operator, settings):
    settings.TASKCENTER_CONTEXT_WAIT_SECONDS = 0.2
    body = json.loads(SEED_RUN_NOW) | {"sync": True}
    data = envelope(as_operator.post("/api/schedules", body, content_type="application/json"))
    assert data["data"]["contextId"] and data["data"]["jobStatus"] == "PENDING"
