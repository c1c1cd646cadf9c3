"""Both OpenAPI schemas obeyed, with every schemathesis check on.

Schemathesis generates requests for every operation of the OCP v2 schema and of the
schedules (HENGSHI) schema, data that fits the schema and data that does not, signed in as
an admin with HTTP Basic, with ids that sometimes exist, and runs all its checks on each
answer: no 5xx; a documented status, content type, headers and body; data the schema
refuses is refused and data it accepts is not; authentication enforced (it re-sends
without credentials and with wrong ones); methods the schema does not list refused.

The requests go through the WSGI application inside the test's transaction, so the
sign-in throttle's counters of the wrong-password probes vanish with it and throttle no
other test; the failure limit is raised for this test, so its own probes do not lock out
its admin either. Hypothesis is derandomized and the examples per operation kept few, so
the run is the same every time and takes well under a minute.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from tests.api.conftest import PASSWORD
from tests.factories import failed_task, make_plan, make_task, make_user, running_task

load_all_checks()
# Every check schemathesis has, but the per-response time limit (timing is not asserted in
# tests) and the object-level authorization check (it needs a second identity's config).
CHECKS_ON = [
    check
    for check in CHECKS.get_all()
    if getattr(check, "__name__", "") not in ("max_response_time", "object_level_authorization")
]
EXAMPLES = 3  # per operation

# What a schema cannot say, and the server answers with a documented 400: a verb asked in a
# state that does not offer it (code 20003), a job (its run or its plan) whose parameters,
# cron expression, time zone or job class the registered job refuses, a plan's item ids
# that are not its own, a bulk operation without the reason its verb needs. Data the schema accepts may get that 400 for those operations.
STATE_OR_JOB_REFUSALS = [
    "retryTask",
    "rollbackTask",
    "cancelTask",
    "retrySubtask",
    "skipSubtask",
    "cancelSubtask",
    "runJob",
    "submitSchedule",
    "updateSchedule",
    # Rollback and cancel need a reason; a filter's values are read as the list reads them.
    "bulkRetryTasks",
    "bulkRollbackTasks",
    "bulkCancelTasks",
    "stopBulkOperation",
    # Approving or rejecting needs a gate that waits and a reason, and not one's own task.
    "approveSubtask",
    "rejectSubtask",
    # A channel's URL must suit its kind (http(s) for a webhook, a scheme Apprise knows), a
    # rule's events and target must exist and be the caller's to use.
    "createNotificationChannel",
    "updateNotificationChannel",
    "createNotificationRule",
    "updateNotificationRule",
    # A log's attempt must have run: 1 to the subtask's latest.
    "getSubtaskLog",
]
CONFIG = f"""
[generation]
mode = "all"
# NUL is refused everywhere, before any view (taskcenter.core.text_input; docs/api.md):
# valid data holds none.
allow-x00 = false
max-examples = {EXAMPLES}

[phases.coverage]
# A parameter given twice (offset=1&offset=2) must be refused unless the schema repeats it.
generate-duplicate-query-parameters = true

