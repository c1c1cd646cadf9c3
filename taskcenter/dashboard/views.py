"""The operator dashboard: server-rendered pages and htmx partials.

Every view is wrapped by @dashboard_view, which sends anonymous users to the sign-in page,
requires view permission, and turns the domain errors (TaskNotFound, NotPermitted,
InvalidParameter, ...) into a clear page, or into a flash message for htmx requests
(taskcenter.core.http). Each view then calls the access helpers first (get_task_for_user /
get_operable_task_for_user), reads through the selectors, and leaves the words to
presenters and detail. The verbs (confirm, do, refusals) are in dashboard.verb_views.

Live parts poll with a cursor and answer 204 while nothing changed: the task list
(task_list_live) and the top bar's counts (nav_counts_live), cursor = the latest change
stamp of the visible tasks (selectors.task_changes); the detail page's header and subtask
states (task_live, cursor = the task's stamp and a digest of the states); the selected
subtask's log (subtask_log, cursor = byte offset, stopping with htmx's stop-polling status
once the subtask has finished). Polling pauses while the tab is hidden (the triggers'
visibilityState filter) and polls at once when it is shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.auth.views import LoginView
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
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
    results_fragment,
    signed_in_view,
)
from taskcenter.dashboard import bulk, dag, detail, log_poll, presenters, subtask_list, timeline
from taskcenter.dashboard.forms import DEFAULT_PAGE_SIZE, AuditFilterForm, TaskFilterForm
from taskcenter.schedules import selectors as schedule_selectors
from taskcenter.tasks import diagnosis, selectors, verbs
from taskcenter.tasks.models import AuditEntry, TaskInstance, TaskStatus

LOG_DOWNLOAD_WINDOW = 1024 * 1024  # the download streams the log in windows of this size
LIVE_LIST_MAX_IDS = 200
LIVE_LIST_KEYS = ("c", "shown", "p")  # the live poll's own parameters, next to the list's
MOVING_SORTS = {"status", "startTime", "finishTime"}  # a change can move a row
AUDIT_PAGE_SIZE = 50
VIEWS = ("flow", "log", "timeline")

dashboard_view = signed_in_view(access.require_view)


@require_GET
def index(request):
    return redirect(home_url(request.user))


def home_url(user) -> str:
    """Home, and where signing in leads: the task list; for a user who may not see tasks,
    the pages they may use instead of a refusal."""
    if not user.is_authenticated or access.can_view(user):
        return reverse("dashboard:task_list")
    return reverse("accounts:manage" if access.can_manage_accounts(user) else "accounts:account")


class SignInView(LoginView):
    """Django's sign-in; without a `next`, it leads home (home_url), not to a refusal."""

    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return home_url(self.request.user)


# --- Task list ---------------------------------------------------------------------------------


@dashboard_view
@require_GET
def task_list(request):
    visible = access.visible_tasks(request.user)
    params = request.GET
    results, extra = _task_results(visible, params, clusters=access.visible_clusters(request.user))
    extra["bulk_ops"] = _bulk_ops(request.user)
    choices = selectors.task_filter_choices(clusters=access.visible_clusters(request.user))
    form = TaskFilterForm(
        params,
        clusters=choices["clusters"],
        hosts=choices["hosts"],
        creators=selectors.task_creators(visible=visible),
    )
    return _filtered_list(request, TASK_LIST, form, results, **extra)


def _bulk_ops(user) -> list[dict]:
    """The bulk operations the list offers `user`: those whose permission they hold
    somewhere (the dry run tells task by task)."""
    return [
        {"key": operation, "title": bulk.TITLES[operation], "danger": verbs.VERBS[key].danger}
        for operation, key in verbs.BULK_VERBS.items()
        if access.can_operate(user, key)
    ]


