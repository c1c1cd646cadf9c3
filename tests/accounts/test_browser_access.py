"""Access as people meet it, in a real headless Chromium: a role made on the role page
"may retry and cancel" lets its user see and operate tasks; a cluster-scoped user's filter
menus hold only their cluster; the badge names the roles; the admin pages fit a 420 px
window.

Set TASKCENTER_SCREENSHOTS=<dir> to save screenshots of the narrow admin pages there.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from taskcenter.accounts import roles, services
from tests.accounts.conftest import scoped_operator
from tests.accounts.test_browser import shoot, sign_out
from tests.conftest import sign_in
from tests.factories import failed_task_on, make_host, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_a_role_made_as_the_role_page_suggests_sees_and_operates(page, live_server, clusters):
    make_user("root", roles.ADMIN)
    task = failed_task_on(clusters[0], "Alpha resize")

    # The admin makes "may retry and cancel" by ticking just those two boxes.
    sign_in(page, live_server, "root")
    page.goto(f"{live_server.url}/manage/roles/")
    page.get_by_role("button", name="New role").click()
    dialog = page.locator("#role-create")
    expect(dialog.get_by_text("Each of these includes seeing tasks")).to_be_visible()
    dialog.get_by_label("Name").fill("Retry and cancel")
    expect(dialog.get_by_label("Can view task instance")).not_to_be_checked()
    dialog.get_by_label("Can retry tasks and subtasks").check()
    expect(dialog.get_by_label("Can view task instance")).to_be_checked()  # ticked with it
    dialog.get_by_label("Can cancel subtasks").check()
    dialog.get_by_role("button", name="Create role").click()
    expect(page.get_by_text("Role Retry and cancel was created.")).to_be_visible()
    expect(page.get_by_label("Can view task instance")).to_be_checked()
    role_id = int(re.search(r"/manage/roles/(\d+)/", page.url).group(1))
    rita = make_user("rita", password="Rita-passw0rd")
    services.user_set_roles(user_id=rita.pk, grants={role_id: []})
    sign_out(page)

    # rita sees the list and the task, her role's name in the top bar, and retries.
    sign_in(page, live_server, "rita", "Rita-passw0rd")
    expect(page.get_by_role("heading", name="You do not have permission")).to_have_count(0)
    expect(page.get_by_test_id("role-badge")).to_have_text("Retry and cancel")
    expect(page.get_by_role("link", name="Alpha resize")).to_be_visible()
    shoot(page, "custom-role-list.png")
    page.get_by_role("link", name="Alpha resize").click()
    expect(page.locator('[data-action="rollback"]')).to_have_count(0)
    page.locator('[data-action="retry"]').click()
    page.locator("dialog[open]").get_by_role("button", name="Retry task").click()
    expect(page.get_by_text("Retry started")).to_be_visible()
    assert task.audit_entries.filter(action="RETRY", actor_name="rita").exists()


def test_a_user_without_a_role_is_not_sent_back_to_the_same_refusal(page, live_server, db):
    make_user("nobody")
    page.goto(f"{live_server.url}/login/?next=/tasks/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("Pa55word!long")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="You do not have permission")).to_be_visible()
    expect(page.get_by_test_id("role-badge")).to_have_text("No role")
    shoot(page, "no-role-refusal.png")
    page.locator(".error-actions a").first.click()
    expect(page.get_by_role("heading", name="You do not have permission")).to_have_count(0)
    assert page.url.endswith("/account/")


def test_scoped_users_menus_hold_only_their_cluster(page, live_server, clusters):
    alpha, bravo = clusters
    failed_task_on(alpha, "Alpha resize")
    on_b = failed_task_on(bravo, "Bravo migrate")
    make_host("10.0.1.1", alpha)
    on_b.hosts.add(make_host("10.0.2.1", bravo))
    user = scoped_operator(alpha)
    user.set_password("Scope-passw0rd")
    user.save()

    sign_in(page, live_server, user.username, "Scope-passw0rd")
    expect(page.get_by_test_id("role-badge")).to_have_text(roles.MANAGER)
    clusters_menu = page.locator('select[name="clusterId"] option')
    hosts_menu = page.locator('select[name="hostId"] option')
    assert clusters_menu.all_text_contents() == ["Any cluster", "alpha"]
    assert hosts_menu.all_text_contents() == ["Any host", "10.0.1.1"]
    page.locator('select[name="clusterId"]').focus()
    shoot(page, "scoped-list.png")
    answer = page.evaluate(
        "async () => (await (await fetch('/api/v2/tasks/instances/filters')).json()).data"
    )
    assert [c["name"] for c in answer["clusters"]] == ["alpha"]
    assert [h["name"] for h in answer["hosts"]] == ["10.0.1.1"]


ADMIN_PAGES = ["/manage/users/", "/manage/users/{user}/", "/manage/users/new/"]
ADMIN_PAGES += ["/manage/roles/", "/manage/roles/{role}/", "/manage/keys/", "/account/"]
ADMIN_PAGES += ["/manage/audit/"]


# Which elements reach past the window's right edge (to say what overflows, when one does).
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
    && ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 0.5))
  .slice(0, 5)
  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_admin_pages_fit_a_420px_window(browser, live_server, clusters, scheme):
    admin = make_user("root", roles.ADMIN)
    scoped = scoped_operator(clusters[0], "a-rather-long-user-name-for-a-phone")
    services.access_key_create(owner=scoped, description="deploy pipeline of the night shift")
    role = services.role_create(
        name="Retry and cancel", permissions=["tasks.retry_taskinstance"], actor=admin
    )
    context = browser.new_context(viewport={"width": 420, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        sign_in(page, live_server, "root")
        overflowing = {}
        for path in ADMIN_PAGES:
            url = path.format(user=scoped.pk, role=role.pk)
            page.goto(f"{live_server.url}{url}")
            widths = page.evaluate(
                "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
            )
            if widths[0] > widths[1]:
                overflowing[url] = [*widths, page.evaluate(WIDE_ELEMENTS)]
            name = url.strip("/").replace("/", "-").replace(str(scoped.pk), "user")
            shoot(page, f"narrow-{name.replace(str(role.pk), 'role')}-{scheme}.png")
        assert not overflowing, f"wider than the window (scrollWidth, innerWidth): {overflowing}"
    finally:
        context.close()


def test_the_account_page_is_reached_from_the_top_bar_at_420px(browser, live_server, clusters):
    # The user's name is the only link to their account page: it stays on a phone's width,
    # shortened, and leads there.
    scoped_operator(clusters[0], "a-rather-long-user-name-for-a-phone")
    context = browser.new_context(viewport={"width": 420, "height": 800})
    try:
        page = context.new_page()
        sign_in(page, live_server, "a-rather-long-user-name-for-a-phone")
        link = page.locator(".topbar a.user-name")
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 420 and box["width"] >= 40, box
        shoot(page, "narrow-top-bar.png")
        link.click()
        page.wait_for_url(re.compile(r"/account/$"))
        widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
    finally:
        context.close()