[[operations]]
include-operation-id = {STATE_OR_JOB_REFUSALS!r}
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "403", "404", "409"]
"""

app = get_wsgi_application()
config = schemathesis.Config.from_str(CONFIG)
ocp = schemathesis.openapi.from_wsgi("/api/schema?format=json", app, config=config)
hengshi = schemathesis.openapi.from_wsgi("/api/schedules-schema?format=json", app, config=config)

# Real ids for the path parameters, so that generated requests also reach the services.
KNOWN_IDS: dict[str, list[int]] = {
    "taskInstanceId": [],
    "subtaskInstanceId": [],
    "scheduleId": [],
    "contextId": [],
}


def known_ids(ctx, path_parameters):
    """Half of the generated (valid) ids are replaced by ids that exist."""
    if not path_parameters:
        return path_parameters
    for name in ("taskInstanceId", "scheduleId", "contextId"):
        value = path_parameters.get(name)
        if isinstance(value, int) and value % 2 == 0 and KNOWN_IDS[name]:
            index = value // 2 % len(KNOWN_IDS[name])
            path_parameters[name] = KNOWN_IDS[name][index]
            if name == "taskInstanceId" and "subtaskInstanceId" in path_parameters:
                path_parameters["subtaskInstanceId"] = KNOWN_IDS["subtaskInstanceId"][index]
    return path_parameters


ocp.hook("map_path_parameters")(known_ids)
hengshi.hook("map_path_parameters")(known_ids)


@pytest.fixture
def keep_test_connection():
    """Django closes the connection after each WSGI request; the test transaction needs it
    open (django.test.Client does the same around its requests)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(db, keep_test_connection, no_broker, settings):
    # The wrong-password probes stay inside this test (its transaction), and do not lock
    # out its own admin meanwhile; waits answer at once.
    settings.TASKCENTER_SIGNIN_FAILURE_LIMIT = 1_000_000
    settings.TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT = 1_000_000
    settings.TASKCENTER_CONTEXT_WAIT_SECONDS = 0.0
    make_user("schema-admin", "ADMIN")
    tasks = [failed_task(), running_task(), make_task(["SUCCESSFUL"])]
    KNOWN_IDS["taskInstanceId"] = [t.pk for t in tasks]
    KNOWN_IDS["subtaskInstanceId"] = [t.subtasks.order_by("-status").first().pk for t in tasks]
    plans = [make_plan("1"), make_plan("2", group="PIPELINE")]
    KNOWN_IDS["scheduleId"] = [plan.pk for plan in plans]
    KNOWN_IDS["contextId"] = [t.pk for t in tasks]
    token = base64.b64encode(f"schema-admin:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    max_examples=EXAMPLES,
)


@ocp.parametrize()
@HYPOTHESIS
def test_the_ocp_api_obeys_its_schema(case, api_world):
    case.call_and_validate(headers=api_world, checks=CHECKS_ON)


@hengshi.parametrize()
@HYPOTHESIS
def test_the_schedules_api_obeys_its_schema(case, api_world):
    case.call_and_validate(headers=api_world, checks=CHECKS_ON)


# --- What the schemas promise, asked directly ----------------------------------------------------


def test_a_repeated_offset_or_limit_is_refused(as_viewer):
    for url in ("/api/schedules?offset=0&offset=5", "/api/contexts?limit=5&limit=6"):
        response = as_viewer.get(url)
        assert response.status_code == 400
        assert response.json()["field"] in ("offset", "limit")
    response = as_viewer.get("/api/v2/tasks/instances?page=1&page=2")
    assert response.status_code == 400 and response.json()["error"]["target"] == "page"
    # A parameter the schema repeats may be repeated.
    response = as_viewer.get("/api/v2/tasks/instances?status=FAILED&status=RUNNING")
    assert response.status_code == 200


def test_the_schedules_schema_states_ids_enums_ranges_and_bodies(client):
    schema = client.get("/api/schedules-schema?format=json").json()
    listing = schema["paths"]["/api/schedules"]
    parameters = {p["name"]: p["schema"] for p in listing["get"]["parameters"]}
    assert parameters["limit"]["minimum"] == 1 and parameters["limit"]["maximum"] == 1000
    assert parameters["offset"]["minimum"] == 0
    assert parameters["jobStatusList"]["items"]["enum"]
    body = listing["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"entityGroup", "entityKey"}
    plan = schema["paths"]["/api/schedules/{scheduleId}"]["get"]["parameters"][0]
    assert plan["schema"]["minimum"] == 1


def test_sort_values_and_tail_with_offset_as_the_schema_says(as_viewer):
    task = failed_task()
    ok = as_viewer.get("/api/v2/tasks/instances?sort=createTime,DESC&sort=id")
    assert ok.status_code == 200
    for bad in (" id", "id ,asc", "id,up", "size"):
        response = as_viewer.get("/api/v2/tasks/instances", {"sort": bad})
        assert response.status_code == 400, bad
    subtask = task.subtasks.first()
    log = f"/api/v2/tasks/instances/{task.pk}/subtasks/{subtask.pk}/log"
    response = as_viewer.get(log, {"offset": 0, "tail": 5})
    assert response.status_code == 200