def _task_results(
    visible, params, *, clusters: frozenset[int] | None, cursor: str | None = None
) -> tuple[ListResults, dict]:
    """One page of the task list and what its results part shows, with the URL of its
    live poll (which carries the change cursor and the ids of the rows shown). `clusters`
    is the scope of `visible` (access.visible_clusters), for the total's TaskCount."""
    if cursor is None:
        # Read before the rows: a change between the two is sent again, never missed.
        cursor = selectors.task_changes(visible=visible).cursor

    def fetch(page_no: int, size: int) -> tuple[list[TaskInstance], int]:
        queryset, tally = selectors.task_list_with_tally(
            visible=visible, clusters=clusters, params=params
        )
        return selectors.task_page(
            queryset=queryset, page=page_no, size=size, with_subtasks=False, tally=tally
        )

    results = _page_of(params, default_size=DEFAULT_PAGE_SIZE, fetch=fetch)
    rows: list[TaskInstance] = results.rows
    live_url = ""
    if not results.error:
        query = clean_query(params, drop=LIVE_LIST_KEYS)
        shown_tasks = rows[:LIVE_LIST_MAX_IDS]
        progress = {
            t.pk: getattr(t, "subtask_successful", 0)
            for t in shown_tasks
            if t.status == TaskStatus.RUNNING
        }
        live_url = (
            f"{reverse('dashboard:task_list_live')}?{query}{'&' if query else ''}"
            + urlencode(
                {
                    "shown": ",".join(str(t.pk) for t in shown_tasks),
                    "c": cursor,
                    "p": presenters.progress_digest(progress),
                }
            )
        )
    return results, {
        # The rows as ready strings (presenters.list_rows), where the audit shows models.
        "shown_rows": presenters.list_rows(rows),
        "any_tasks": results.total > 0 or visible.exists(),
        "columns": presenters.sort_columns(params),
        "sort_value": params.get("sort", ""),
        "live_url": live_url,
        "live_list": bool(live_url),  # the list's poll refreshes the top bar too
    }


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
    """The list's poll: 204 while no visible task changed since the cursor `c` and the
    progress of the running tasks shown is still `p`; else the changed rows among those
    shown (`shown`) out of band, or the whole results part when a change adds a row to
    the page or moves one, and the top bar's counts.

    Only the changes since the cursor are read (selectors.task_changes), so a poll costs
    the same on ten tasks or a million; the filters, sort and page come with the poll and
    are only applied to the changed tasks unless the page must be built again. A running
    task's progress changes without its stamp (an attempt's finish does not write the
    task row), so the running rows shown are counted on each poll (running_progress).
    """
    shown = parse.integer_list(request.GET, "shown", limit=LIVE_LIST_MAX_IDS)
    visible = access.visible_tasks(request.user)
    progress = selectors.running_progress(visible=visible, ids=shown)
    progress_mark = presenters.progress_digest(progress)
    progressed = list(progress) if progress_mark != request.GET.get("p", "") else []
    changes = selectors.task_changes(visible=visible, cursor=request.GET.get("c", ""))
    if not changes.changed and not progressed:
        return HttpResponse(status=204)
    params = request.GET.copy()
    for key in LIVE_LIST_KEYS:
        params.pop(key, None)
    context: dict = {
        "live_list": True,
        "nav_counts": _nav_counts(visible, changes.cursor),
        "bulk_ops": _bulk_ops(request.user),
    }
    _, size = parse.page(params, default_size=DEFAULT_PAGE_SIZE)
    changed_shown: list[int] | None = []
    if changes.changed:
        changed_shown = _rows_to_patch(visible, params, shown, changes.ids, size)
    if changed_shown is None:
        results, extra = _task_results(
            visible,
            params,
            clusters=access.visible_clusters(request.user),
            cursor=changes.cursor,
        )
        form = TaskFilterForm(params, clusters=[], hosts=[], creators=[])
        rows, total, page_no, size, error, _ = results
        context.update(
            extra,
            reload=True,
            rows=extra["shown_rows"],
            total=total,
            error=error,
            filtered=form.active_count > 0,
            query=clean_query(params),
            **paging(page_no=page_no, size=size, rows=rows, total=total),
        )
    else:
        patched = list(dict.fromkeys([*changed_shown, *progressed]))
        context["rows"] = presenters.list_rows(
            selectors.task_rows_by_id(visible=visible, ids=patched)
        )
        context["live_url"] = (
            f"{reverse('dashboard:task_list_live')}?"
            f"{clean_query(params)}{'&' if params else ''}"
            + urlencode(
                {"shown": ",".join(map(str, shown)), "c": changes.cursor, "p": progress_mark}
            )
        )
    return render(request, "dashboard/_task_list_live.html", context)


