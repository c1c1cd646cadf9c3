"""The Jobs and Schedules pages: what each role sees and may do, the Run form generated from
a definition's parameters, the plan form's builder, preview and refusals, and the plan's
actions. Plans are built through the verbs (tests/schedules/conftest.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from taskcenter.dashboard.schedule_forms import Builder, preview
from taskcenter.demo.history import attempts_not_sent
from taskcenter.schedules import selectors
from taskcenter.schedules.models import Fire, FireOutcome, Plan, PlanItem
from taskcenter.tasks.models import TaskDefinition, TaskInstance
from tests.accounts.conftest import make_persona
from tests.conftest import client_for
from tests.factories import cron_item, dependency_item, drive, make_plan, start

SUNDAYS = "0 15 0 ? * 1"
NOTEBOOK_1 = '["NOTEBOOK", "1"]'  # a job to follow as the plan form's checkbox sends it
PIPELINE_9 = '["PIPELINE", "9"]'
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
    """On a plan of alpha, the scoped persona's cluster (other clusters and plans of no
    cluster: tests/schedules/test_scope_matrix.py)."""
    Plan.objects.filter(pk=plan.pk).update(cluster=clusters[0])
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
    where = f"c{clusters[0].pk}"
    ran = client.post("/jobs/Reinstall OCP agent/", {"param-host": "10.0.0.9", "placement": where})
    assert ran.status_code == (302 if manages else 403)
    run = TaskInstance.objects.filter(parameters__host="10.0.0.9").first()
    assert (run is not None) is manages
    if run is not None:  # on the cluster chosen, so its starter sees it
        assert run.cluster_id == clusters[0].pk
        assert client.get(ran["Location"]).status_code == 200


def test_a_role_without_any_permission_sees_nothing(plan):
    from tests.factories import make_user

    client = client_for(make_user("nobody"))
    for url in ("/jobs/", "/schedules/", f"/schedules/{plan.pk}/"):
        assert client.get(url).status_code == 403, url


# --- Jobs ----------------------------------------------------------------------------------------


def test_jobs_page_lists_each_definition_with_parameters_version_and_recent_runs(operator):
    run = start("Reinstall OCP agent", creator=operator, host="10.1.1.1")
    page = html(client_for(operator).get("/jobs/"))
    assert "Reinstall OCP agent" in page and "Address of the host" in page
    assert "<code>host</code>" in page and "<td>string <span" in page and "127.0.0.1" in page
    assert "v1" in page
    assert f'href="/tasks/{run.pk}/"' in page
    assert "Scale out tenant units" in page
    assert '<td>integer <span class="muted">(1 to 64)</span></td>' in page
    assert "<td>choice: (none), precheck, snapshot, copy, verify, switch" in page
    # A secret's default is never shown, and each job offers Schedule with itself chosen.
    assert "<code>agent_token</code>" in page and "<td>secret" in page
    assert 'href="/schedules/new/?job=Back%20up%20cluster"' in page


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
    assert 'id="param-units-error">Must be an integer (a whole number, not text).' in html(response)
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

    # The plan ran on bravo, then moved to alpha: its page is the scoped operator's, its
    # past run on bravo is not.
    alpha, bravo = clusters
    Plan.objects.filter(pk=plan.pk).update(cluster=bravo)
    item = PlanItem.objects.get(plan=plan)
    plan.refresh_from_db()
    fire = firing.fire_start(plan=plan, item=item, fire_time=datetime(2024, 1, 7, tzinfo=UTC))
    assert fire.task.cluster_id == bravo.pk
    Plan.objects.filter(pk=plan.pk).update(cluster=alpha)
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
        (
            {"cron_type": "CRON", "cron_desc": "* * * * *"},
            "f-cron_desc-error",
            "Quartz needs seconds first: did you mean `0 * * * * ?`",
        ),
        (
            {"cron_type": "CRON", "cron_desc": "0 0 12 * * *"},
            "f-cron_desc-error",
            "Use `?` in one of them: did you mean `0 0 12 * * ?`",
        ),
        (
            {"cron_type": "CRON", "cron_desc": "0 0 0 30 2 ?"},
            "f-cron_desc-error",
            "This expression never fires: February has no day 30.",
        ),
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
    dependency_id = PlanItem.objects.get(plan=plan, trigger_type="DEPENDENCY").pk
    client = client_for(operator)
    form = html(client.get(f"/schedules/{plan.pk}/edit/"))
    assert f'value="{SUNDAYS}"' in form and 'value="GMT+08:00"' in form and "readonly" in form
    # The job it follows has no plan: it is listed, checked, as the form sends it back.
    assert f'value="{PIPELINE_9}" checked' in form.replace("&quot;", '"')
    response = client.post(
        f"/schedules/{plan.pk}/edit/",
        weekly_form(
            entity_key="ignored", hour="6", job_params='{"notebook": 1}', after=[PIPELINE_9]
        ),
    )
    assert response.status_code == 302
    items = {i.trigger_type: i for i in PlanItem.objects.filter(plan=plan)}
    assert items["CRON_JOB"].pk == cron_id and items["CRON_JOB"].cron_desc == "0 15 6 ? * 1"
    assert items["DEPENDENCY"].pk == dependency_id
    assert items["DEPENDENCY"].trigger_by_jobs == [{"entityGroup": "PIPELINE", "entityKey": "9"}]
    assert Plan.objects.get().entity_key == "1"


def dependency_form(**changes) -> dict:
    """The plan form as the browser sends it with "Not on a schedule" chosen."""
    return weekly_form(cron_type="NONE", **changes)


def test_editing_a_dependency_only_plan_changes_only_what_was_changed(operator):
    make_plan("1", actor=operator)  # the job it follows
    plan = make_plan(
        "2", [dependency_item(("NOTEBOOK", "1"))], actor=operator, misfirePolicy="SKIP"
    )
    before = PlanItem.objects.get(plan=plan)
    client = client_for(operator)
    form = html(client.get(f"/schedules/{plan.pk}/edit/")).replace("&quot;", '"')
    # No cron trigger is offered in its place: the form says the plan is not on a schedule
    # and shows the job it follows, checked and in words.
    assert '<option value="NONE" selected>Not on a schedule</option>' in form
    assert f'value="{NOTEBOOK_1}" checked' in form
    assert "it runs after NOTEBOOK/1 succeeds, or when run now" in form

    response = client.post(
        f"/schedules/{plan.pk}/edit/",
        dependency_form(entity_key="2", retry_times="1", misfire_policy="SKIP", after=[NOTEBOOK_1]),
    )
    assert response.status_code == 302, html(response)
    plan.refresh_from_db()
    assert plan.retry_times == 1
    after = PlanItem.objects.get(plan=plan)  # one item, the same, unchanged
    assert (after.pk, after.trigger_type, after.trigger_by_jobs, after.cron_desc) == (
        before.pk,
        "DEPENDENCY",
        [{"entityGroup": "NOTEBOOK", "entityKey": "1"}],
        "",
    )
    assert after.next_fire_at is None


def test_a_dependency_trigger_is_made_in_the_form(operator):
    make_plan("1", actor=operator)
    client = client_for(operator)
    form = html(client.get("/schedules/new/")).replace("&quot;", '"')
    assert f'name="after" value="{NOTEBOOK_1}"' in form
    live = client.get("/schedules/preview/", {"cron_type": "NONE", "after": NOTEBOOK_1})
    assert "it runs after NOTEBOOK/1 succeeds, or when run now" in html(live)
    both = client.get(
        "/schedules/preview/", {**weekly_form(), "after": NOTEBOOK_1, "weekdays": "1"}
    )
    assert "And after NOTEBOOK/1 succeeds." in html(both)

    response = client.post("/schedules/new/", dependency_form(after=[NOTEBOOK_1]))
    assert response.status_code == 302
    plan = Plan.objects.get(entity_key="7")
    item = PlanItem.objects.get(plan=plan)
    assert item.trigger_type == "DEPENDENCY"
    assert item.trigger_by_jobs == [{"entityGroup": "NOTEBOOK", "entityKey": "1"}]
    page = html(client.get(f"/schedules/{plan.pk}/"))
    assert "after NOTEBOOK/1 succeeds" in page


def test_a_plan_keeps_a_trigger_and_a_dependency_cannot_be_made_up(operator):
    plan = make_plan("2", [dependency_item(("NOTEBOOK", "1"))], actor=operator)
    client = client_for(operator)
    # Neither a schedule nor a job to follow: refused (disabling is how a plan stops).
    refused = client.post(f"/schedules/{plan.pk}/edit/", dependency_form(entity_key="2"))
    assert refused.status_code == 400
    assert "Choose a schedule or jobs to run after; to stop the plan, disable it." in html(refused)
    assert client.post("/schedules/new/", dependency_form()).status_code == 400
    bogus = client.post("/schedules/new/", dependency_form(after=["NOTEBOOK/1"]))
    assert bogus.status_code == 400 and "Choose jobs from the list." in html(bogus)
    assert Plan.objects.count() == 1
    assert PlanItem.objects.get(plan=plan).trigger_by_jobs == [
        {"entityGroup": "NOTEBOOK", "entityKey": "1"}
    ]


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


# --- Live pages ----------------------------------------------------------------------------------


def _poll_url(page: str) -> str:
    found = re.search(r'id="schedule-poller" hidden hx-get="([^"]+)"', page)
    assert found, "no poller on the page"
    return found.group(1).replace("&amp;", "&")


def test_the_plan_page_and_the_list_follow_runs_fires_and_changes(plan, operator):
    from taskcenter.schedules import firing, verbs

    client = client_for(operator)
    detail_poll = _poll_url(html(client.get(f"/schedules/{plan.pk}/")))
    list_poll = _poll_url(html(client.get("/schedules/")))
    assert client.get(detail_poll).status_code == 204
    assert client.get(list_poll).status_code == 204

    # A fire starts a run: both pages answer again, with the run, and a new cursor.
    item = PlanItem.objects.get(plan=plan)
    with attempts_not_sent():
        fire = firing.fire_start(
            plan=plan, item=item, fire_time=datetime(2024, 1, 7, tzinfo=UTC), actor=operator
        )
    answer = client.get(detail_poll)
    assert answer.status_code == 200 and f'href="/tasks/{fire.task_id}/"' in html(answer)
    assert 'id="schedule-live"' in html(answer)
    detail_poll = _poll_url(html(answer))
    answer = client.get(list_poll)
    assert answer.status_code == 200 and f"#{fire.task_id}" in html(answer)
    list_poll = _poll_url(html(answer))

    # The run ends: its state comes without a reload.
    task = drive(TaskInstance.objects.get(pk=fire.task_id))
    assert task.status == "SUCCESSFUL"
    answer = client.get(detail_poll)
    assert answer.status_code == 200 and "Successful" in html(answer)

    # Another user disables the plan; a missed fire is recorded; the plan is deleted.
    verbs.plan_disable(plan_id=plan.pk, actor=None)
    answer = client.get(list_poll)
    assert answer.status_code == 200 and "Disabled" in html(answer)
    list_poll = _poll_url(html(answer))
    verbs.plan_delete(plan_id=plan.pk, actor=None)
    answer = client.get(list_poll)
    assert answer.status_code == 200 and "No plans yet" in html(answer)
    # The plan's page, still open, is sent to the list.
    gone = client.get(detail_poll, HTTP_HX_REQUEST="true")
    assert gone.headers["HX-Redirect"] == "/schedules/"
    assert f"Plan {plan.pk} was deleted." in html(client.get("/schedules/"))


def test_a_missed_fire_reaches_the_plan_page(plan, operator):
    from taskcenter.schedules import firing

    client = client_for(operator)
    poll = _poll_url(html(client.get(f"/schedules/{plan.pk}/")))
    item = PlanItem.objects.get(plan=plan)
    firing.fire_record_missed(
        plan=plan, item=item, fire_time=datetime(2024, 1, 14, tzinfo=UTC), reason="scheduler down"
    )
    answer = client.get(poll)
    assert answer.status_code == 200 and "scheduler down" in html(answer)
