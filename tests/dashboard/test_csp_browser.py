"""The pages work under the Content-Security-Policy: a real Chromium walks an admin's day
(lists, a task with its graph and log, jobs, schedules, the admin pages with a dialog, the
API browser) and the browser reports no violation of the policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import sign_in
from tests.factories import failed_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_every_page_works_under_the_content_security_policy(live_server, page, admin):
    task = failed_task()
    console: list[str] = []
    page.on(
        "console",
        lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.add_init_script(WATCH_VIOLATIONS)
    sign_in(page, live_server, "admin")
    response = page.goto(f"{live_server.url}/tasks/")
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )
    expect(page.locator("table")).to_be_visible()
    seen: list[str] = []

    def visit(path: str) -> None:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        seen.extend(page.evaluate("window.__cspViolations"))

    # The task page: its graph (js/dag.js) and a subtask's log panel (js/log.js), by htmx.
    visit(f"/tasks/{task.pk}/")
    page.locator("#dag-svg [data-sid]").first.click()
    page.wait_for_load_state("networkidle")
    seen.extend(page.evaluate("window.__cspViolations"))
    for path in (
        "/audit/",
        "/jobs/",
        f"/jobs/{task.definition_id}/",
        "/schedules/",
        "/schedules/new/",
        "/fleet/",
        "/manage/users/",
        "/account/",
    ):
        visit(path)
    visit("/manage/keys/")
    page.get_by_role("button", name="New access key").click()  # a dialog (js/accounts.js)
    expect(page.locator("dialog[open]")).to_be_visible()
    # The API browser: Swagger UI from files, its start-up script included.
    visit("/api/docs")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    seen.extend(page.evaluate("window.__cspViolations"))
    assert not seen and not console, (seen, console)
