"""The Jobs API: GET /api/v2/jobs, GET /api/v2/jobs/{name} and POST /api/v2/jobs/{name}/runs,
for each role, with the one validator's refusals (every invalid parameter named at once,
never a 500) and the cluster scope of the run."""

from __future__ import annotations

import io
import zipfile

import pytest

from taskcenter.tasks.audit import Action
from taskcenter.tasks.models import AuditEntry, TaskInstance
from tests.accounts.conftest import scoped_operator
from tests.api.conftest import check_envelope, check_error, persona_client
from tests.conftest import basic_client
from tests.factories import make_cluster, make_tenant

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "viewer", "operator", "admin"]
READ = {"anonymous": 401, "viewer": 200, "operator": 200, "admin": 200}
RUN = {"anonymous": 401, "viewer": 403, "operator": 201, "admin": 201}
BACKUP = "/api/v2/jobs/Back%20up%20cluster"


def post(client, url: str, body) -> object:
    return client.post(url, body, content_type="application/json")


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_role_reads_the_jobs_with_their_declared_parameters(persona):
    client = persona_client(persona)
    listing = client.get("/api/v2/jobs")
    one = client.get(BACKUP)
    if READ[persona] != 200:
        check_error(listing, 401, 30000)
        check_error(one, 401, 30000)
        return
    jobs = {job["name"]: job for job in check_envelope(listing)["data"]["contents"]}
    assert {"Back up cluster", "Migrate tenant", "hengshi.notebook"} <= set(jobs)
    backup = check_envelope(one)["data"]
    assert backup == jobs["Back up cluster"]
    assert backup["versions"] == [1] and backup["source"] == "CODE"
    [seconds] = backup["parameters"]
    assert {k: seconds[k] for k in ("name", "type", "required", "default", "min", "max")} == {
        "name": "seconds",
        "type": "integer",
        "required": False,
        "default": 600,
        "min": 0,
        "max": 86400,
    }
    assert seconds["choices"] is None and "How long" in seconds["help"]
    migrate = {p["name"]: p for p in jobs["Migrate tenant"]["parameters"]}
    assert migrate["fail_step"]["type"] == "choice"
    assert migrate["fail_step"]["choices"] == [
        "",
        "precheck",
        "snapshot",
        "copy",
        "verify",
        "switch",
    ]
    assert migrate["step_seconds"]["type"] == "number"
    token = {p["name"]: p for p in jobs["Reinstall OCP agent"]["parameters"]}["agent_token"]
    assert token["type"] == "secret" and token["default"] is None


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_role_may_start_a_run_or_is_refused(persona):
    client = persona_client(persona)
    response = post(client, f"{BACKUP}/runs", {"parameters": {"seconds": 1}})
    if RUN[persona] == 401:
        check_error(response, 401, 30000)
    elif RUN[persona] == 403:
        check_error(response, 403, 30014)
    else:
        data = check_envelope(response, 201)["data"]
        task = TaskInstance.objects.get(pk=data["taskInstanceId"])
        assert task.parameters == {"seconds": 1} and task.creator.username == persona
        audit = AuditEntry.objects.get(task=task)
        assert audit.action == Action.START and audit.actor.username == persona
    if RUN[persona] != 201:
        assert not TaskInstance.objects.exists()


def test_every_invalid_parameter_is_named_at_once(as_operator):
    response = post(
        as_operator,
        "/api/v2/jobs/Migrate%20tenant/runs",
        {"parameters": {"fail_step": "nope", "fail_times": "1", "step_seconds": -2, "x": 1}},
    )
    error = check_error(response, 400, 10001)
    assert error["target"] == "parameters"
    assert [sub["target"] for sub in error["subErrors"]] == [
        "parameters.fail_step",
        "parameters.fail_times",
        "parameters.step_seconds",
        "parameters.x",
    ]
    for name in ("fail_step", "fail_times", "step_seconds", "x"):
        assert f"'{name}'" in error["message"]
    assert not TaskInstance.objects.exists()


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"parameters": {"seconds": -5}}, "parameters"),
        ({"parameters": {"seconds": "5"}}, "parameters"),
        ({"parameters": {"seconds": True}}, "parameters"),
        ({"parameters": {"seconds": 2**70}}, "parameters"),
        ({"parameters": {"seconds": 1.5}}, "parameters"),
        # Refused before any view, with the JSON path of the key (core.text_input).
        ({"parameters": {"sec\x00onds": 1}}, "parameters.sec\\u0000onds"),
        ({"parameters": [1]}, "parameters"),
        ({"parameters": "seconds=5"}, "parameters"),
        ({"clusterId": "1"}, "clusterId"),
        ({"clusterId": 0}, "clusterId"),
        ({"clusterId": 2**64}, "clusterId"),
        ({"clusterId": 99999}, "clusterId"),
        ({"tenantId": 99999}, "tenantId"),
        ({"cluster": 1}, "cluster"),
    ],
)
def test_wrong_types_and_unknown_fields_are_a_400_naming_the_field(as_operator, body, target):
    response = post(as_operator, f"{BACKUP}/runs", body)
    error = check_error(response, 400, 10001)
    assert error["target"] == target, error
    assert not TaskInstance.objects.exists()


