"""Any job can be scheduled, and parameters are typed, checked by one validator that
names every invalid one at once: through HENGSHI's API, the plan form, the Run form,
`run_task` and the scheduler."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from taskcenter.schedules import scheduler
from taskcenter.schedules.models import Fire, FireOutcome, Plan
from taskcenter.tasks import verbs
from taskcenter.tasks.models import TaskInstance
from tests.conftest import client_for
from tests.factories import T0, cron_item, make_plan

pytestmark = pytest.mark.django_db

DATASET_JOB = "com.hengshi.nangaparbat.schedulejob.DatasetJob"


def html(response) -> str:
    return response.content.decode()


def plan_body(job: str, params: dict, key: str = "1") -> dict:
    return {
        "entityGroup": "JOB",
        "entityKey": key,
        "planItems": [cron_item("0 0 * * * ?")],
        "execDetail": {"jobClass": job, "jobParams": params},
    }


def plan_form(job: str, **fields) -> dict:
    data = {
        "entity_group": "JOB",
        "entity_key": "backup",
        "job_class": job,
        "retry_times": "0",
        "cron_type": "DAILY",
        "minute": "0",
        "hour": "3",
        "time_zone": "UTC",
        "misfire_policy": "RUN_ONCE",
        "overlap_policy": "SKIP",
        "enabled": "1",
    }
    data.update(fields)
    return data


# --- Point 3: any job can be scheduled ------------------------------------------------------------


def test_a_plan_may_name_a_definition_by_its_name_through_the_api(as_operator):
    response = as_operator.post(
        "/api/schedules", plan_body("Back up cluster", {"seconds": 5}), "application/json"
    )
    assert response.status_code == 200, response.content
    plan = Plan.objects.get()
    assert plan.job_class == "Back up cluster" and plan.job_params == {"seconds": 5}
    detail = as_operator.get(f"/api/schedules/{plan.pk}").json()["data"]
    assert detail["execDetail"]["jobClass"] == "Back up cluster"


def test_a_data_definition_loaded_with_load_definition_can_be_scheduled(as_operator, tmp_path):
    document = tmp_path / "echo.json"
    document.write_text(
        '{"parameters": [{"name": "times", "type": "integer", "default": 1, "min": 1,'
        ' "max": 3}], "subtasks": [{"key": "a", "kind": "SHELL_TASK",'
        ' "action": {"command": "echo hi"}}]}'
    )
    call_command("load_definition", "Echo loaded", str(document))
    refused = as_operator.post(
        "/api/schedules", plan_body("Echo loaded", {"times": 9}), "application/json"
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "execDetail.jobParams"
    assert "'times' should be less than or equal to 3" in refused.json()["msg"]
    ok = as_operator.post(
        "/api/schedules", plan_body("Echo loaded", {"times": 2}), "application/json"
    )
    assert ok.status_code == 200, ok.content


def test_a_definition_plan_fires_its_job(operator):
    plan = make_plan(
        "backup",
        group="JOB",
        execDetail={"jobClass": "Back up cluster", "jobParams": {"seconds": 1}},
    )
    scheduler.tick(now=T0 + timedelta(minutes=1))
    fire = Fire.objects.get(plan=plan)
    assert fire.outcome == FireOutcome.STARTED
    assert fire.task.definition.name == "Back up cluster"
    assert fire.task.parameters == {"seconds": 1}


def test_the_plan_form_offers_every_job_and_schedule_opens_it_with_the_job_chosen(operator):
    client = client_for(operator)
    form = html(client.get("/schedules/new/?job=Migrate tenant"))
    for name in ("Back up cluster", "Migrate tenant", "Reinstall OCP agent"):
        assert f'<option value="{name}"' in form
    assert '<option value="Migrate tenant" title="Migrate tenant" selected>' in form
    # The chosen job's parameters, as typed fields.
    assert 'id="param-fail_step"' in form and "<select" in form
    assert 'id="param-step_seconds" name="param-step_seconds" type="number"' in form
    job_page = html(client.get("/jobs/Back up cluster/"))
    assert 'href="/schedules/new/?job=Back%20up%20cluster"' in job_page
    jobs_page = html(client.get("/jobs/"))
    assert jobs_page.count('href="/schedules/new/?job=') >= 8


def test_a_definition_is_scheduled_with_the_generated_form(operator):
    response = client_for(operator).post(
        "/schedules/new/", plan_form("Back up cluster", **{"param-seconds": "30"})
    )
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/schedules/{plan.pk}/"
    assert plan.job_class == "Back up cluster" and plan.job_params == {"seconds": 30}


# --- Point 4: typed parameters, every error at once ----------------------------------------------


def test_the_run_form_refuses_negative_seconds_and_starts_nothing(operator):
    response = client_for(operator).post("/jobs/Back up cluster/", {"param-seconds": "-5"})
    assert response.status_code == 400
    assert 'id="param-seconds-error">Should be greater than or equal to 0.</span>' in html(response)
    assert not TaskInstance.objects.exists()


def test_the_run_form_names_every_invalid_field_at_once(operator):
    response = client_for(operator).post(
        "/jobs/Migrate tenant/",
        {"param-fail_step": "nope", "param-fail_times": "-1", "param-step_seconds": "x"},
    )
    page = html(response)
    assert response.status_code == 400
    assert 'id="param-fail_step-error">Must be one of' in page
    assert 'id="param-fail_times-error">Should be greater than or equal to 0.' in page
    assert 'id="param-step_seconds-error">Must be a number.' in page
    assert not TaskInstance.objects.exists()


def test_hengshi_names_every_missing_parameter_in_one_refusal(as_operator):
    response = as_operator.post("/api/schedules", plan_body(DATASET_JOB, {}), "application/json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == "execDetail.jobParams"
    assert "'app' is required" in answer["msg"] and "'dataset' is required" in answer["msg"]
    assert not Plan.objects.exists()


def test_the_plan_form_names_every_invalid_parameter_next_to_its_field(operator):
    response = client_for(operator).post(
        "/schedules/new/",
        plan_form(
            "Migrate tenant",
            **{"param-fail_step": "nope", "param-fail_times": "200", "param-step_seconds": "-1"},
        ),
    )
    page = html(response)
    assert response.status_code == 400
    for name in ("fail_step", "fail_times", "step_seconds"):
        assert f'id="param-{name}-error"' in page
    assert not Plan.objects.exists()


def test_the_api_and_run_task_refuse_negative_seconds(as_operator):
    response = as_operator.post(
        "/api/schedules", plan_body("Back up cluster", {"seconds": -5}), "application/json"
    )
    assert response.status_code == 400
    assert "'seconds' should be greater than or equal to 0" in response.json()["msg"]
    with pytest.raises(CommandError, match="'seconds' should be greater than or equal to 0"):
        call_command("run_task", "Back up cluster", "--param", "seconds=-5")
    assert not TaskInstance.objects.exists()


def test_run_task_reads_each_value_as_its_declared_type():
    task_id = _run_quietly("Reinstall OCP agent", "host=10", "agent_token=123")
    task = TaskInstance.objects.get(pk=task_id)
    assert task.parameters == {"host": "10", "agent_token": "123"}


def test_a_secret_is_never_shown_on_the_task_page(operator):
    task = verbs.task_start(
        definition_name="Reinstall OCP agent",
        parameters={"agent_token": "hunter2-secret"},
        creator=operator,
    )
    page = html(client_for(operator).get(f"/tasks/{task.pk}/"))
    assert "hunter2-secret" not in page and "••••••" in page


def test_the_scheduler_refuses_a_plan_whose_saved_parameters_no_longer_fit():
    plan = make_plan(
        "backup", group="JOB", execDetail={"jobClass": "Back up cluster", "jobParams": {}}
    )
    Plan.objects.filter(pk=plan.pk).update(job_params={"seconds": -5, "extra": 1})
    scheduler.tick(now=T0 + timedelta(minutes=1))
    fire = Fire.objects.get(plan=plan)
    assert fire.outcome != FireOutcome.STARTED and fire.task is None
    assert "'seconds'" in fire.reason and "'extra'" in fire.reason


def _run_quietly(definition: str, *params: str) -> int:
    from io import StringIO

    out = StringIO()
    args = [arg for param in params for arg in ("--param", param)]
    call_command("run_task", definition, *args, stdout=out)
    return int(out.getvalue().strip())


# --- Secrets, date-times and booleans through the pages ------------------------------------------


def test_a_plan_secret_is_masked_in_the_api_and_pages_and_kept_when_edited(as_operator, operator):
    body = plan_body("Reinstall OCP agent", {"host": "db1", "agent_token": "hunter2-secret"})
    assert as_operator.post("/api/schedules", body, "application/json").status_code == 200
    plan = Plan.objects.get()
    assert plan.job_params["agent_token"] == "hunter2-secret"
    answer = as_operator.get(f"/api/schedules/{plan.pk}").content.decode()
    assert "hunter2-secret" not in answer and "••••••" in answer
    client = client_for(operator)
    for url in (f"/schedules/{plan.pk}/", f"/schedules/{plan.pk}/edit/"):
        page = html(client.get(url))
        assert "hunter2-secret" not in page, url
    edit = html(client.get(f"/schedules/{plan.pk}/edit/"))
    assert 'id="param-agent_token" name="param-agent_token" type="password"' in edit
    assert 'value="db1"' in edit
    response = client.post(
        f"/schedules/{plan.pk}/edit/",
        plan_form("Reinstall OCP agent", entity_key="1", **{"param-host": "db2"}),
    )
    assert response.status_code == 302, html(response)[:2000]
    plan.refresh_from_db()
    assert plan.job_params == {"host": "db2", "agent_token": "hunter2-secret"}


def test_the_run_form_reads_date_times_in_the_readers_zone_and_checkboxes(
    operator, settings, monkeypatch
):
    from taskcenter.tasks import definitions
    from taskcenter.tasks.definitions import DefinitionSpec, ParameterSpec, SubtaskSpec

    settings.TIME_ZONE = "Asia/Shanghai"
    # Registered for this test only (the registry is restored after it).
    monkeypatch.setitem(
        definitions._DEFINITIONS,
        "Typed probe",
        DefinitionSpec(
            name="Typed probe",
            parameters=[
                ParameterSpec("when", type="datetime", required=True),
                ParameterSpec("dry_run", True),
            ],
            build=lambda p: [SubtaskSpec("a", "a", "SHELL_TASK", {"command": "true"})],
        ),
    )
    client = client_for(operator)
    form = html(client.get("/jobs/Typed probe/"))
    assert 'type="datetime-local"' in form
    assert 'id="param-dry_run" name="param-dry_run" value="true" checked' in form
    response = client.post("/jobs/Typed probe/", {"param-when": "2026-12-07T10:30"})
    assert response.status_code == 302, html(response)[:2000]
    task = TaskInstance.objects.get()
    assert task.parameters == {"when": "2026-12-07T10:30:00+08:00", "dry_run": False}
    refused = client.post("/jobs/Typed probe/", {"param-dry_run": "true"})
    assert 'id="param-when-error">Required.' in html(refused)
