"""The Jobs and Schedules pages in a real headless Chromium, against a live server, the
scheduler's tick and a real Celery worker: build a weekly plan, watch its preview, make
it fire, and start a job from the Jobs page and watch it finish.

Set TASKCENTER_SCREENSHOTS=<dir> to save screenshots of these pages there (the
documentation's come from docs/screenshots).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from taskcenter.schedules import firing, inputs, scheduler, verbs
from taskcenter.schedules.models import Fire, FireOutcome, Plan, PlanItem
from taskcenter.tasks.models import TaskInstance
from tests.accounts.test_browser import shoot
from tests.conftest import sign_in, wait_for
from tests.factories import NOTEBOOK_JOB, PIPELINE_JOB, cron_item, dependency_item, start

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

JOBS = {"NOTEBOOK": NOTEBOOK_JOB, "PIPELINE": PIPELINE_JOB}


@pytest.fixture(autouse=True)
def sends_recorded():
    """The real broker: a worker runs what these pages start (overrides the API tests'
    recording stand-in that tests/schedules/conftest.py applies)."""
    return None


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def tick_until(predicate, timeout: float = 20.0):
    """Play the scheduler (run_scheduler ticks about once a second) until predicate()."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the plan did not fire in time"
        scheduler.tick(now=timezone.now())
        time.sleep(0.3)
    return predicate()


def test_weekly_plan_with_the_builder_previews_saves_and_fires(worker, live_server, page, operator):
    sign_in(page, live_server, "operator")
    nav(page, "Schedules").click()
    expect(page.get_by_role("heading", name="No plans yet")).to_be_visible()
    page.get_by_role("link", name="Create the first plan").click()

    page.get_by_label("Entity group").fill("NOTEBOOK")
    page.get_by_label("Entity key").fill("42")
    page.locator("#f-job_class").select_option(NOTEBOOK_JOB)
    page.locator("#param-notebook").fill("42")
    page.get_by_label("Repeat").select_option("WEEKLY")
    page.get_by_label("Mon", exact=True).check()
    page.locator("#f-hour").fill("0")
    page.locator("#f-minute").fill("15")
    page.get_by_label("Time zone").fill("GMT+08:00")
    # The preview follows the builder before anything is saved.
    expect(page.locator("#cron-expression")).to_have_text("0 15 0 ? * 1,2")
    expect(page.locator("#cron-words")).to_have_text("Every Sunday and Monday at 00:15 (GMT+08:00)")
    expect(page.locator("#fire-times li")).to_have_count(5)
    first = page.locator("#fire-times li").first
    expect(first).to_contain_text(re.compile(r"(Sun|Mon) \d{4}-\d\d-\d\d 00:15:00"))
    expect(first).to_contain_text("UTC+08:00")
    # Only the builder's inputs for a weekly plan are shown.
    expect(page.get_by_label("Day of the month")).to_be_hidden()
    expect(page.get_by_label("Quartz cron expression")).to_be_hidden()
    shoot(page, "schedule-form.png")

    # An expression Quartz refuses is refused with its reason, live and on save.
    page.get_by_label("Repeat").select_option("CRON")
    page.get_by_label("Quartz cron expression").fill("0 0 12 * * MON")
    expect(page.locator("#cron-error")).to_contain_text("day-of-week")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator("#f-cron_desc-error")).to_contain_text("day-of-week")
    assert not Plan.objects.exists()

    page.get_by_label("Repeat").select_option("WEEKLY")
    expect(page.locator("#fire-times li")).to_have_count(5)
    page.get_by_role("button", name="Create plan").click()
    page.wait_for_url(re.compile(r"/schedules/\d+/$"))
    expect(page.get_by_text("every Sunday and Monday at 00:15 (GMT+08:00)")).to_be_visible()
    plan = Plan.objects.get()
    assert PlanItem.objects.get(plan=plan).cron_desc == "0 15 0 ? * 1,2"

    # A short test schedule: every 2 seconds, typed as a cron expression.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Repeat").select_option("CRON")
    page.get_by_label("Quartz cron expression").fill("*/2 * * * * ?")
    expect(page.locator("#cron-words")).to_have_text("Every 2 seconds (GMT+08:00)")
    page.get_by_role("button", name="Save plan").click()
    page.wait_for_url(re.compile(rf"/schedules/{plan.pk}/$"))

    fired = Fire.objects.filter(plan=plan, outcome=FireOutcome.STARTED)
    tick_until(fired.exists)
    task_id = fired.first().task_id
    wait_for(lambda: TaskInstance.objects.get(pk=task_id).status == "SUCCESSFUL", timeout=60)
    # Stop it firing, through the page (confirmed in a dialog).
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("dialog[open]")).to_contain_text("Disable this plan?")
    page.locator("dialog[open] #confirm-submit").click()
    expect(page.locator("#plan-enabled")).to_have_text("Disabled")

    run_link = page.locator("#plan-runs").get_by_role("link", name=re.compile(rf"#{task_id}\b"))
    expect(run_link).to_be_visible()
    expect(page.locator("#plan-runs")).to_contain_text("Successful")
    run_link.click()
    expect(page.locator("#started-by")).to_contain_text("Started by plan notebook42")
    expect(page.locator("#task-parameters")).to_contain_text("notebook")


