"""The Jobs and Schedules pages: what each role sees and may do, the Run form generated from
a definition's parameters, the plan form's builder, preview and refusals, and the plan's
actions. Plans are built through the verbs (tests/schedules/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskcenter.dashboard.schedule_forms import Builder, preview
from taskcenter.schedules import selectors
from taskcenter.schedules.models import Fire, FireOutcome, Plan, PlanItem
from taskcenter.tasks.models import TaskDefinition, TaskInstance
from tests.accounts.conftest import make_persona
from tests.conftest import client_for
from tests.factories import start
from tests.schedules.conftest import cron_item, make_plan

SUNDAYS = "0 15 0 ? * 1"
PERSONAS = ["viewer", "manager", "narrow", "scoped", "admin"]
MANAGES = {"manager", "scoped", "admin"}  # manage schedules and run jobs


def weekly_form(**changes) -> dict:
    data = {
        "entity_group": "NOTEBOOK",
        "entity_key": "7",
        "job_class": "com.hengshi.nangaparbat.schedulejob.NotebookJob",
        "job_params": '{"notebook": 7}',
        "retry_times": "0",
        "cron_type": "WEEKLY",
        "minute": "15",
        "hour": "0",
        "weekdays": ["1"],
        "time_zone": "GMT+08:00",
        "misfire_policy": "RUN_ONCE",
        "overlap_policy": "SKIP",
        "enabled": "1",
    }
    data.update(changes)
    return data


@pytest.fixture
def plan(db, operator):
    return make_plan("1", [cron_item(SUNDAYS, "GMT+08:00")], actor=operator)


def html(response) -> str:
    return response.content.decode()


# --- Anonymous and the role matrix -------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_from_every_page(plan, client):
    for url in (
        "/jobs/",
        "/jobs/Reinstall OCP agent/",
        "/schedules/",
        "/schedules/new/",
        f"/schedules/{plan.pk}/",
        f"/schedules/{plan.pk}/edit/",
        "/schedules/preview/?cron_type=DAILY",
        f"/schedules/{plan.pk}/confirm/?action=run",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url
    assert client.post(f"/schedules/{plan.pk}/disable/").status_code == 302
    assert Plan.objects.get(pk=plan.pk).enabled


@pytest.mark.parametrize("persona", PERSONAS)
def test_role_matrix_of_the_new_pages(plan, clusters, persona):
    user = make_persona(persona, clusters)
    client = client_for(user)
    manages = persona in MANAGES
    change = 200 if manages else 403

    jobs = client.get("/jobs/")
    assert jobs.status_code == 200
    assert "Reinstall OCP agent" in html(jobs)
    assert ("Run…" in html(jobs)) is manages
    job = client.get("/jobs/Reinstall OCP agent/")
    assert job.status_code == 200
    assert ('id="run-form"' in html(job)) is manages

    listing = client.get("/schedules/")
    assert listing.status_code == 200
    assert "every Sunday at 00:15 (GMT+08:00)" in html(listing)
    assert ("New plan" in html(listing)) is manages
    detail = client.get(f"/schedules/{plan.pk}/")
    assert detail.status_code == 200
    for label in ("Disable", "Run now", "Delete", ">Edit<"):
        assert (label in html(detail)) is manages, label

    assert client.get("/schedules/new/").status_code == change
    assert client.get(f"/schedules/{plan.pk}/edit/").status_code == change
    assert client.get("/schedules/preview/?cron_type=DAILY").status_code == change
    for action in ("disable", "run", "cancel", "delete"):
        confirm = client.get(f"/schedules/{plan.pk}/confirm/?action={action}")
        assert confirm.status_code == change, action

    disabled = client.post(f"/schedules/{plan.pk}/disable/")
    assert disabled.status_code == (302 if manages else 403)
    assert Plan.objects.get(pk=plan.pk).enabled is not manages
    ran = client.post("/jobs/Reinstall OCP agent/", {"param-host": "10.0.0.9"})
    assert ran.status_code == (302 if manages else 403)
    assert TaskInstance.objects.filter(parameters__host="10.0.0.9").exists() is manages


def test_a_role_without_any_permission_sees_nothing(plan):
    from tests.conftest import make_user

    client = client_for(make_user("nobody"))
    for url in ("/jobs/", "/schedules/", f"/schedules/{plan.pk}/"):
        assert client.get(url).status_code == 403, url


# --- Jobs ----------------------------------------------------------------------------------------


def test_jobs_page_lists_each_definition_with_parameters_version_and_recent_runs(operator):
    run = start("Reinstall OCP agent", creator=operator, host="10.1.1.1")
    page = html(client_for(operator).get("/jobs/"))
    assert "Reinstall OCP agent" in page and "Address of the host" in page
    assert "<code>host</code>" in page and "<td>text</td>" in page and "127.0.0.1" in page
    assert "v1" in page
    assert f'href="/tasks/{run.pk}/"' in page
    assert "Scale out tenant units" in page and "<td>integer</td>" in page


def test_job_page_by_the_id_of_its_stored_row(operator):
    run = start("Reinstall OCP agent", creator=operator)
    row = TaskDefinition.objects.get(pk=run.definition_id)
    response = client_for(operator).get(f"/jobs/{row.pk}/")
    assert response.status_code == 200
    assert "Reinstall OCP agent" in html(response)
    assert client_for(operator).get("/jobs/No such job/").status_code == 404


def test_run_form_starts_a_task_with_typed_parameters_and_opens_it(operator):
    response = client_for(operator).post(
        "/jobs/Scale out tenant units/",
        {"param-units": "2", "param-fail_step": "", "param-fail_times": "1"},
    )
    task = TaskInstance.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    assert task.parameters == {"units": 2, "fail_step": "", "fail_times": 1}
    assert task.creator == operator
    page = html(client_for(operator).get(f"/tasks/{task.pk}/"))
    assert 'id="task-parameters"' in page and "<dt>units</dt>" in page


def test_run_form_shows_messages_next_to_fields_and_starts_nothing(operator):
    client = client_for(operator)
    response = client.post("/jobs/Scale out tenant units/", {"param-units": "many"})
    assert response.status_code == 400
    assert 'id="param-units-error">Enter a whole number, e.g. 4.' in html(response)
    assert 'value="many"' in html(response)
    # A demo job definition whose parameter is required.
    spec = next(s for s in selectors.job_definitions() if any(p.required for p in s.parameters))
    response = client.post(f"/jobs/{spec.name}/", {})
    assert response.status_code == 400
    assert "Required." in html(response)
    assert not TaskInstance.objects.exists()


# --- Schedules: list, detail and the task page ---------------------------------------------------


def test_empty_schedule_list_says_so(operator):
    page = html(client_for(operator).get("/schedules/"))
    assert "No plans yet" in page and "Create the first plan" in page


def test_plan_detail_lists_runs_and_skipped_and_missed_fires(plan, operator):
    from taskcenter.schedules import firing

    item = PlanItem.objects.get(plan=plan)
    fire = firing.fire_start(
        plan=plan, item=item, fire_time=datetime(2024, 1, 7, tzinfo=UTC), actor=operator
    )
    firing.fire_record_missed(
        plan=plan, item=item, fire_time=datetime(2024, 1, 14, tzinfo=UTC), reason="scheduler down"
    )
    page = html(client_for(operator).get(f"/schedules/{plan.pk}/"))
    assert f'href="/tasks/{fire.task_id}/"' in page
    assert "Missed" in page and "scheduler down" in page
    # The run's task page names the plan that started it.
    task_page = html(client_for(operator).get(f"/tasks/{fire.task_id}/"))
    assert 'id="started-by"' in task_page and f'href="/schedules/{plan.pk}/"' in task_page


def test_a_scoped_operator_does_not_get_links_to_runs_outside_its_clusters(plan, clusters):
    from taskcenter.schedules import firing

    item = PlanItem.objects.get(plan=plan)
    fire = firing.fire_start(plan=plan, item=item, fire_time=datetime(2024, 1, 7, tzinfo=UTC))
    page = html(client_for(make_persona("scoped", clusters)).get(f"/schedules/{plan.pk}/"))
    assert f'href="/tasks/{fire.task_id}/"' not in page
    assert "not visible to you" in page


# --- Schedules: the form -------------------------------------------------------------------------


def test_builder_makes_and_reads_back_each_shape():
    cases = {
        ("MINUTELY", "every", "5"): "0 0/5 * * * ?",
        ("HOURLY", "minute", "30"): "0 30 * * * ?",
        ("DAILY", "hour", "6"): "0 0 6 * * ?",
        ("MONTHLY", "day", "L"): "0 0 0 L * ?",
    }
    from django.http import QueryDict

    for (kind, name, value), expression in cases.items():
        data = QueryDict(mutable=True)
        data.update({"cron_type": kind, name: value})
        built = Builder.from_data(data)
        assert built.expression() == expression
        assert Builder.from_item(kind, expression).expression() == expression
    weekly = Builder.from_item("WEEKLY", "0 15 0 ? * 1,7")
    assert (weekly.minute, weekly.hour, weekly.weekdays) == (15, 0, [1, 7])
    assert Builder.from_item("WEEKLY", "0 0 12 ? * MON#2").cron_type == "CRON"


def test_preview_gives_words_and_five_times_in_the_zone_with_dst_changes_marked():
    march = datetime(2024, 3, 29, tzinfo=UTC)
    shown = preview("0 30 2 * * ?", "Europe/Berlin", now=march)
    assert shown.words == "every day at 02:30 (Europe/Berlin)"
    assert len(shown.times) == 5
    # 2024-03-31 02:30 does not exist in Berlin: Quartz fires at 03:30 CEST.
    changes = [t for t in shown.times if t.offset_change]
    assert len(changes) == 1 and "UTC+01:00 → UTC+02:00" in changes[0].offset_change
    refused = preview("0 0 12 * * MON", "UTC")
    assert refused.error_field == "cron_desc" and "day-of-week" in refused.error.lower()
    assert preview("0 0 12 * * ?", "Mars/Base").error_field == "time_zone"


def test_preview_endpoint_answers_the_form_live(operator):
    response = client_for(operator).get(
        "/schedules/preview/",
        {
            "cron_type": "WEEKLY",
            "minute": "15",
            "hour": "0",
            "weekdays": "1",
            "time_zone": "GMT+08:00",
        },
        HTTP_HX_REQUEST="true",
    )
    page = html(response)
    assert response.status_code == 200
    assert SUNDAYS in page and "Every Sunday at 00:15 (GMT+08:00)" in page
    assert page.count("<li>") == 5
    bad = html(
        client_for(operator).get(
            "/schedules/preview/", {"cron_type": "CRON", "cron_desc": "0 0 25 * * ?"}
        )
    )
    assert 'id="cron-error"' in bad


def test_create_a_weekly_plan_with_the_builder(operator):
    response = client_for(operator).post("/schedules/new/", weekly_form())
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/schedules/{plan.pk}/"
    item = PlanItem.objects.get(plan=plan)
    assert (item.cron_desc, item.cron_type, item.time_zone) == (SUNDAYS, "WEEKLY", "GMT+08:00")
    assert plan.job_params == {"notebook": 7} and plan.created_by == operator
    assert item.next_fire_at is not None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"cron_type": "CRON", "cron_desc": "0 0 12 * * MON"}, "f-cron_desc-error", "day-of-week"),
        ({"cron_type": "CRON", "cron_desc": "0 60 * * * ?"}, "f-cron_desc-error", "minute"),
        ({"time_zone": "Mars/Base"}, "f-time_zone-error", "Unknown time zone"),
        ({"job_params": "[1]"}, "f-job_params-error", "JSON object"),
        ({"job_params": '{"nope": 1}'}, "f-job_params-error", "nope"),
        ({"job_class": "java.lang.Runtime"}, "", "unknown job class"),
        ({"entity_key": ""}, "f-entity_key-error", "required"),
        ({"weekdays": []}, "", "Choose at least one day"),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_saved(
    operator, changes, field, words
):
    response = client_for(operator).post("/schedules/new/", weekly_form(**changes))
    page = html(response)
    assert response.status_code == 400
    assert field in page
    assert words.lower() in page.lower()
    assert not Plan.objects.exists()


def test_edit_keeps_the_item_and_its_other_items(plan, operator):
    from taskcenter.schedules import inputs, verbs

    body = {
        "entityGroup": "NOTEBOOK",
        "entityKey": "1",
        "planItems": [
            cron_item(SUNDAYS, "GMT+08:00", PlanItem.objects.get(plan=plan).pk),
            {
                "triggerType": "DEPENDENCY",
                "triggerByJobs": [{"entityGroup": "PIPELINE", "entityKey": "9"}],
            },
        ],
    }
    verbs.plan_submit(actor=operator, data=inputs.plan_input(body))
    cron_id = PlanItem.objects.get(plan=plan, trigger_type="CRON_JOB").pk
    client = client_for(operator)
    form = html(client.get(f"/schedules/{plan.pk}/edit/"))
    assert f'value="{SUNDAYS}"' in form and 'value="GMT+08:00"' in form and "readonly" in form
    response = client.post(
        f"/schedules/{plan.pk}/edit/",
        weekly_form(entity_key="ignored", hour="6", job_params='{"notebook": 1}'),
    )
    assert response.status_code == 302
    items = {i.trigger_type: i for i in PlanItem.objects.filter(plan=plan)}
    assert items["CRON_JOB"].pk == cron_id and items["CRON_JOB"].cron_desc == "0 15 6 ? * 1"
    assert items["DEPENDENCY"].trigger_by_jobs == [{"entityGroup": "PIPELINE", "entityKey": "9"}]
    assert Plan.objects.get().entity_key == "1"


# --- Schedules: actions --------------------------------------------------------------------------


def test_each_action_is_confirmed_in_a_dialog_and_done_through_the_verbs(plan, operator):
    client = client_for(operator)
    dialog = html(
        client.get(f"/schedules/{plan.pk}/confirm/?action=disable", HTTP_HX_REQUEST="true")
    )
    assert "<dialog" in dialog and "Disable this plan?" in dialog
    assert f'action="/schedules/{plan.pk}/disable/"' in dialog and "csrfmiddlewaretoken" in dialog

    assert client.post(f"/schedules/{plan.pk}/disable/").status_code == 302
    plan.refresh_from_db()
    assert not plan.enabled
    assert PlanItem.objects.get(plan=plan).next_fire_at is None
    assert ">Enable<" in html(client.get(f"/schedules/{plan.pk}/"))
    client.post(f"/schedules/{plan.pk}/enable/")
    assert Plan.objects.get(pk=plan.pk).enabled

    ran = client.post(f"/schedules/{plan.pk}/run/", follow=True)
    fire = Fire.objects.get(plan=plan, outcome=FireOutcome.STARTED)
    assert f"Run started: task #{fire.task_id}" in html(ran)
    assert PlanItem.objects.filter(plan=plan, trigger_type="CRON_JOB").exists()
    assert "Cancel runs" in html(client.get(f"/schedules/{plan.pk}/"))
    assert "Stopped" in html(client.post(f"/schedules/{plan.pk}/cancel/", follow=True))

    assert client.get(f"/schedules/{plan.pk}/confirm/?action=explode").status_code == 400
    gone = client.post(f"/schedules/{plan.pk}/delete/")
    assert gone.status_code == 302 and gone["Location"] == "/schedules/"
    assert not Plan.objects.exists()
    assert TaskInstance.objects.filter(pk=fire.task_id).exists()  # its past runs stay
    assert client.get(f"/schedules/{plan.pk}/").status_code == 404


def test_actions_need_post(plan, operator):
    assert client_for(operator).get(f"/schedules/{plan.pk}/disable/").status_code == 405