def _rows_to_patch(
    visible, params, shown: list[int], changed: list[int] | None, size: int
) -> list[int] | None:
    """The shown rows to send again, or None when the page must be built again: a changed
    task now belongs on it (or on an earlier page, shifting it) or no longer does, or a
    sort by a changing column may move a row."""
    if changed is None:
        return None
    shown_set = set(shown)
    matching = selectors.task_ids_among(
        queryset=selectors.task_list(visible=visible, params=params), ids=changed
    )
    changed_shown = [pk for pk in changed if pk in shown_set]
    if set(changed_shown) - matching:
        return None  # left the filters
    sorts = [value.partition(",") for value in params.getlist("sort") if value]
    keys = {key.strip() for key, _, _ in sorts}
    if changed_shown and keys & MOVING_SORTS:
        return None
    arriving = matching - shown_set
    if arriving and not _all_after_page(arriving, shown, sorts, size):
        return None
    return changed_shown


def _all_after_page(ids: set[int], shown: list[int], sorts, size: int) -> bool:
    """Whether tasks that newly match all belong to later pages: known only in an order
    by id alone (the default, newest first), for a full page."""
    if len(shown) < size or any(key.strip() != "id" for key, _, _ in sorts):
        return False
    ascending = bool(sorts) and sorts[-1][2].strip().lower() != "desc"
    if ascending:
        return min(ids) > max(shown)
    return max(ids) < min(shown)


def _nav_counts(visible, cursor: str) -> dict:
    return {**selectors.task_top_counts(visible=visible), "cursor": cursor}


@signed_in_view()
@require_GET
def nav_counts_live(request):
    """The top bar's poll on pages other than the list: 204 while nothing visible changed,
    else the counts (with their new cursor). Users who may not view tasks count none."""
    visible = access.visible_tasks(request.user)
    changes = selectors.task_changes(visible=visible, cursor=request.GET.get("c", ""))
    if not changes.changed:
        return HttpResponse(status=204)
    context = {"nav_counts": _nav_counts(visible, changes.cursor)}
    return render(request, "dashboard/_nav_counts.html", context)


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
    attempt = (
        parse.integer(request.GET, "attempt", minimum=0, maximum=selected.attempt)
        if selected
        else None
    )
    context = detail.page_context(
        request, task, nodes, view=view, selected=selected, attempt=attempt
    )
    context["nav"] = "tasks"
    context["task_stamp"] = selectors.change_stamp(task.updated_at)
    context["status_filter"] = status_filter
    # A context (a run a plan started) names its plan; the plan may have been deleted since.
    context["started_by"] = schedule_selectors.context_fire(task_id=task.pk)
    context["parameters"] = presenters.parameter_rows(selectors.shown_parameters(task))
    context["repeats"] = selectors.task_repeats(
        visible=access.visible_tasks(request.user), task_id=task.pk
    )
    if view == "flow":
        context["svg"] = dag.render_svg(
            dag.layout(nodes), selected_id=selected_id, link=f"{detail_url}?view=flow&subtask="
        )
    elif view == "timeline":
        context.update(_timeline_context(request, task, selected_id, nodes))
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
    band (header with its buttons, selected subtask, subtask states).

    It polls whether the task runs or not: someone else may retry or roll back a task
    that has ended. A task that is not running changes only through a service that
    stamps its updated_at (`u`), so its poll reads one row; a running task's subtasks
    start without stamping it, so its poll compares the digest of their states (`v`).
    """
    task = access.get_task_for_user(request.user, task_id)
    view = parse.choice(request.GET, "view", VIEWS, default="flow")
    stamp = selectors.change_stamp(task.updated_at)
    unchanged_stamp = stamp == request.GET.get("u", "")
    if unchanged_stamp and task.status != TaskStatus.RUNNING:
        return HttpResponse(status=204)
    shown_status = request.GET.get("sst", "")
    states = selectors.task_subtask_states(task_id=task.pk)
    digest = presenters.digest(task, states)
    # The timeline's running bars grow with the clock: its view is redrawn while the task
    # runs, even when no state changed.
    growing = view == "timeline" and task.status == TaskStatus.RUNNING
    if digest == request.GET.get("v", "") and unchanged_stamp and not growing:
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
        "task_stamp": stamp,
        "restart_log": restart_log,
        **detail.states_context(request, task, states),
        **detail.panel_context(request, task, selected, with_log=restart_log),
    }
    if view == "timeline":
        context.update(_timeline_context(request, task, selected.pk if selected else None))
    return render(request, "dashboard/_task_live.html", context)


def _timeline_context(request, task, selected_id: int | None, nodes=None) -> dict:
    """The timeline view's chart: the page's subtasks (read here when not given), their
    attempts' numbers and READY times, and their replaced attempts."""
    expand = parse.integer(request.GET, "expand", minimum=1)
    now = timezone.now()
    chart = timeline.build(
        selectors.task_graph_nodes(task=task) if nodes is None else nodes,
        selectors.task_attempt_marks(task_id=task.pk),
        selectors.task_past_attempts(task_id=task.pk),
        now=now,
        expand=expand,
    )
    url = reverse("dashboard:task_detail", args=[task.pk])
    keep = f"&subtask={selected_id}" if selected_id else ""
    return {
        "timeline": chart,
        "timeline_svg": timeline.render_svg(
            chart,
            now=now,
            selected_id=selected_id,
            link=f"{url}?view=timeline{f'&expand={expand}' if expand else ''}&subtask=",
            expand_link=f"{url}?view=timeline{keep}&expand=",
        ),
        "timeline_expand": expand,
    }


