"""Typed parameters in a real headless Chromium: a definition-based job scheduled from its
Schedule button with the form generated from its declaration, where wrong values are
refused in place, all at once; and the Run form's typed fields.

Set TASKCENTER_SCREENSHOTS=<dir> to save the screenshots (docs/screenshots has them).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from taskcenter.schedules.models import Plan
from taskcenter.tasks.models import TaskInstance
from tests.accounts.test_browser import shoot, sign_in
from tests.factories import NOTEBOOK_JOB

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFRESH_JOB = "com.hengshi.nangaparbat.schedulejob.AppDatasetRefreshJob"

# Whether the text of the select's chosen option fits in the select (its arrow included).
SELECT_TEXT_FITS = """(select) => {
    const style = getComputedStyle(select);
    const context = document.createElement("canvas").getContext("2d");
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = select.options[select.selectedIndex].text;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return {text, needed: context.measureText(text).width + 20, room};
}"""


def test_schedule_a_definition_with_the_generated_form_and_wrong_values_refused_in_place(
    live_server, page, operator
):
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/jobs/")
    card = page.locator(".job-card", has=page.get_by_role("heading", name="Migrate tenant"))
    card.get_by_role("link", name="Schedule…").click()
    page.wait_for_url(re.compile(r"/schedules/new/\?job=Migrate"))
    expect(page.locator("#f-job_class")).to_have_value("Migrate tenant")
    expect(page.get_by_label("Entity group")).to_have_value("JOB")
    # The fields come from the declaration: a select for the step, numbers with bounds.
    expect(page.locator("#param-fail_step")).to_have_js_property("tagName", "SELECT")
    expect(page.locator("#param-fail_times")).to_have_attribute("type", "number")
    expect(page.locator("#param-fail_times")).to_have_attribute("max", "100")
    expect(page.locator("#param-step_seconds")).to_have_attribute("step", "any")
    page.locator("#param-fail_step").select_option("switch")
    page.locator("#param-fail_times").fill("500")
    page.locator("#param-step_seconds").fill("-3")
    page.locator("#f-hour").fill("4")
    page.get_by_role("button", name="Create plan").click()

    # Both wrong values are refused at once, each next to its own field.
    expect(page.locator("#param-fail_times-error")).to_have_text(
        "Should be less than or equal to 100."
    )
    expect(page.locator("#param-step_seconds-error")).to_have_text(
        "Should be greater than or equal to 0."
    )
    expect(page.locator("#param-fail_times")).to_have_value("500")
    expect(page.locator("#param-fail_step")).to_have_value("switch")
    assert not Plan.objects.exists()
    shoot(page, "schedule-form-migrate.png")

    page.locator("#param-fail_times").fill("2")
    page.locator("#param-step_seconds").fill("0.5")
    page.get_by_role("button", name="Create plan").click()
    page.wait_for_url(re.compile(r"/schedules/\d+/$"))
    plan = Plan.objects.get()
    assert plan.job_class == "Migrate tenant"
    assert plan.job_params == {"fail_step": "switch", "fail_times": 2, "step_seconds": 0.5}


def test_choosing_another_job_brings_its_fields_and_the_select_is_not_cut_off(
    live_server, page, operator
):
    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/schedules/new/")
    select = page.locator("#f-job_class")
    select.select_option("Back up cluster")
    expect(page.locator("#param-seconds")).to_have_value("600")
    expect(page.locator("#param-seconds")).to_have_attribute("min", "0")
    select.select_option(NOTEBOOK_JOB)
    expect(page.locator("#param-notebook")).to_be_visible()
    expect(page.locator("#param-seconds")).to_have_count(0)
    # Every job's name fits in the select, in a wide window and at 420 px.
    jobs = select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    assert REFRESH_JOB in jobs and "Rolling upgrade of observers" in jobs
    for width in (1280, 420):
        page.set_viewport_size({"width": width, "height": 860})
        for job in jobs:
            select.select_option(job)
            fit = select.evaluate(SELECT_TEXT_FITS)
            assert fit["needed"] <= fit["room"], f"the job select cuts off at {width} px: {fit}"


def test_the_run_form_is_typed_and_refuses_negative_seconds_in_place(
    live_server, browser, operator
):
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        try:
            sign_in(page, live_server, "operator")
            page.goto(f"{live_server.url}/jobs/Back%20up%20cluster/")
            seconds = page.get_by_label("Seconds")
            expect(seconds).to_have_attribute("type", "number")
            seconds.fill("-5")
            page.get_by_role("button", name="Run Back up cluster").click()
            expect(page.locator("#param-seconds-error")).to_have_text(
                "Should be greater than or equal to 0."
            )
            assert not TaskInstance.objects.exists()
            page.goto(f"{live_server.url}/jobs/Reinstall%20OCP%20agent/")
            expect(page.locator("#param-agent_token")).to_have_attribute("type", "password")
            page.goto(f"{live_server.url}/jobs/Migrate%20tenant/")
            page.locator("#param-fail_times").fill("-1")
            page.locator("#param-step_seconds").fill("99999")
            page.get_by_role("button", name="Run Migrate tenant").click()
            expect(page.locator(".field-error")).to_have_count(2)
            shoot(page, f"run-form{suffix}.png")
            page.goto(f"{live_server.url}/schedules/new/?job=Reinstall%20OCP%20agent")
            page.locator("#param-host").fill("two words")
            page.get_by_role("button", name="Create plan").click()
            expect(page.locator("#param-host-error")).to_contain_text("Must match the pattern")
            shoot(page, f"schedule-form-params{suffix}.png")
        finally:
            context.close()