def test_nul_bytes_and_oversized_strings_are_refused_by_name(as_operator):
    cases = [
        ({"host": "a\x00b"}, "parameters.host", "NUL"),
        ({"host": "h" * 300}, "parameters.host", "at most 253 characters"),
        ({"agent_token": "s\x00" * 5}, "parameters.agent_token", "NUL"),
    ]
    for parameters, target, words in cases:
        response = post(
            as_operator, "/api/v2/jobs/Reinstall%20OCP%20agent/runs", {"parameters": parameters}
        )
        error = check_error(response, 400, 10001)
        # A NUL is refused before any view (core.text_input), the rest by the parameter
        # validator, one sub-error per parameter.
        found = error["subErrors"][0] if error.get("subErrors") else error
        assert found["target"] == target and words in found["message"], found
    # A secret's value is never in the refusal.
    response = post(
        as_operator,
        "/api/v2/jobs/Reinstall%20OCP%20agent/runs",
        {"parameters": {"agent_token": "topsecret" * 30}},
    )
    assert "topsecret" not in response.content.decode()
    assert not TaskInstance.objects.exists()


def test_an_unknown_job_is_a_404_and_a_bad_name_a_400(as_operator):
    check_error(as_operator.get("/api/v2/jobs/No%20such%20job"), 404, 20000)
    check_error(post(as_operator, "/api/v2/jobs/No%20such%20job/runs", {}), 404, 20000)
    error = check_error(as_operator.get("/api/v2/jobs/" + "x" * 300), 400, 10001)
    assert error["target"] == "name"
    error = check_error(as_operator.get("/api/v2/jobs/a%00b"), 400, 10001)
    assert error["target"] == "path"  # refused before any view (core.text_input)


def test_a_body_that_is_not_an_object_is_refused(as_operator):
    check_error(post(as_operator, f"{BACKUP}/runs", [1, 2]), 400, 10001)
    response = as_operator.post(f"{BACKUP}/runs", "{not json", content_type="application/json")
    check_error(response, 400, 10001)


def test_a_secret_is_never_in_an_answer_or_the_audit(as_operator):
    response = post(
        as_operator,
        "/api/v2/jobs/Reinstall%20OCP%20agent/runs",
        {"parameters": {"agent_token": "hunter2-secret"}},
    )
    task_id = check_envelope(response, 201)["data"]["taskInstanceId"]
    assert TaskInstance.objects.get(pk=task_id).parameters["agent_token"] == "hunter2-secret"
    detail = as_operator.get(f"/api/v2/tasks/instances/{task_id}")
    assert "hunter2-secret" not in detail.content.decode()
    diagnosis = as_operator.post(f"/api/v2/tasks/instances/{task_id}/downloadDiagnosis")
    with zipfile.ZipFile(io.BytesIO(b"".join(diagnosis.streaming_content))) as archive:
        summary = archive.read("summary.json").decode()
    assert "hunter2-secret" not in summary and "••••••" in summary
    assert not AuditEntry.objects.filter(reason__contains="hunter2").exists()


# --- Cluster scope ---------------------------------------------------------------------------------


@pytest.fixture
def two_clusters(db):
    alpha = make_cluster("alpha", 1)
    bravo = make_cluster("bravo", 2)
    return alpha, bravo


def test_a_scoped_operator_runs_on_their_cluster_only(two_clusters):
    alpha, bravo = two_clusters
    tenant = make_tenant(alpha, "t1", 1)
    other_tenant = make_tenant(bravo, "t2", 2)
    scoped_operator(alpha)
    client = basic_client("scoped")
    # Must choose a cluster, one of theirs; another cluster reads as unknown.
    error = check_error(post(client, f"{BACKUP}/runs", {}), 400, 10001)
    assert error["target"] == "clusterId" and "required" in error["message"]
    error = check_error(post(client, f"{BACKUP}/runs", {"clusterId": bravo.pk}), 400, 10001)
    assert error["target"] == "clusterId" and "bravo" not in error["message"]
    error = check_error(post(client, f"{BACKUP}/runs", {"tenantId": other_tenant.pk}), 400, 10001)
    assert error["target"] == "tenantId"
    mixed = {"clusterId": alpha.pk, "tenantId": other_tenant.pk}
    assert check_error(post(client, f"{BACKUP}/runs", mixed), 400, 10001)["target"] == "tenantId"
    assert not TaskInstance.objects.exists()
    # On their cluster: started, with the cluster and tenant, and visible to them.
    body = {"clusterId": alpha.pk, "tenantId": tenant.pk, "parameters": {"seconds": 1}}
    task_id = check_envelope(post(client, f"{BACKUP}/runs", body), 201)["data"]["taskInstanceId"]
    task = TaskInstance.objects.get(pk=task_id)
    assert (task.cluster_id, task.tenant_id) == (alpha.pk, tenant.pk)
    check_envelope(client.get(f"/api/v2/tasks/instances/{task_id}"))
    # A tenant alone names its cluster.
    only_tenant = {"tenantId": tenant.pk}
    task_id = check_envelope(post(client, f"{BACKUP}/runs", only_tenant), 201)["data"][
        "taskInstanceId"
    ]
    assert TaskInstance.objects.get(pk=task_id).cluster_id == alpha.pk


def test_an_unscoped_operator_may_run_on_any_cluster_or_none(two_clusters, as_operator):
    _, bravo = two_clusters
    check_envelope(post(as_operator, f"{BACKUP}/runs", {}), 201)
    data = check_envelope(post(as_operator, f"{BACKUP}/runs", {"clusterId": bravo.pk}), 201)
    assert TaskInstance.objects.get(pk=data["data"]["taskInstanceId"]).cluster_id == bravo.pk


def test_the_jobs_api_is_in_the_openapi_schema(as_viewer):
    schema = as_viewer.get("/api/schema", HTTP_ACCEPT="application/json").json()
    assert {"/api/v2/jobs", "/api/v2/jobs/{name}", "/api/v2/jobs/{name}/runs"} <= set(
        schema["paths"]
    )
    run = schema["paths"]["/api/v2/jobs/{name}/runs"]["post"]
    assert run["operationId"] == "runJob" and "201" in run["responses"]