@dashboard_view
@require_GET
def subtask_panel(request, task_id: int, subtask_id: int):
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    view = parse.choice(request.GET, "view", VIEWS, default="flow")
    attempt = parse.integer(request.GET, "attempt", minimum=0, maximum=subtask.attempt)
    if not is_partial(request):
        url = reverse("dashboard:task_detail", args=[task.pk])
        picked = "" if attempt is None else f"&attempt={attempt}"
        return redirect(f"{url}?view={view}&subtask={subtask.pk}{picked}")
    context = {
        "task": task,
        "view": view,
        # An empty digest makes the next poll send everything, so nothing can be missed.
        "digest": "",
        **detail.panel_context(request, task, subtask, attempt=attempt),
        "seen": selectors.task_last_audit_entry_id(task_id=task.pk),
    }
    return render(request, "dashboard/_subtask_panel_swap.html", context)


# --- Logs and downloads ------------------------------------------------------------------------


@dashboard_view
@require_GET
def subtask_log(request, task_id: int, subtask_id: int):
    """The log panel's poll (log_poll.answer). The session is remembered as let in to this
    log, so its next polls take log_poll's shortcut while nothing it rests on changes."""
    version = access.access_version()  # before the decision, so a change after it counts
    subtask = access.get_subtask_for_user(request.user, task_id, subtask_id)
    log_poll.remember(request, subtask, access_version=version)
    return log_poll.answer(request, subtask)


@dashboard_view
@require_GET
def subtask_log_download(request, task_id: int, subtask_id: int):
    """The whole log, or one `attempt`'s, as a text file, streamed (never all in memory)."""
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    attempt = parse.integer(request.GET, "attempt", minimum=0, maximum=subtask.attempt)
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
    filename = f"task-{task.pk}-subtask-{subtask.pk}-{name}"
    if attempt is None:
        body = windows()
    else:
        # One attempt's bytes as written, chunk by chunk.
        body = selectors.log_attempt_data(subtask=subtask, attempt=attempt, end=end)
        filename += f"-attempt-{attempt}"
    response = StreamingHttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.log"'
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
    visible = access.visible_audit(user)

    def fetch(page_no: int, size: int) -> tuple[list[AuditEntry], int]:
        queryset = selectors.operation_list(visible=visible, params=params)
        rows, total = selectors.operation_page(queryset=queryset, page=page_no, size=size)
        for row in rows:
            row.shown_reason = presenters.audit_reason(row.reason)  # type: ignore[attr-defined]
        return rows, total

    results = _page_of(params, default_size=AUDIT_PAGE_SIZE, fetch=fetch)
    if results.error:
        results = results._replace(size=AUDIT_PAGE_SIZE)  # a refused page shows the default
    actions = selectors.operation_actions(visible=visible)
    form = AuditFilterForm(params, actions=actions, users=[])
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