def test_start_a_job_from_the_jobs_page_with_a_parameter_and_watch_it_finish(
    worker, live_server, page, operator
):
    sign_in(page, live_server, "operator")
    nav(page, "Jobs").click()
    expect(page.get_by_role("heading", name="Scale out tenant units")).to_be_visible()
    page.get_by_role("link", name="Scale out tenant units").click()
    page.get_by_label("units").fill("0")
    page.get_by_role("button", name="Run Scale out tenant units").click()
    expect(page.locator("#param-units-error")).to_have_text("Should be greater than or equal to 1.")
    assert not TaskInstance.objects.exists()

    page.get_by_label("units").fill("2")
    page.get_by_role("button", name="Run Scale out tenant units").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    task = TaskInstance.objects.get()
    assert task.parameters["units"] == 2 and task.creator == operator
    expect(page.locator("#task-parameters")).to_contain_text("2")
    expect(page.locator("#task-status")).to_have_text(re.compile("Successful"), timeout=60_000)


def test_pages_at_a_glance_light_dark_and_narrow(worker, live_server, browser, operator):
    """A few plans with runs, a missed fire and a dependency: the pages in the light and
    dark themes, and at 420 px without sideways scrolling."""

    def plan(group: str, key: str, item: dict):
        param = group.lower()
        body = {
            "entityGroup": group,
            "entityKey": key,
            "planItems": [item],
            "execDetail": {"jobClass": JOBS[group], "jobParams": {param: int(key)}},
        }
        return verbs.plan_submit(actor=operator, data=inputs.plan_input(body)).plan

    weekly = plan("NOTEBOOK", "11", cron_item("0 15 0 ? * 1", "GMT+08:00"))
    plan("NOTEBOOK", "12", cron_item("0 30 6 * * ?", "Asia/Shanghai"))
    plan("PIPELINE", "3", cron_item("0 0 2 L * ?", "Europe/Berlin"))
    plan("NOTEBOOK", "14", dependency_item(("PIPELINE", "3")))
    item = PlanItem.objects.get(plan=weekly)
    for day in (17, 24):
        fire = firing.fire_start(
            plan=weekly, item=item, fire_time=datetime(2026, 11, day, 16, 15, tzinfo=UTC)
        )
        task_id = fire.task_id
        wait_for(lambda t=task_id: TaskInstance.objects.get(pk=t).status == "SUCCESSFUL")
    firing.fire_record_missed(
        plan=weekly,
        item=item,
        fire_time=datetime(2026, 11, 10, 16, 15, tzinfo=UTC),
        reason="the scheduler was down; the misfire policy made up a later time",
    )
    start("Scale out tenant units", creator=operator, units=2)

    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        page = context.new_page()
        try:
            sign_in(page, live_server, "operator")
            page.goto(f"{live_server.url}/schedules/")
            expect(page.locator(".table-schedules tbody tr")).to_have_count(4)
            expect(page.locator(".table-schedules")).to_contain_text("after PIPELINE/3 succeeds")
            shoot(page, f"schedules{suffix}.png")
            page.goto(f"{live_server.url}/schedules/{weekly.pk}/")
            expect(page.locator("#plan-runs tbody tr")).to_have_count(2)
            expect(page.locator("#plan-skipped")).to_contain_text("Missed")
            shoot(page, f"schedule-detail{suffix}.png")
            page.goto(f"{live_server.url}/jobs/")
            shoot(page, f"jobs{suffix}.png")
            page.set_viewport_size({"width": 420, "height": 860})
            for path in ("/jobs/", "/schedules/", "/schedules/new/", f"/schedules/{weekly.pk}/"):
                page.goto(f"{live_server.url}{path}")
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= 420, f"{path} scrolls sideways at 420 px ({width})"
            page.goto(f"{live_server.url}/schedules/")
            shoot(page, f"schedules-narrow{suffix}.png")
        finally:
            context.close()


