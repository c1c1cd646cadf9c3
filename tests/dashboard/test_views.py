"""The dashboard's pages and partials, for every role, and what bad input gets back."""

from __future__ import annotations

import html as htmllib
import io
import json
import re
import zipfile

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import AuditEntry, SubtaskInstance, TaskInstance
from tests.conftest import client_for
from tests.factories import drive, grant_scoped, make_cluster, start, subtask_named

HX = {"HTTP_HX_REQUEST": "true"}


def hx(target: str | None = None) -> dict:
    headers = dict(HX)
    if target:
        headers["HTTP_HX_TARGET"] = target
    return headers


def page_urls(task: TaskInstance) -> dict[str, str]:
    sub = subtask_named(task, "Copy tenant data")
    return {
        "list": reverse("dashboard:task_list"),
        "detail_flow": reverse("dashboard:task_detail", args=[task.pk]),
        "detail_log": reverse("dashboard:task_detail", args=[task.pk])
        + f"?view=log&subtask={sub.pk}",
        "audit": reverse("dashboard:audit"),
        "log_download": reverse("dashboard:subtask_log_download", args=[task.pk, sub.pk]),
        "log_poll": reverse("dashboard:subtask_log", args=[task.pk, sub.pk]) + "?offset=0",
        "live": reverse("dashboard:task_live", args=[task.pk]),
        "list_live": reverse("dashboard:task_list_live") + f"?shown={task.pk}",
    }


# --- Sign-in -----------------------------------------------------------------------------------


