"""A user scoped to one cluster, in a real headless Chromium against a live server: runs a
job on their cluster from the Jobs page and lands on its task page (which they may see),
and their schedules list shows the plans of their cluster only.

Set TASKCENTER_SCREENSHOTS=<dir> to save the scoped user's schedules list there, light
and dark (the documentation's come from docs/screenshots).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from taskcenter.schedules import inputs, verbs
from taskcenter.tasks.models import TaskInstance
from tests.accounts.conftest import scoped_operator
from tests.accounts.test_browser import shoot, sign_in
from tests.factories import NOTEBOOK_JOB, cron_item, make_cluster, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clusters(db):
    alpha = make_cluster("alpha", 1)
    make_tenant(alpha, "sales", 7)
    return alpha, make_cluster("bravo", 2)


def test_a_scoped_operator_runs_a_job_on_their_cluster_and_lands_on_its_page(
    live_server, page, clusters
):
    alpha, _ = clusters
    scoped_operator(alpha, "sam")
    sign_in(page, live_server, "sam")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="Scale out tenant units").click()
    placement = page.locator("#f-placement")
    # Only their cluster (and its tenant) is offered, and it is chosen already.
    options = placement.locator("option").all_inner_texts()
    assert options == ["alpha", "alpha / sales"]
    expect(placement).to_have_value(f"c{alpha.pk}")
    placement.select_option(label="alpha / sales")
    page.get_by_label("units").fill("2")
    shoot(page, "run-form-scoped.png")
    page.get_by_role("button", name="Run Scale out tenant units").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    task = TaskInstance.objects.get()
    assert task.cluster == alpha and task.tenant.name == "sales"
    assert page.url.endswith(f"/tasks/{task.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Scale out tenant units")
    expect(page.locator("body")).not_to_contain_text("does not exist")


def test_a_scoped_users_schedules_list_light_and_dark(live_server, browser, clusters):
    alpha, bravo = clusters
    scoped_operator(alpha, "sam")
    for key, cluster, zone in (
        ("11", alpha, "Asia/Shanghai"),
        ("12", alpha, "UTC"),
        ("21", bravo, "Europe/Berlin"),
        ("31", None, "UTC"),
    ):
        body = {
            "entityGroup": "NOTEBOOK",
            "entityKey": key,
            "planItems": [cron_item("0 30 6 * * ?", zone)],
            "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": int(key)}},
            **({"clusterId": cluster.pk} if cluster else {}),
        }
        verbs.plan_submit(actor=None, data=inputs.plan_input(body))
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = browser.new_context(viewport={"width": 1280, "height": 640}, color_scheme=scheme)
        page = context.new_page()
        try:
            sign_in(page, live_server, "sam")
            page.goto(f"{live_server.url}/schedules/")
            rows = page.locator(".table-schedules tbody tr")
            expect(rows).to_have_count(2)
            expect(page.locator(".table-schedules")).to_contain_text("alpha")
            expect(page.locator(".table-schedules")).not_to_contain_text("bravo")
            expect(page.locator(".table-schedules")).not_to_contain_text("no cluster")
            shoot(page, f"schedules-scoped{suffix}.png")
        finally:
            context.close()