def test_a_dependency_plan_built_in_the_form_is_edited_without_gaining_a_trigger(
    live_server, browser, operator
):
    verbs.plan_submit(
        actor=operator,
        data=inputs.plan_input(
            {
                "entityGroup": "PIPELINE",
                "entityKey": "3",
                "planItems": [cron_item("0 0 2 * * ?", "Asia/Shanghai")],
                "execDetail": {"jobClass": PIPELINE_JOB, "jobParams": {"pipeline": 3}},
            }
        ),
    )
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            sign_in(page, live_server, "operator")
            page.goto(f"{live_server.url}/schedules/new/")
            page.get_by_label("Entity group").fill("NOTEBOOK")
            page.get_by_label("Entity key").fill(f"7{len(suffix)}")
            page.locator("#f-job_class").select_option(NOTEBOOK_JOB)
            page.locator("#param-notebook").fill("7")
            page.get_by_label("Repeat").select_option("NONE")
            # No schedule: no zone to choose; the plan in words follows what is checked.
            expect(page.get_by_label("Time zone")).to_be_hidden()
            expect(page.locator("#cron-words")).to_have_text(
                "Not on a schedule: it runs only when run now."
            )
            page.get_by_label(re.compile("PIPELINE/3")).check()
            expect(page.locator("#cron-words")).to_have_text(
                "Not on a schedule: it runs after PIPELINE/3 succeeds, or when run now."
            )
            expect(page.locator("#f-after")).to_contain_text("PIPELINE/3 pipeline3")
            shoot(page, f"schedule-form-dependency{suffix}.png")
            if scheme == "dark":
                continue
            page.get_by_role("button", name="Create plan").click()
            page.wait_for_url(re.compile(r"/schedules/\d+/$"))
            plan = Plan.objects.get(entity_key="70")
            (item,) = PlanItem.objects.filter(plan=plan)
            assert item.trigger_type == "DEPENDENCY"
            assert item.trigger_by_jobs == [{"entityGroup": "PIPELINE", "entityKey": "3"}]
            expect(page.locator(".task-facts")).to_contain_text("after PIPELINE/3 succeeds")

            # Edit: only the retries change; the trigger stays the one it was, alone.
            page.get_by_role("link", name="Edit").click()
            expect(page.get_by_label("Repeat")).to_have_value("NONE")
            expect(page.get_by_label(re.compile("PIPELINE/3"))).to_be_checked()
            page.get_by_label("Retries per step").fill("1")
            page.get_by_role("button", name="Save plan").click()
            page.wait_for_url(re.compile(rf"/schedules/{plan.pk}/$"))
            (after,) = PlanItem.objects.filter(plan=plan)
            assert (after.pk, after.trigger_type, after.trigger_by_jobs, after.cron_desc) == (
                item.pk,
                "DEPENDENCY",
                item.trigger_by_jobs,
                "",
            )
            assert Plan.objects.get(pk=plan.pk).retry_times == 1
            expect(page.locator(".task-facts")).not_to_contain_text("Sunday")
        finally:
            context.close()


def test_the_plan_page_follows_a_run_to_its_end_without_reloading(
    worker, live_server, page, operator
):
    body = {
        "entityGroup": "NOTEBOOK",
        "entityKey": "5",
        "planItems": [cron_item("0 0 3 1 1 ?", "UTC")],
        "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 5}},
    }
    plan = verbs.plan_submit(actor=operator, data=inputs.plan_input(body)).plan
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/schedules/{plan.pk}/")
    expect(page.locator("#runs-title")).to_be_visible()
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    page.evaluate("() => { window.sameDocument = true; }")

    # Someone else starts a run (the scheduler, another user): the page shows it, then
    # its end, by itself.
    fire = firing.fire_start(
        plan=plan, item=PlanItem.objects.get(plan=plan), fire_time=timezone.now(), actor=None
    )
    run = page.locator("#plan-runs").get_by_role("link", name=re.compile(rf"#{fire.task_id}\b"))
    expect(run).to_be_visible(timeout=5_000)
    wait_for(lambda: TaskInstance.objects.get(pk=fire.task_id).status == "SUCCESSFUL", timeout=60)
    expect(page.locator("#plan-runs tbody tr").first).to_contain_text("Successful", timeout=5_000)
    expect(page.locator(".task-facts")).to_contain_text("Successful")
    assert page.evaluate("() => window.sameDocument === true"), "the page was reloaded"
