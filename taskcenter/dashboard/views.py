"""The operator dashboard: server-rendered pages and htmx partials.

Every view is wrapped by @dashboard_view, which sends anonymous users to the sign-in page,
requires view permission, and turns the domain errors (TaskNotFound, NotPermitted,
InvalidParameter, ...) into a clear page, or into a flash message for htmx requests
(taskcenter.core.http). Each view then calls the access helpers first (get_task_for_user /
get_operable_task_for_user), reads through the selectors, and leaves the words to
presenters and detail. Operations (confirm, run, refusals) are in dashboard.operations.

Live parts poll with a cursor and stop with htmx's stop-polling status: the task list's
running rows (task_list_live), the detail page's header and subtask states (task_live,
cursor = a digest of the states), and the selected subtask's log (subtask_log, cursor =
byte offset).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter
from taskcenter.core.http import (
    clean_query,
    flash_fragment,
    is_partial,
    page,
    paging,
    poll_response,
    results_fragment,
    signed_in_view,
)
from taskcenter.dashboard import dag, detail, presenters, subtask_list
from taskcenter.dashboard.forms import DEFAULT_PAGE_SIZE, AuditFilterForm, TaskFilterForm
from taskcenter.schedules import selectors as schedule_selectors
from taskcenter.tasks import diagnosis, selectors
from taskcenter.tasks.models import Operation, TaskInstance, TaskStatus

LOG_POLL_BYTES = 512 * 1024  # one poll sends at most this much; older output is skipped
LOG_DOWNLOAD_WINDOW = 1024 * 1024  # the download streams the log in windows of this size
LIVE_LIST_MAX_IDS = 200
AUDIT_PAGE_SIZE = 50
VIEWS = ("flow", "log")

dashboard_view = signed_in_view(access.require_view)


@require_GET
def index(request):
    return redirect("dashboard:task_list")


# --- Task list ---------------------------------------------------------------------------------


@dashboard_view
@require_GET
def task_list(request):
    visible = access.visible_tasks(request.user)
    params = request.GET

    def fetch(page_no: int, size: int) -> tuple[list[TaskInstance], int]:
        queryset = selectors.task_list(visible=visible, params=params)
        return selectors.task_page(queryset=queryset, page=page_no, size=size, with_subtasks=False)

    results = _page_of(params, default_size=DEFAULT_PAGE_SIZE, fetch=fetch)
    rows: list[TaskInstance] = results.rows

    choices = selectors.task_filter_choices()
    form = TaskFilterForm(
        params,
        clusters=choices["clusters"],
        hosts=choices["hosts"],
        creators=selectors.task_creators(visible=visible),
    )
    return _filtered_list(
        request,
        TASK_LIST,
        form,
        results,
        # The rows as ready strings (presenters.list_rows), where the audit shows models.
        shown_rows=presenters.list_rows(rows),
        any_tasks=results.total > 0 or visible.exists(),
        columns=presenters.sort_columns(params),
        sort_value=params.get("sort", ""),
        running_ids=",".join(str(t.pk) for t in rows if t.status == TaskStatus.RUNNING),
    )


@dataclass(frozen=True)
class FilteredList:
    """A list page with a filter bar whose results htmx swaps in place."""

    nav: str
    template: str
    results_template: str
    results_target: str  # the element id htmx asks for
    url_name: str


TASK_LIST = FilteredList(
    "tasks",
    "dashboard/task_list.html",
    "dashboard/_task_results.html",
    "task-results",
    "dashboard:task_list",
)
AUDIT_LIST = FilteredList(
    "audit",
    "dashboard/audit.html",
    "dashboard/_audit_results.html",
    "audit-results",
    "dashboard:audit",
)


class ListResults(NamedTuple):
    """One page of a filtered list, or its refusal (`error`, status 400)."""

    rows: list
    total: int
    page_no: int
    size: int
    error: str | None
    status: int


def _page_of(
    params, *, default_size: int, fetch: Callable[[int, int], tuple[list, int]]
) -> ListResults:
    """Read page and size, then fetch that page; a bad parameter gives an empty 400 page."""
    page_no, size = 1, default_size
    try:
        page_no, size = parse.page(params, default_size=default_size)
        rows, total = fetch(page_no, size)
    except InvalidParameter as exc:
        return ListResults([], 0, page_no, size, exc.message, 400)
    return ListResults(rows, total, page_no, size, None, 200)


def _filtered_list(
    request, kind: FilteredList, form, results: ListResults, *, shown_rows=None, **extra
) -> HttpResponse:
    """The whole page, or for htmx only its results (and the clean URL in the address bar)."""
    rows, total, page_no, size, error, status = results
    context = {
        "nav": kind.nav,
        "form": form,
        "rows": rows if shown_rows is None else shown_rows,
        "total": total,
        **paging(page_no=page_no, size=size, rows=rows, total=total),
        "error": error,
        "filtered": form.active_count > 0,
        "query": clean_query(request.GET),
        **extra,
    }
    if is_partial(request, kind.results_target):
        return results_fragment(
            request, kind.results_template, context, url_name=kind.url_name, status=status
        )
    return page(request, kind.template, context, status=status)


@dashboard_view
@require_GET
def task_list_live(request):
    """Fresh rows for the running tasks of a list page, and the top bar's counts.

    The rows go out of band (wrapped in <template>, as table rows must be); polling stops
    once none of them is running.
    """
    ids = parse.integer_list(request.GET, "ids", limit=LIVE_LIST_MAX_IDS)
    visible = access.visible_tasks(request.user)
    rows = selectors.task_rows_by_id(visible=visible, ids=ids)
    context = {
        "rows": presenters.list_rows(rows),
        "nav_counts": selectors.task_counts_by_status(visible=visible),
    }
    running = any(t.status == TaskStatus.RUNNING for t in rows)
    return poll_response(request, "dashboard/_task_rows_live.html", context, done=not running)


# --- Task detail -------------------------------------------------------------------------------


@dashboard_view
@require_GET
def task_detail(request, task_id: int):
    task = access.get_task_for_user(request.user, task_id)
    view = parse.choice(request.GET, "view", VIEWS, default="flow")
    subtask_id = parse.integer(request.GET, "subtask", minimum=1)
    status_filter = request.GET.get("show") or "all"
    if status_filter not in subtask_list.FILTERS:
        status_filter = "all"
    nodes = selectors.task_graph_nodes(task=task)
    detail_url = reverse("dashboard:task_detail", args=[task.pk])
    if is_partial(request, "subtask-more"):
        # The next chunk of the log view's list ("Show more").
        start = parse.integer(request.GET, "from", minimum=0, default=0)
        rows = subtask_list.filtered(nodes, status_filter)
        html = subtask_list.render_rows(
            rows,
            start=start,
            end=min(len(rows), start + subtask_list.CHUNK),
            selected_id=subtask_id,
            status_filter=status_filter,
            more_url=detail_url,
        )
        return HttpResponse(html)
    if subtask_id is None:
        current = presenters.current_subtask(nodes)
        subtask_id = current.pk if current else None
    selected = None
    if subtask_id is not None:
        selected = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    selected_id = selected.pk if selected else None
    context = detail.page_context(request, task, nodes, view=view, selected=selected)
    context["nav"] = "tasks"
    context["status_filter"] = status_filter
    # A context (a run a plan started) names its plan; the plan may have been deleted since.
    context["started_by"] = schedule_selectors.context_fire(task_id=task.pk)
    context["parameters"] = [(name, json.dumps(value)) for name, value in task.parameters.items()]
    if view == "flow":
        context["svg"] = dag.render_svg(
            dag.layout(nodes), selected_id=selected_id, link=f"{detail_url}?view=flow&subtask="
        )
    else:
        rows = subtask_list.filtered(nodes, status_filter)
        context["subtask_rows_html"] = subtask_list.render_rows(
            rows,
            start=0,
            end=subtask_list.chunk_end(rows, 0, selected_id),
            selected_id=selected_id,
            status_filter=status_filter,
            more_url=detail_url,
        )
        context["list_filters"] = subtask_list.filter_choices(nodes)
    return page(request, "dashboard/task_detail.html", context)


@dashboard_view
@require_GET
def task_live(request, task_id: int):
    """The detail page's poll: 204 while nothing changed, else the changed parts out of
    band (header, selected subtask, subtask states); polling stops once the task has
    finished."""
    task = access.get_task_for_user(request.user, task_id)
    view = parse.choice(request.GET, "view", VIEWS, default="flow")
    shown_status = request.GET.get("sst", "")
    states = selectors.task_subtask_states(task_id=task.pk)
    digest = presenters.digest(task, states)
    finished = task.status != TaskStatus.RUNNING
    if digest == request.GET.get("v", "") and not finished:
        return HttpResponse(status=204)
    subtask_id = parse.integer(request.GET, "subtask", minimum=1)
    selected = None
    if subtask_id is not None:
        selected = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    # A subtask that was idle and now runs again needs its log to start following.
    active = detail.ACTIVE
    restart_log = bool(
        selected and selected.status in active and shown_status and shown_status not in active
    )
    context = {
        "task": task,
        "view": view,
        "digest": digest,
        "restart_log": restart_log,
        **detail.states_context(request, task, states),
        **detail.panel_context(request, task, selected, with_log=restart_log),
    }
    return poll_response(request, "dashboard/_task_live.html", context, done=finished)


@dashboard_view
@require_GET
def subtask_panel(request, task_id: int, subtask_id: int):
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    view = parse.choice(request.GET, "view", VIEWS, default="flow")
    if not is_partial(request):
        url = reverse("dashboard:task_detail", args=[task.pk])
        return redirect(f"{url}?view={view}&subtask={subtask.pk}")
    context = {
        "task": task,
        "view": view,
        # An empty digest makes the next poll send everything, so nothing can be missed.
        "digest": "",
        **detail.panel_context(request, task, subtask),
        "seen": selectors.task_last_operation_id(task_id=task.pk),
    }
    return render(request, "dashboard/_subtask_panel_swap.html", context)


# --- Logs and downloads ------------------------------------------------------------------------


@dashboard_view
@require_GET
def subtask_log(request, task_id: int, subtask_id: int):
    """New log text from `offset`, appended by the page; polling stops when the subtask has
    finished."""
    subtask = access.get_subtask_for_user(request.user, task_id, subtask_id)
    task = subtask.task
    offset = parse.integer(request.GET, "offset", minimum=0, default=0)
    skipped = 0
    if subtask.log_size - offset > LOG_POLL_BYTES:
        # Far behind (a burst of output): skip to the last part instead of sending it all.
        skipped = subtask.log_size - LOG_POLL_BYTES - offset
        offset = subtask.log_size - LOG_POLL_BYTES
    piece = selectors.log_read(subtask=subtask, offset=offset)
    text = detail.from_next_line(piece.text) if skipped else piece.text
    if not text and not piece.finished:
        return HttpResponse(status=204)
    context = {
        "task": task,
        "subtask": subtask,
        "text": text,
        "skipped": skipped,
        "log": {"next_offset": piece.next_offset, "finished": piece.finished},
        "subtask_label": presenters.subtask_label(subtask.status, subtask.operation),
    }
    return poll_response(request, "dashboard/_log_chunk.html", context, done=piece.finished)


@dashboard_view
@require_GET
def subtask_log_download(request, task_id: int, subtask_id: int):
    """The whole log as a text file, streamed window by window (never all in memory)."""
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    end = subtask.log_size

    def windows():
        offset = 0
        while offset < end:
            piece = selectors.log_read(
                subtask=subtask, offset=offset, limit=min(LOG_DOWNLOAD_WINDOW, end - offset)
            )
            if piece.next_offset <= offset:
                break
            text = piece.text
            if piece.next_offset < end:
                # Cut at the last newline so that a character split by the window is read
                # whole by the next one (exact for UTF-8 logs).
                cut = text.rfind("\n")
                head = text[: cut + 1]
                if cut >= 0 and "\ufffd" not in head:
                    yield head.encode()
                    offset += len(head.encode())
                    continue
            yield text.encode()
            offset = piece.next_offset

    name = slugify(subtask.name) or "subtask"
    response = StreamingHttpResponse(windows(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="task-{task.pk}-subtask-{subtask.pk}-{name}.log"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@dashboard_view
@require_POST
def task_diagnosis(request, task_id: int):
    """The diagnosis zip (summary + one log per attempt)."""
    return diagnosis.diagnosis_response(access.get_task_for_user(request.user, task_id))


# --- Audit -------------------------------------------------------------------------------------


@dashboard_view
@require_GET
def audit(request):
    user = request.user
    params = request.GET

    def fetch(page_no: int, size: int) -> tuple[list[Operation], int]:
        queryset = selectors.operation_list(
            visible=access.visible_tasks(user),
            params=params,
            include_account_changes=access.can_manage_accounts(user),
        )
        return selectors.operation_page(queryset=queryset, page=page_no, size=size)

    results = _page_of(params, default_size=AUDIT_PAGE_SIZE, fetch=fetch)
    if results.error:
        results = results._replace(size=AUDIT_PAGE_SIZE)  # a refused page shows the default
    form = AuditFilterForm(params, actions=selectors.operation_actions(), users=[])
    return _filtered_list(request, AUDIT_LIST, form, results)


def csrf_failure(request, reason: str = ""):
    """CSRF refusals in the dashboard's words (settings.CSRF_FAILURE_VIEW)."""
    message = (
        "This form's security token is missing or has expired (it changes when you sign "
        "in again). Reload the page and repeat the action."
    )
    if request.htmx:
        return flash_fragment(request, {"level": "error", "message": message}, status=403)
    return render(
        request,
        "dashboard/error.html",
        {"status": 403, "title": "The request was refused", "message": message},
        status=403,
    )