def test_login_page_renders_and_signs_in(operator):
    client = Client()
    response = client.get(reverse("dashboard:login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content
    response = client.post(
        reverse("dashboard:login"), {"username": "operator", "password": "Pa55word!long"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:task_list")


def test_wrong_password_says_so(operator):
    response = Client().post(
        reverse("dashboard:login"), {"username": "operator", "password": "nope"}
    )
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_sign_out_is_a_post(operator):
    client = client_for(operator)
    assert client.get(reverse("dashboard:logout")).status_code == 405
    response = client.post(reverse("dashboard:logout"))
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:login")
    assert client.get(reverse("dashboard:task_list")).status_code == 302


def test_root_redirects_to_the_task_list(operator):
    response = client_for(operator).get("/")
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:task_list")


# --- Every page x role --------------------------------------------------------------------------

PAGES = [
    "list",
    "detail_flow",
    "detail_log",
    "audit",
    "log_download",
    "log_poll",
    "live",
    "list_live",
]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_sign_in(failed_task, name):
    url = page_urls(failed_task)[name]
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("dashboard:login") + "?next=")


@pytest.mark.parametrize("name", ["live", "log_poll", "list_live"])
def test_anonymous_htmx_poll_is_told_to_sign_in(failed_task, name):
    response = Client().get(page_urls(failed_task)[name], **HX)
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("dashboard:login"))


@pytest.mark.parametrize("name", PAGES)
def test_user_without_a_role_is_refused_with_a_clear_page(failed_task, nobody, name):
    response = client_for(nobody).get(page_urls(failed_task)[name])
    assert response.status_code == 403
    assert b"permission to view tasks" in response.content


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin"])
@pytest.mark.parametrize("name", ["list", "detail_flow", "detail_log", "audit"])
def test_pages_render_for_every_role(failed_task, persona, name, request):
    user = request.getfixturevalue(persona)
    response = client_for(user).get(page_urls(failed_task)[name])
    assert response.status_code == 200
    html = response.content.decode()
    assert f">{user.get_username()}<" in html  # the top bar names the user
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "htmx-2.min.js" in html


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin"])
def test_partials_and_downloads_work_for_every_role(failed_task, persona, request):
    client = client_for(request.getfixturevalue(persona))
    urls = page_urls(failed_task)
    download = client.get(urls["log_download"])
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/plain")
    assert b"Copy tenant data failed on purpose" in b"".join(download.streaming_content)
    assert client.get(urls["log_poll"], **HX).status_code == 286  # finished: stop polling
    # Without a cursor the live parts send everything (they keep polling: others may act).
    assert client.get(urls["live"], **HX).status_code == 200
    assert client.get(urls["list_live"], **HX).status_code == 200
    zip_response = client.post(reverse("dashboard:task_diagnosis", args=[failed_task.pk]))
    assert zip_response.status_code == 200
    assert zip_response["Content-Type"] == "application/zip"


def test_top_bar_counts_link_to_filtered_lists(failed_task, running_task, viewer):
    html = client_for(viewer).get(reverse("dashboard:task_list")).content.decode()
    bar = re.search(r'<div class="topbar-counts".*?</div>', html, re.S).group(0)
    assert "?status=RUNNING" in bar and "?status=FAILED" in bar
    assert re.search(r"<b>1</b> running", bar) and re.search(r"<b>1</b> failed", bar)
    assert "VIEWER" in html.upper()


def test_admin_link_only_for_admins(staff_admin, operator, failed_task):
    assert b'href="/admin/"' in client_for(staff_admin).get("/tasks/").content
    assert b'href="/admin/"' not in client_for(operator).get("/tasks/").content


# --- Operation buttons -------------------------------------------------------------------------


def buttons(html: str) -> dict[str, str]:
    """data-action -> the whole <button> tag, for the operation buttons on a page."""
    return {
        m.group(1): m.group(0) for m in re.finditer(r'<button[^>]*data-action="(\w+)"[^>]*>', html)
    }


def test_viewer_sees_no_operation_buttons(failed_task, viewer):
    sub = subtask_named(failed_task, "Copy tenant data")
    html = (
        client_for(viewer)
        .get(reverse("dashboard:task_detail", args=[failed_task.pk]) + f"?subtask={sub.pk}")
        .content.decode()
    )
    assert buttons(html) == {}
    assert "Download diagnosis" in html  # reading is allowed


def test_operator_gets_task_and_subtask_buttons_on_a_failed_task(failed_task, operator):
    sub = subtask_named(failed_task, "Copy tenant data")
    html = (
        client_for(operator)
        .get(reverse("dashboard:task_detail", args=[failed_task.pk]) + f"?subtask={sub.pk}")
        .content.decode()
    )
    found = buttons(html)
    assert set(found) == {"retry", "rollback", "subtask_retry", "skip"}
    assert all("aria-disabled" not in tag for tag in found.values())
    assert "hx-get" in found["retry"] and 'hx-target="#dialog-slot"' in found["retry"]


def test_disabled_buttons_say_why(running_task, operator):
    sub = subtask_named(running_task, "Back up data files")
    html = (
        client_for(operator)
        .get(reverse("dashboard:task_detail", args=[running_task.pk]) + f"?subtask={sub.pk}")
        .content.decode()
    )
    found = buttons(html)
    assert 'aria-disabled="true"' in found["retry"]
    assert "The task is running" in found["retry"]
    assert 'aria-disabled="true"' in found["rollback"]
    assert "aria-disabled" not in found["cancel"]  # a running subtask can be canceled


def test_rollback_disabled_when_prohibited(db, operator):
    task = drive(start(creator=operator), fail={"Switch traffic to the target"})
    html = (
        client_for(operator).get(reverse("dashboard:task_detail", args=[task.pk])).content.decode()
    )
    found = buttons(html)
    assert 'aria-disabled="true"' in found["rollback"]
    assert "Rollback is prohibited" in found["rollback"]
    assert "aria-disabled" not in found["retry"]


def test_no_task_buttons_once_successful(done_task, operator):
    html = (
        client_for(operator)
        .get(reverse("dashboard:task_detail", args=[done_task.pk]))
        .content.decode()
    )
    assert "retry" not in buttons(html) and "rollback" not in buttons(html)


def test_rolled_back_task_reads_rolled_back(db, operator):
    task = drive(start(creator=operator), fail={"Copy tenant data"})
    verbs.task_rollback(task_id=task.pk, actor=operator, reason="window closed")
    task = drive(task)
    assert task.is_rolled_back
    client = client_for(operator)
    detail = client.get(reverse("dashboard:task_detail", args=[task.pk])).content.decode()
    assert re.search(r'id="task-status">.*?Rolled back', detail, re.S)
    listing = client.get(reverse("dashboard:task_list")).content.decode()
    assert "Rolled back" in listing


# --- Confirmations and operations ------------------------------------------------------------


def confirm_url(task, op, subtask=None, seen=0):
    url = reverse("dashboard:confirm", args=[task.pk]) + f"?op={op}&seen={seen}"
    return url + (f"&subtask={subtask.pk}" if subtask else "")


def test_confirm_dialog_asks_for_a_reason_for_skip_and_rollback(failed_task, operator):
    client = client_for(operator)
    sub = subtask_named(failed_task, "Copy tenant data")
    skip = client.get(confirm_url(failed_task, "skip", sub), **hx("dialog-slot")).content.decode()
    assert "<dialog" in skip and "required" in skip and "Skip “Copy tenant data”?" in skip
    retry = client.get(confirm_url(failed_task, "retry"), **hx("dialog-slot")).content.decode()
    assert "<dialog" in retry and "(optional" in retry
    assert 'name="reason"' in retry and "required" not in retry.split("<textarea")[1].split(">")[0]


def test_confirm_for_an_operation_the_state_does_not_allow_is_a_flash(running_task, operator):
    response = client_for(operator).get(confirm_url(running_task, "retry"), **hx("dialog-slot"))
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#flash"
    assert b"The task is running" in response.content


def test_viewer_cannot_open_a_confirmation(failed_task, viewer):
    response = client_for(viewer).get(confirm_url(failed_task, "retry"), **hx("dialog-slot"))
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#flash"


@pytest.mark.parametrize(
    ("op", "subtask_name"),
    [
        ("retry", None),
        ("rollback", None),
        ("retry", "Copy tenant data"),
        ("skip", "Copy tenant data"),
        ("cancel", "Copy tenant data"),
    ],
)
def test_viewer_direct_posts_are_refused_and_change_nothing(failed_task, viewer, op, subtask_name):
    before = AuditEntry.objects.count()
    if subtask_name:
        sub = subtask_named(failed_task, subtask_name)
        url = reverse("dashboard:subtask_operate", args=[failed_task.pk, sub.pk, op])
    else:
        url = reverse("dashboard:task_operate", args=[failed_task.pk, op])
    for headers in ({}, HX):
        response = client_for(viewer).post(url, {"reason": "let me"}, **headers)
        assert response.status_code == 403
    assert selectors.task_get(task_id=failed_task.pk).status == "FAILED"
    assert AuditEntry.objects.count() == before


def test_operator_retries_from_the_dialog_and_the_live_poll_shows_it(failed_task, operator):
    """The answer is the flash and the taskChanged event; the page's live poll, which
    listens for it, renders the header, the panel and the states (their one renderer)."""
    sub = subtask_named(failed_task, "Copy tenant data")
    client = client_for(operator)
    page = client.get(
        reverse("dashboard:task_detail", args=[failed_task.pk]) + f"?subtask={sub.pk}"
    ).content.decode()
    poller = re.search(r'<div id="live-poller"[^>]*>', page).group(0)
    assert "taskChanged from:body" in poller
    response = client.post(
        reverse("dashboard:task_operate", args=[failed_task.pk, "retry"]),
        {"reason": "transient"},
        **hx("flash"),
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == '{"taskChanged": {}}'
    html = response.content.decode()
    assert "Retry started" in html
    assert "hx-swap-oob" not in html  # no region but the flash
    task = selectors.task_get(task_id=failed_task.pk)
    assert (task.status, task.operation) == ("RUNNING", "RETRY")
    audit = AuditEntry.objects.filter(task=task, action="RETRY").get()
    assert (audit.actor, audit.reason) == (operator, "transient")
    poll_url = htmllib.unescape(re.search(r'hx-get="([^"]+)"', poller).group(1))
    live = client.get(poll_url, **hx()).content.decode()
    assert (
        'id="task-header" class="task-header card" aria-labelledby="task-title" hx-swap-oob="true"'
        in live
    )
    assert "Running (retry)" in live
    assert 'id="subtask-panel"' in live and 'id="subtask-states"' in live
    assert re.search(r'id="live-poller"[^>]*hx-get=', live)  # polling goes on


def test_a_refused_verb_also_tells_the_page_to_look_again(running_task, operator):
    """Refused (someone else changed the task first), the page still shows the state now."""
    response = client_for(operator).post(
        reverse("dashboard:task_operate", args=[running_task.pk, "retry"]), {}, **hx("flash")
    )
    assert response.status_code == 200 and b"not possible now" in response.content
    assert response["HX-Trigger"] == '{"taskChanged": {}}'


def test_a_race_with_another_operator_reads_already_retried_by(failed_task, operator, admin):
    seen = selectors.task_last_audit_entry_id(task_id=failed_task.pk)
    url = reverse("dashboard:task_operate", args=[failed_task.pk, "retry"])
    first = client_for(admin).post(url, {"seen": seen}, **hx("flash"))
    assert b"Retry started" in first.content
    second = client_for(operator).post(url, {"seen": seen}, **hx("flash"))
    assert second.status_code == 200  # a message in the page, not an error page
    assert "admin already retried this task" in second.content.decode()
    assert "not supported" in second.content.decode()  # the service's own words, too
    assert AuditEntry.objects.filter(task=failed_task, action="RETRY").count() == 1


def test_skip_needs_a_reason_and_records_it(failed_task, operator):
    sub = subtask_named(failed_task, "Copy tenant data")
    url = reverse("dashboard:subtask_operate", args=[failed_task.pk, sub.pk, "skip"])
    client = client_for(operator)
    refused = client.post(url, {"reason": " "}, **hx("flash"))
    assert refused.status_code == 400 and b"A reason is required" in refused.content
    assert SubtaskInstance.objects.get(pk=sub.pk).status == "FAILED"
    done = client.post(url, {"reason": "copied by hand"}, **hx("flash"))
    assert done.status_code == 200 and b"was skipped" in done.content
    assert AuditEntry.objects.get(task=failed_task, action="SKIP").reason == "copied by hand"


def test_rollback_needs_a_reason(failed_task, operator):
    url = reverse("dashboard:task_operate", args=[failed_task.pk, "rollback"])
    client = client_for(operator)
    assert client.post(url, {}, **hx("flash")).status_code == 400
    response = client.post(url, {"reason": "window closed"}, **hx("flash"))
    assert b"Rollback started" in response.content
    assert AuditEntry.objects.get(task=failed_task, action="ROLLBACK").reason == "window closed"


def test_cancel_a_running_subtask(running_task, operator):
    sub = subtask_named(running_task, "Back up data files")
    response = client_for(operator).post(
        reverse("dashboard:subtask_operate", args=[running_task.pk, sub.pk, "cancel"]),
        {"reason": "wrong window"},
        **hx("flash"),
    )
    assert b"Cancel requested" in response.content
    assert SubtaskInstance.objects.get(pk=sub.pk).status == "CANCELING"


def test_subtask_retry_without_htmx_redirects_with_a_message(failed_task, operator):
    sub = subtask_named(failed_task, "Copy tenant data")
    client = client_for(operator)
    response = client.post(
        reverse("dashboard:subtask_operate", args=[failed_task.pk, sub.pk, "retry"])
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "“Copy tenant data” runs again." in page


def test_operations_need_csrf(failed_task, operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    url = reverse("dashboard:task_operate", args=[failed_task.pk, "retry"])
    plain = client.post(url)
    assert plain.status_code == 403 and b"security token" in plain.content
    htmx = client.post(url, **HX)
    assert htmx.status_code == 403 and htmx["HX-Retarget"] == "#flash"
    assert selectors.task_get(task_id=failed_task.pk).status == "FAILED"
    page = client.get(reverse("dashboard:task_detail", args=[failed_task.pk])).content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    ok = client.post(url, HTTP_X_CSRFTOKEN=token, **HX)
    assert ok.status_code == 200 and b"Retry started" in ok.content


def test_operations_are_posts_only(failed_task, operator):
    url = reverse("dashboard:task_operate", args=[failed_task.pk, "retry"])
    assert client_for(operator).get(url).status_code == 405


# --- Task list ---------------------------------------------------------------------------------


def test_list_filters_by_status_and_keeps_them_in_the_form(failed_task, done_task, viewer):
    client = client_for(viewer)
    html = client.get(reverse("dashboard:task_list") + "?status=FAILED").content.decode()
    assert f'id="task-row-{failed_task.pk}"' in html
    assert f'id="task-row-{done_task.pk}"' not in html
    assert re.search(r'<input[^>]*value="FAILED"[^>]*checked', html)
    both = client.get(reverse("dashboard:task_list") + "?status=FAILED,SUCCESSFUL").content
    assert f'id="task-row-{done_task.pk}"'.encode() in both


def test_list_partial_for_htmx_pushes_a_clean_url(failed_task, viewer):
    response = client_for(viewer).get(
        reverse("dashboard:task_list") + "?name=migrate&type=&clusterId=&status=FAILED",
        **hx("task-results"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="task-results"')
    assert "<html" not in html
    assert response["HX-Push-Url"] == "/tasks/?name=migrate&status=FAILED"


def test_list_sorts_and_pages(db, viewer):
    tasks = [start("Reinstall OCP agent", host=f"10.0.0.{i}") for i in range(5)]
    client = client_for(viewer)
    html = client.get("/tasks/?size=2&sort=id,asc").content.decode()
    rows = re.findall(r'id="task-row-(\d+)"', html)
    assert rows == [str(tasks[0].pk), str(tasks[1].pk)]
    assert "Page <b>1</b> of 3" in html
    assert 'aria-sort="ascending"' in html
    page3 = client.get("/tasks/?size=2&sort=id,asc&page=3").content.decode()
    assert re.findall(r'id="task-row-(\d+)"', page3) == [str(tasks[4].pk)]
    past = client.get("/tasks/?size=2&page=9").content.decode()
    assert "Page 9 is past the end" in past


def test_list_rows_show_progress_creator_and_cluster(failed_task, viewer):
    html = client_for(viewer).get("/tasks/").content.decode()
    row = re.search(rf'<tr id="task-row-{failed_task.pk}".*?</tr>', html, re.S).group(0)
    assert "2/5" in row and "operator" in row and "Failed" in row
    assert 'role="progressbar"' in row and 'aria-valuenow="2"' in row


def test_list_empty_and_no_match_states_explain_themselves(db, viewer):
    client = client_for(viewer)
    assert b"No tasks yet" in client.get("/tasks/").content
    start("Reinstall OCP agent")
    html = client.get("/tasks/?name=nothing-like-this").content
    assert b"No task matches these filters" in html and b"Clear all filters" in html


def _poller_url(html: str, poller: str) -> str:
    found = re.search(rf'id="{poller}" hidden(?: hx-swap-oob="true")? hx-get="([^"]+)"', html)
    assert found, f"no {poller} in the page"
    return htmllib.unescape(found.group(1))


def test_list_poll_is_204_until_a_visible_task_changes(running_task, failed_task, viewer):
    client = client_for(viewer)
    html = client.get("/tasks/?status=FAILED").content.decode()
    poll = _poller_url(html, "list-poller")  # a list of ended tasks polls too
    assert "shown=" in poll and "status=FAILED" in poll
    assert client.get(poll, **HX).status_code == 204
    # A change to a task the page shows: that row alone, out of band, and the counts.
    verbs.task_retry(task_id=failed_task.pk)
    body = client.get(poll, **HX).content.decode()
    assert 'id="task-results"' in body  # the retried task left the FAILED filter: rebuilt
    assert 'id="nav-counts" hx-swap-oob="true"' in body
    # Everything else changed since: the new cursor answers 204 again.
    again = _poller_url(body, "list-poller")
    assert client.get(again, **HX).status_code == 204


def test_list_poll_sends_only_the_changed_rows_of_the_page(running_task, failed_task, viewer):
    client = client_for(viewer)
    poll = _poller_url(client.get("/tasks/").content.decode(), "list-poller")
    backup = subtask_named(running_task, "Back up data files")
    services.attempt_finish(subtask_id=backup.pk, attempt=backup.attempt, succeeded=True)
    body = client.get(poll, **HX).content.decode()
    assert f'<template><tr id="task-row-{running_task.pk}" data-status="RUNNING"' in body
    assert 'id="task-results"' not in body  # rows patched, the page not rebuilt
    assert client.get(_poller_url(body, "list-poller"), **HX).status_code == 204


def test_list_poll_rebuilds_the_page_for_a_new_task(failed_task, viewer):
    client = client_for(viewer)
    poll = _poller_url(client.get("/tasks/?sort=id,desc").content.decode(), "list-poller")
    new = start("Reinstall OCP agent")
    body = client.get(poll, **HX).content.decode()
    assert 'id="task-results" class="results" aria-label="Task list" hx-swap-oob="true"' in body
    assert f'id="task-row-{new.pk}"' in body and f'id="task-row-{failed_task.pk}"' in body
    assert "sort=id%2Cdesc" in _poller_url(body, "list-poller")  # the sort stays


def test_list_poll_leaves_the_page_alone_for_a_change_on_a_later_page(
    failed_task, running_task, viewer
):
    client = client_for(viewer)
    html = client.get("/tasks/?size=1").content.decode()
    assert f'id="task-row-{running_task.pk}"' in html  # the newest; failed_task is on page 2
    poll = _poller_url(html, "list-poller")
    verbs.task_retry(task_id=failed_task.pk)
    body = client.get(poll, **HX).content.decode()
    assert 'aria-label="Task list"' not in body  # not rebuilt
    assert f"task-row-{failed_task.pk}" not in body
    assert "<b>2</b> running" in body  # the top bar still follows


def test_top_bar_counts_poll_on_other_pages(failed_task, viewer):
    client = client_for(viewer)
    html = client.get("/audit/").content.decode()
    found = re.search(r'id="nav-counts" hx-get="([^"]+)"', html)
    assert found, "the top bar polls"
    poll = htmllib.unescape(found.group(1))
    assert client.get(poll, **HX).status_code == 204
    verbs.task_retry(task_id=failed_task.pk)
    body = client.get(poll, **HX).content.decode()
    assert "<b>1</b> running" in body and "<b>0</b> failed" in body


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("status=BOGUS", "Invalid parameter 'status'"),
        ("page=abc", "Invalid parameter 'page'"),
        ("page=0", "Invalid parameter 'page'"),
        ("size=99999", "Invalid parameter 'size'"),
        ("sort=nope,asc", "Invalid parameter 'sort'"),
        ("sort=id,sideways", "direction must be asc or desc"),
        ("createdFrom=yesterday", "Invalid parameter 'createdFrom'"),
        ("clusterId=x", "Invalid parameter 'clusterId'"),
        ("type=WEEKLY", "Invalid parameter 'type'"),
    ],
)
def test_malformed_list_filters_give_a_clear_400_page(failed_task, viewer, query, words):
    response = client_for(viewer).get(f"/tasks/?{query}")
    assert response.status_code == 400
    html = htmllib.unescape(response.content.decode())
    assert "These filters cannot be applied" in html and words in html
    assert 'id="task-filters"' in html  # the form stays, to correct the value


# --- Task detail, live updates and logs ----------------------------------------------------------


def test_detail_shows_header_graph_and_selected_subtask(failed_task, viewer):
    html = client_for(viewer).get(f"/tasks/{failed_task.pk}/").content.decode()
    for words in ("Migrate tenant", "Failed", "Execute", "operator", "2</b> of 5 subtasks"):
        assert words in html
    assert html.count('class="dag-node') - html.count('class="dag-nodes') == 5
    assert 'marker-end="url(#dag-arrow)"' in html
    copy = subtask_named(failed_task, "Copy tenant data")
    # With nothing chosen, the failed subtask is selected (current progress).
    assert (
        f'class="dag-node is-selected" href="/tasks/{failed_task.pk}/?view=flow&subtask={copy.pk}"'
        in html
    )
    assert "Copy tenant data failed on purpose" in html  # its log is shown


def test_log_view_lists_subtasks_with_status_runs_and_duration(failed_task, viewer):
    html = client_for(viewer).get(f"/tasks/{failed_task.pk}/?view=log").content.decode()
    assert html.count('class="subtask-row') == 5
    assert "Pending" in html and "Successful" in html
    failed_only = client_for(viewer).get(f"/tasks/{failed_task.pk}/?view=log&show=failed")
    assert failed_only.content.decode().count('class="subtask-row') == 1


def test_subtask_panel_partial_and_its_full_page_fallback(failed_task, viewer):
    sub = subtask_named(failed_task, "Take a snapshot")
    url = reverse("dashboard:subtask_panel", args=[failed_task.pk, sub.pk]) + "?view=log"
    client = client_for(viewer)
    partial = client.get(url, **hx("subtask-panel")).content.decode()
    assert partial.lstrip().startswith('<section id="subtask-panel"')
    assert "Take a snapshot" in partial and 'id="live-poller" hidden hx-swap-oob="true"' in partial
    full = client.get(url)
    assert full.status_code == 302
    assert full["Location"] == f"/tasks/{failed_task.pk}/?view=log&subtask={sub.pk}"


def test_live_poll_is_204_while_nothing_changes_and_sends_changes_out_of_band(running_task, viewer):
    client = client_for(viewer)
    html = client.get(f"/tasks/{running_task.pk}/").content.decode()
    poll = (
        re.search(r'id="live-poller" hidden hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    )
    assert client.get(poll, **HX).status_code == 204
    backup = subtask_named(running_task, "Back up data files")
    services.attempt_finish(subtask_id=backup.pk, attempt=backup.attempt, succeeded=True)
    changed = client.get(poll, **HX)
    assert changed.status_code == 200
    body = changed.content.decode()
    assert 'id="task-header"' in body and 'hx-swap-oob="true"' in body
    states = json.loads(
        re.search(r'id="subtask-states" hidden hx-swap-oob="true">(.*?)</div>', body, re.S)
        .group(1)
        .replace("&quot;", '"')
    )
    assert backup.pk in states["groups"]["SUCCESSFUL|EXECUTE"]["ids"]
    drive(running_task)  # the last step runs; the task is done
    ended = client.get(poll, **HX)
    assert ended.status_code == 200 and "Successful" in ended.content.decode()
    # It keeps polling (someone may act on the ended task), with one row read per poll.
    after = _poller_url(ended.content.decode(), "live-poller")
    assert client.get(after, **HX).status_code == 204


def test_an_ended_task_page_sees_a_retry_by_someone_else(failed_task, viewer, operator):
    client = client_for(viewer)
    html = client.get(f"/tasks/{failed_task.pk}/").content.decode()
    poll = _poller_url(html, "live-poller")
    assert client.get(poll, **HX).status_code == 204
    verbs.task_retry(task_id=failed_task.pk, actor=operator)
    body = client.get(poll, **HX).content.decode()
    assert 'id="task-header"' in body and "Running" in body


def test_log_tail_appends_from_the_offset_and_stops_when_finished(running_task, viewer):
    sub = subtask_named(running_task, "Back up data files")
    client = client_for(viewer)
    url = reverse("dashboard:subtask_log", args=[running_task.pk, sub.pk])
    size = SubtaskInstance.objects.get(pk=sub.pk).log_size
    assert client.get(f"{url}?offset={size}", **HX).status_code == 204  # nothing new yet
    services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=b"copied block 1 of 3\n")
    response = client.get(f"{url}?offset={size}", **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<span class="log-chunk">copied block 1 of 3\n</span>' in body
    assert "working on" not in body  # only the new part, never the whole log again
    new_size = SubtaskInstance.objects.get(pk=sub.pk).log_size
    assert f"offset={new_size}" in body and 'id="log-poller" hidden hx-swap-oob="true"' in body
    services.attempt_finish(subtask_id=sub.pk, attempt=sub.attempt, succeeded=True, log=b"done\n")
    final = client.get(f"{url}?offset={new_size}", **HX)
    assert final.status_code == 286
    assert "done\n" in final.content.decode()
    assert "hx-get" not in re.search(
        r'<div id="log-poller".*?</div>', final.content.decode()
    ).group(0)


def test_an_idle_log_poll_costs_one_statement_and_renders_nothing(running_task, viewer):
    """Every open tail polls each second: with nothing new the answer is an empty 204. The
    first poll checks the session, the user, the viewer's grants and the subtask in full;
    the polls every second after it take log_poll's shortcut: one statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sub = subtask_named(running_task, "Back up data files")
    client = client_for(viewer)
    url = reverse("dashboard:subtask_log", args=[running_task.pk, sub.pk])
    size = SubtaskInstance.objects.get(pk=sub.pk).log_size
    with CaptureQueriesContext(connection) as first:
        client.get(f"{url}?offset={size}", **HX)
    with CaptureQueriesContext(connection) as statements:
        answer = client.get(f"{url}?offset={size}", **HX)
    assert answer.status_code == 204 and answer.content == b""
    assert len(first) <= 6, [q["sql"][:80] for q in first]
    assert len(statements) == 1, [q["sql"][:80] for q in statements]


def test_log_view_shows_only_the_last_part_of_a_huge_log(running_task, viewer, monkeypatch):
    from taskcenter.dashboard import detail

    monkeypatch.setattr(detail, "LOG_VIEW_BYTES", 4096)
    sub = subtask_named(running_task, "Back up data files")
    for i in range(1000):
        services.log_append(subtask_id=sub.pk, attempt=sub.attempt, data=f"line {i:04d}\n".encode())
    html = client_for(viewer).get(f"/tasks/{running_task.pk}/?subtask={sub.pk}").content.decode()
    assert "line 0999" in html and "line 0001" not in html
    assert "Download the whole log" in html


def test_log_download_streams_every_byte_across_windows(running_task, viewer, monkeypatch):
    from taskcenter.dashboard import views

    monkeypatch.setattr(views, "LOG_DOWNLOAD_WINDOW", 1000)
    sub = subtask_named(running_task, "Back up data files")
    for i in range(300):
        services.log_append(
            subtask_id=sub.pk, attempt=sub.attempt, data=f"zeile {i} — ünïcødé ✓\n".encode()
        )
    sub.refresh_from_db()
    response = client_for(viewer).get(
        reverse("dashboard:subtask_log_download", args=[running_task.pk, sub.pk])
    )
    assert response.streaming
    assert 'attachment; filename="task-' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    expected = b"".join(bytes(c.data) for c in sub.chunks.order_by("offset"))
    assert body == expected and len(body) == sub.log_size


def test_diagnosis_zip_has_summary_in_topological_order_and_logs_per_attempt(failed_task, operator):
    verbs.task_retry(task_id=failed_task.pk, actor=operator)
    task = drive(failed_task)
    response = client_for(operator).post(reverse("dashboard:task_diagnosis", args=[task.pk]))
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    summary = json.loads(bundle.read("summary.json"))
    assert summary["id"] == task.pk and summary["status"] == "SUCCESSFUL"
    names = [s["name"] for s in summary["subtasks"]]
    assert names[0] == "Pre-check source and target" and names[-1] == "Switch traffic to the target"
    position = {s["id"]: s["order"] for s in summary["subtasks"]}
    for sub in summary["subtasks"]:
        assert all(position[u] < sub["order"] for u in sub["upstreams"])
    copy = next(s for s in summary["subtasks"] if s["name"] == "Copy tenant data")
    logs = [n for n in bundle.namelist() if f"-{copy['id']}-" in n]
    assert len(logs) == 2 and all(n.endswith(".log") for n in logs)  # two attempts
    operations = json.loads(bundle.read("operations.json"))
    assert [o["action"] for o in operations][:2] == ["START", "FINISH"]


# --- Bad input on the detail pages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/tasks/999999/", 404, "The 999999 task does not exist."),
        ("/tasks/abc/", 404, "Page not found"),
        ("/tasks/{task}/?view=graph", 400, "Invalid parameter 'view'"),
        ("/tasks/{task}/?subtask=abc", 400, "Invalid parameter 'subtask'"),
        ("/tasks/{task}/?subtask=999999", 404, "The 999999 subtask does not exist"),
        ("/tasks/{task}/subtasks/999999/log/?offset=0", 404, "does not exist"),
        ("/tasks/{task}/subtasks/{sub}/log/?offset=-5", 400, "Invalid parameter 'offset'"),
        ("/tasks/{task}/subtasks/{sub}/log/?offset=lots", 400, "Invalid parameter 'offset'"),
        ("/tasks/{task}/confirm/?op=explode", 400, "Invalid parameter 'op'"),
        ("/tasks/{task}/confirm/?op=skip", 400, "Parameter 'subtask' is required"),
        ("/tasks/live/?shown=1,two", 400, "Invalid parameter 'shown'"),
        ("/audit/?task=abc", 400, "Invalid parameter 'task'"),
        ("/audit/?createdTo=soon", 400, "Invalid parameter 'createdTo'"),
    ],
)
def test_bad_input_gets_a_clear_page_not_a_500(failed_task, operator, url, status, words):
    sub = subtask_named(failed_task, "Copy tenant data")
    response = client_for(operator).get(url.format(task=failed_task.pk, sub=sub.pk))
    assert response.status_code == status
    assert words in htmllib.unescape(response.content.decode())


def test_unknown_operations_are_404(failed_task, operator):
    client = client_for(operator)
    sub = subtask_named(failed_task, "Copy tenant data")
    assert client.post(f"/tasks/{failed_task.pk}/explode/").status_code == 404
    assert client.post(f"/tasks/{failed_task.pk}/subtasks/{sub.pk}/explode/").status_code == 404
    assert client.post("/tasks/999999/retry/").status_code == 404


def test_bad_input_in_htmx_requests_is_a_flash(failed_task, operator):
    response = client_for(operator).get("/tasks/999999/live/", **HX)
    assert response.status_code == 404
    assert response["HX-Retarget"] == "#flash"
    assert b"does not exist" in response.content


# --- Audit -------------------------------------------------------------------------------------


def test_audit_lists_who_what_target_change_and_reason(failed_task, operator):
    sub = subtask_named(failed_task, "Copy tenant data")
    verbs.subtask_skip(
        task_id=failed_task.pk, subtask_id=sub.pk, actor=operator, reason="done by hand"
    )
    html = client_for(operator).get("/audit/").content.decode()
    row = re.search(r"<tr>(?:(?!</tr>).)*SKIP.*?</tr>", html, re.S).group(0)
    assert "operator" in row and "done by hand" in row and "Copy tenant data" in row
    assert "FAILED" in row and "SUCCESSFUL" in row


def test_audit_filters_by_user_action_task_and_time(failed_task, done_task, operator, admin):
    verbs.task_retry(task_id=failed_task.pk, actor=admin, reason="again")
    client = client_for(operator)
    by_user = client.get("/audit/?user=admin").content.decode()
    assert "again" in by_user and by_user.count("<tr>") == 1 + 1  # header + one row
    by_action = client.get("/audit/?action=START").content.decode()
    assert by_action.count("action-start") == 2
    by_task = client.get(f"/audit/?task={done_task.pk}").content.decode()
    assert f"#{failed_task.pk} " not in by_task and f"#{done_task.pk} " in by_task
    future = client.get("/audit/?createdFrom=2999-01-01T00:00").content.decode()
    assert "No operation matches these filters" in future


def test_detail_pages_use_as_many_queries_for_1000_subtasks_as_for_10(operator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = start("Benchmark fan-out", creator=operator, width=8)
    large = start("Benchmark fan-out", creator=operator, width=998)
    client = client_for(operator)
    client.get("/tasks/")  # the session and the permission lookups are not what is measured

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured), response.content.decode()

    # The clock stands still while the pairs are counted: a briefly cached answer (the
    # top bar's counts, the reader's time zone) that expired between the two requests of
    # a pair on a slow machine would count one query more for one of them.
    with time_machine.travel(timezone.now(), tick=False):
        for view in ("flow", "log"):
            few, _ = queries(f"/tasks/{small.pk}/?view={view}")
            many, html = queries(f"/tasks/{large.pk}/?view={view}")
            assert many == few, f"{view} view: {few} queries for 10 subtasks, {many} for 1000"
            assert many < 40
    _, html = queries(f"/tasks/{large.pk}/")
    assert html.count('class="dag-tile') == 998


def test_log_view_list_comes_in_chunks_and_shows_more_on_demand(db, viewer, monkeypatch):
    from taskcenter.dashboard import subtask_list

    monkeypatch.setattr(subtask_list, "CHUNK", 10)
    task = start("Benchmark fan-out", width=30)
    client = client_for(viewer)
    first_sub = task.subtasks.order_by("series_id").first()
    html = client.get(f"/tasks/{task.pk}/?view=log&subtask={first_sub.pk}").content.decode()
    assert html.count('class="subtask-row') == 10
    more = re.search(r'hx-get="([^"]+)" hx-target="#subtask-more"', html).group(1)
    assert "Show 10 more of 22" in html
    chunk = client.get(more.replace("&amp;", "&"), **hx("subtask-more")).content.decode()
    assert chunk.count('class="subtask-row') == 10 and "Show 10 more of 12" in chunk
    assert "<html" not in chunk
    # A selected subtask far down the list is always in the first chunk.
    last = task.subtasks.order_by("series_id").last()
    html = client.get(f"/tasks/{task.pk}/?view=log&subtask={last.pk}").content.decode()
    assert f'class="subtask-row is-selected" aria-current="true" data-sid="{last.pk}"' in html


def test_a_role_scoped_to_one_cluster_sees_and_operates_only_that_cluster(db):

    from taskcenter.accounts import roles
    from tests.factories import make_user

    east = make_cluster("east", 1)
    west = make_cluster("west", 2)
    mine = drive(
        verbs.task_start(definition_name="Migrate tenant", cluster=east),
        fail={"Copy tenant data"},
    )
    theirs = drive(
        verbs.task_start(definition_name="Migrate tenant", cluster=west),
        fail={"Copy tenant data"},
    )
    user = make_user("east-operator", roles.MANAGER)
    grant_scoped(user, roles.MANAGER, east)
    client = client_for(user)
    listing = client.get("/tasks/").content.decode()
    assert f'id="task-row-{mine.pk}"' in listing and f'id="task-row-{theirs.pk}"' not in listing
    assert client.get(f"/tasks/{theirs.pk}/").status_code == 404
    assert buttons(client.get(f"/tasks/{mine.pk}/").content.decode())
    refused = client.post(f"/tasks/{theirs.pk}/retry/", **HX)
    assert refused.status_code == 404
    assert selectors.task_get(task_id=theirs.pk).status == "FAILED"


def test_live_polls_of_a_scoped_user_see_only_their_clusters(db):

    from taskcenter.accounts import roles
    from tests.factories import failed_task_on, make_user

    a = make_cluster("A", 1)
    b = make_cluster("B", 2)
    on_a, on_b = failed_task_on(a, "on A"), failed_task_on(b, "on B")
    user = make_user("scoped", roles.VIEWER)
    grant_scoped(user, roles.VIEWER, a)
    client = client_for(user)
    html = client.get("/tasks/").content.decode()
    assert "<b>1</b> failed" in html
    poll = _poller_url(html, "list-poller")
    counts = htmllib.unescape(
        re.search(
            r'id="nav-counts" hx-get="([^"]+)"', client.get("/audit/").content.decode()
        ).group(1)
    )
    # Another cluster's task changes: nothing to say to this user.
    verbs.task_retry(task_id=on_b.pk)
    assert client.get(poll, **HX).status_code == 204
    assert client.get(counts, **HX).status_code == 204
    # Their own: the row, and counts from their scope only.
    verbs.task_retry(task_id=on_a.pk)
    body = client.get(poll, **HX).content.decode()
    assert f'id="task-row-{on_a.pk}"' in body and f"task-row-{on_b.pk}" not in body
    assert "<b>1</b> running" in body and "<b>0</b> failed" in body
