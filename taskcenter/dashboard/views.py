"""The operator dashboard: server-rendered pages and htmx partials.

Every view is a function wrapped by @dashboard_view, which sends anonymous users to the
sign-in page, requires view permission, and turns the domain errors (TaskNotFound,
NotPermitted, InvalidParameter, ...) into a clear page, or into a flash message for htmx
requests. Each view then calls the access helpers first (get_task_for_user /
get_operable_task_for_user) and reads through the selectors; operations go through the
services, which decide; the page only shows what they said.

Live parts poll with a cursor and stop with HTTP 286: the task list's running rows
(task_list_live), the detail page's header and subtask states (task_live, cursor = a
digest of the states), and the selected subtask's log (subtask_log, cursor = byte offset).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import Counter
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseNotAllowed,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from taskcenter.accounts import access
from taskcenter.dashboard import dag, presenters, subtask_list
from taskcenter.dashboard.forms import (
    DEFAULT_PAGE_SIZE,
    ActionForm,
    AuditFilterForm,
    TaskFilterForm,
)
from taskcenter.tasks import diagnosis, selectors, services
from taskcenter.tasks.errors import (
    InvalidParameter,
    InvalidState,
    RollbackProhibited,
    TaskCenterError,
    TaskNotFound,
)
from taskcenter.tasks.filters import parse_page
from taskcenter.tasks.models import SubtaskStatus, TaskInstance, TaskStatus

LOG_VIEW_BYTES = 2 * 1024 * 1024  # the page shows at most the last 2 MiB of a log
LOG_POLL_BYTES = 512 * 1024  # one poll sends at most this much; older output is skipped
LOG_DOWNLOAD_WINDOW = 1024 * 1024  # the download streams the log in windows of this size
LIVE_LIST_MAX_IDS = 200
AUDIT_PAGE_SIZE = 50
ACTIVE = presenters.ACTIVE

ERROR_TITLES = {
    400: "That request could not be understood",
    403: "You do not have permission",
    404: "Not found",
    405: "Method not allowed",
}


# --- Plumbing ---------------------------------------------------------------------------------


def dashboard_view(view):
    """Signed-in users with view permission only; domain errors become clear answers."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if request.htmx:
                # A background request cannot show a sign-in page; send the browser there.
                current = request.headers.get("HX-Current-URL") or request.get_full_path()
                response = HttpResponse(status=401)
                response["HX-Redirect"] = (
                    f"{reverse('dashboard:login')}?{urlencode({'next': _path_of(current)})}"
                )
                return response
            return redirect_to_login(request.get_full_path())
        try:
            access.require_view(request.user)
            return view(request, *args, **kwargs)
        except TaskCenterError as exc:
            return error_response(request, exc.http_status, exc.message)

    return wrapper


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def is_partial(request, target: str | None = None) -> bool:
    """An htmx request that wants a fragment (not a history restore, not a boosted page)."""
    htmx = request.htmx
    if not htmx or htmx.history_restore_request or htmx.boosted:
        return False
    return target is None or htmx.target == target


def error_response(request, status: int, message: str) -> HttpResponse:
    if request.htmx and not request.htmx.history_restore_request:
        response = render(
            request,
            "dashboard/_flash.html",
            {"flash": {"level": "error", "message": message}},
            status=status,
        )
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    context = {
        "status": status,
        "title": ERROR_TITLES.get(status, "Something went wrong"),
        "message": message,
    }
    return page(request, "dashboard/error.html", context, status=status)


def page(request, template: str, context: dict, status: int = 200) -> HttpResponse:
    """A full page: the top bar's counts, the user's role and the navigation."""
    user = request.user
    counts = selectors.task_counts_by_status(visible=access.visible_tasks(user))
    context = {
        **context,
        "time_zone": settings.TIME_ZONE,
        "nav_counts": counts,
        "nav_role": presenters.role_label(user),
        "nav_is_admin": presenters.is_admin(user),
        "nav_schedules_url": _schedules_url(),
    }
    return render(request, template, context, status=status)


def _schedules_url() -> str | None:
    for name in ("schedules:list", "dashboard:schedule_list", "dashboard:schedules"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def _int_param(params, name: str, *, minimum: int = 0, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidParameter(f"Invalid parameter '{name}': '{raw}' is not an integer.") from None
    if value < minimum:
        raise InvalidParameter(f"Invalid parameter '{name}': {value} is below {minimum}.")
    return value


def _clean_query(params: QueryDict, drop: tuple[str, ...] = ()) -> str:
    """The query string without empty values: what a shared link should look like."""
    pairs = [
        (key, value)
        for key in params
        if key not in drop
        for value in params.getlist(key)
        if value.strip()
    ]
    return urlencode(pairs)


@require_GET
def index(request):
    return redirect("dashboard:task_list")


# --- Task list ---------------------------------------------------------------------------------

SORTABLE = {
    "id": ("ID", "desc"),
    "name": ("Name", "asc"),
    "status": ("Status", "asc"),
    "startTime": ("Start", "desc"),
}


@dashboard_view
@require_GET
def task_list(request):
    user = request.user
    visible = access.visible_tasks(user)
    params = request.GET
    status, error = 200, None
    rows: list[TaskInstance] = []
    total, page_no, size = 0, 1, DEFAULT_PAGE_SIZE
    try:
        page_no, size = parse_page(params, default_size=DEFAULT_PAGE_SIZE)
        queryset = selectors.task_list(visible=visible, params=params)
        rows, total = selectors.task_page(
            queryset=queryset, page=page_no, size=size, with_subtasks=False
        )
    except InvalidParameter as exc:
        status, error = 400, exc.message

    choices = selectors.task_filter_choices()
    form = TaskFilterForm(
        params,
        clusters=choices["clusters"],
        hosts=choices["hosts"],
        creators=selectors.task_creators(visible=visible),
    )
    pages = max(1, math.ceil(total / size)) if total else 1
    sort_field, sort_dir = _current_sort(params)
    prefix = _detail_prefix()
    context = {
        "nav": "tasks",
        "form": form,
        "rows": [_list_row(task, prefix) for task in rows],
        "total": total,
        **_paging(page_no, pages, size, rows, total),
        "error": error,
        "filtered": form.active_count > 0,
        "any_tasks": total > 0 or visible.exists(),
        "columns": _sort_columns(params, sort_field, sort_dir),
        "sort_value": params.get("sort", ""),
        "running_ids": ",".join(str(t.pk) for t in rows if t.status == TaskStatus.RUNNING),
        "query": _clean_query(params),
    }
    if is_partial(request, "task-results"):
        response = render(request, "dashboard/_task_results.html", context, status=status)
        clean = _clean_query(params)
        response["HX-Push-Url"] = reverse("dashboard:task_list") + (f"?{clean}" if clean else "")
        return response
    return page(request, "dashboard/task_list.html", context, status=status)


def _current_sort(params) -> tuple[str, str]:
    value = (params.getlist("sort") or [""])[0]
    field, _, direction = value.partition(",")
    return field.strip(), (direction.strip().lower() or "asc")


def _sort_columns(params, field: str, direction: str) -> dict[str, dict]:
    columns = {}
    for key, (label, first) in SORTABLE.items():
        active = key == field or (not field and key == "id")
        current = direction if key == field else ("desc" if active else None)
        following = ("asc" if current == "desc" else "desc") if active else first
        query = params.copy()
        query.setlist("sort", [f"{key},{following}"])
        query.pop("page", None)
        columns[key] = {
            "label": label,
            "url": f"?{_clean_query(query)}",
            "aria_sort": {"asc": "ascending", "desc": "descending"}.get(current or "", "none"),
            "arrow": {"asc": "↑", "desc": "↓"}.get(current or "", ""),
        }
    return columns


def _list_row(task: TaskInstance, detail_prefix: str) -> dict:
    """Everything a list row shows, as ready strings (a template lookup per cell is cheap;
    a filter or a method call per cell is what made 50 rows slow)."""
    total = task.subtask_total
    done = getattr(task, "subtask_successful", 0)
    start = timezone.localtime(task.start_time) if task.start_time else None
    return {
        "pk": task.pk,
        "url": f"{detail_prefix}{task.pk}/",
        "name": task.name,
        "status": task.status,
        "kind": task.get_type_display()
        + ("" if task.operation == "EXECUTE" else f" · {task.get_operation_display()}"),
        "cluster": task.cluster.name if task.cluster_id else "",
        "tenant": task.tenant.name if task.tenant_id else "",
        "creator": task.creator.get_username() if task.creator_id else "",
        "label": presenters.task_label(task.status, task.operation),
        "tone": presenters.task_tone(task.status, task.operation),
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "start_iso": start.isoformat() if start else "",
        "start_text": start.strftime("%Y-%m-%d %H:%M:%S") if start else "",
        "duration": presenters.format_duration(
            presenters.duration_between(task.start_time, task.finish_time)
        ),
    }


def _detail_prefix() -> str:
    """'/tasks/' of '/tasks/<id>/', reversed once per request instead of once per row."""
    return reverse("dashboard:task_detail", args=[0])[: -len("0/")]


@dashboard_view
@require_GET
def task_list_live(request):
    """Fresh rows for the running tasks of a list page, and the top bar's counts.

    The rows go out of band (wrapped in <template>, as table rows must be); 286 stops the
    page's polling once none of them is running.
    """
    raw = request.GET.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()][:LIVE_LIST_MAX_IDS]
    except ValueError:
        raise InvalidParameter(f"Invalid parameter 'ids': '{raw}' is not a list of ids.") from None
    visible = access.visible_tasks(request.user)
    prefix = _detail_prefix()
    rows = selectors.task_rows_by_id(visible=visible, ids=ids)
    context = {
        "rows": [_list_row(task, prefix) for task in rows],
        "nav_counts": selectors.task_counts_by_status(visible=visible),
    }
    running = any(t.status == TaskStatus.RUNNING for t in rows)
    response = render(request, "dashboard/_task_rows_live.html", context)
    if not running:
        response.status_code = 286
    return response


# --- Task detail -------------------------------------------------------------------------------


def _parse_view(params) -> str:
    view = params.get("view") or "flow"
    if view not in ("flow", "log"):
        raise InvalidParameter(f"Invalid parameter 'view': '{view}' (use flow or log).")
    return view


@dashboard_view
@require_GET
def task_detail(request, task_id: int):
    task = access.get_task_for_user(request.user, task_id)
    view = _parse_view(request.GET)
    subtask_id = _int_param(request.GET, "subtask", minimum=1)
    status_filter = request.GET.get("show") or "all"
    if status_filter not in subtask_list.FILTERS:
        status_filter = "all"
    nodes = selectors.task_graph_nodes(task=task)
    if is_partial(request, "subtask-more"):
        # The next chunk of the log view's list ("Show more").
        start = _int_param(request.GET, "from", minimum=0, default=0)
        rows = subtask_list.filtered(nodes, status_filter)
        html = subtask_list.render_rows(
            rows,
            start=start,
            end=min(len(rows), start + subtask_list.CHUNK),
            selected_id=subtask_id,
            status_filter=status_filter,
            more_url=reverse("dashboard:task_detail", args=[task.pk]),
        )
        return HttpResponse(html)
    if subtask_id is not None:
        selected = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    else:
        current = presenters.current_subtask(nodes)
        selected = (
            selectors.subtask_get(task_id=task.pk, subtask_id=current.pk) if current else None
        )
    context = _detail_context(request, task, nodes, view=view, selected=selected)
    context["nav"] = "tasks"
    context["status_filter"] = status_filter
    if view == "flow":
        plan = dag.layout(nodes)
        context["svg"] = dag.render_svg(
            plan,
            selected_id=selected.pk if selected else None,
            link=f"{reverse('dashboard:task_detail', args=[task.pk])}?view=flow&subtask=",
        )
    else:
        rows = subtask_list.filtered(nodes, status_filter)
        selected_id = selected.pk if selected else None
        context["subtask_rows_html"] = subtask_list.render_rows(
            rows,
            start=0,
            end=subtask_list.chunk_end(rows, 0, selected_id),
            selected_id=selected_id,
            status_filter=status_filter,
            more_url=reverse("dashboard:task_detail", args=[task.pk]),
        )
        context["list_filters"] = _list_filters(nodes)
    return page(request, "dashboard/task_detail.html", context)


def _detail_context(request, task, nodes, *, view: str, selected) -> dict:
    states = [(s.pk, s.status, s.operation, s.run_time) for s in nodes]
    context = {
        "task": task,
        "view": view,
        "subtask_count": len(nodes),
        "tone_counts": _tone_counts(states),
        **_header_context(request, task, states),
        **_panel_context(request, task, selected),
        "digest": _digest(task, states),
    }
    return context


def _header_context(request, task: TaskInstance, states) -> dict:
    done = sum(1 for _, status, _, _ in states if status == SubtaskStatus.SUCCESSFUL)
    total = len(states)
    return {
        "task_label": presenters.task_label(task.status, task.operation),
        "task_tone": presenters.task_tone(task.status, task.operation),
        "task_buttons": presenters.task_buttons(request.user, task),
        "progress_done": done,
        "progress_total": total,
        "progress_percent": round(100 * done / total) if total else 0,
        "task_duration": presenters.format_duration(
            presenters.duration_between(task.start_time, task.finish_time)
        ),
        "seen": selectors.task_last_operation_id(task_id=task.pk),
    }


def _panel_context(request, task, subtask, *, with_log: bool = True) -> dict:
    if subtask is None:
        return {"subtask": None}
    context = {
        "subtask": subtask,
        "subtask_label": presenters.subtask_label(subtask.status, subtask.operation),
        "subtask_tone": presenters.subtask_tone(subtask.status, subtask.operation),
        "subtask_buttons": presenters.subtask_buttons(request.user, subtask, task),
        "subtask_duration": presenters.format_duration(
            presenters.duration_between(subtask.start_time, subtask.finish_time)
        ),
        "subtask_active": subtask.status in ACTIVE,
    }
    if with_log:
        tail = selectors.log_tail(subtask=subtask, max_bytes=LOG_VIEW_BYTES)
        text = tail.text
        if tail.offset > 0:
            # The window starts mid-line (maybe mid-character): begin at the next line.
            cut = text.find("\n")
            text = text[cut + 1 :] if 0 <= cut < len(text) - 1 else text
        context["log"] = {
            "text": text,
            "hidden_bytes": tail.offset,
            "next_offset": tail.next_offset,
            "size": tail.size,
            "finished": tail.finished,
            "truncated": tail.truncated,
            "max_chars": LOG_VIEW_BYTES,
        }
    return context


TONE_ORDER = [
    ("running", "Running"),
    ("canceling", "Canceling"),
    ("failed", "Failed"),
    ("ready", "Queued"),
    ("pending", "Pending"),
    ("successful", "Successful"),
    ("skipped", "Skipped"),
    ("rolledback", "Rolled back"),
]


def _tone_counts(states) -> list[tuple[str, str, int]]:
    """(tone, label, count) for the legend, in a fixed order; states as in task_subtask_states."""
    counter = Counter(presenters.subtask_tone(status, op) for _, status, op, _ in states)
    return [(tone, label, counter[tone]) for tone, label in TONE_ORDER if counter[tone]]


def _list_filters(nodes) -> list[tuple[str, str]]:
    tones = Counter(presenters.subtask_tone(s.status, s.operation) for s in nodes)
    labels = {"all": "All", "failed": "Failed", "running": "Running", "pending": "Pending"}
    return [
        (key, labels[key])
        for key, wanted in subtask_list.FILTERS.items()
        if wanted is None or any(tones[t] for t in wanted)
    ]


def _digest(task: TaskInstance, states) -> str:
    """The live cursor of a detail page: changes whenever anything it shows changes."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{task.status}|{task.operation}|{task.prohibit_rollback}|".encode())
    for pk, status, operation, run_time in states:
        h.update(f"{pk}:{status}:{operation}:{run_time};".encode())
    return h.hexdigest()


def _states_json(states) -> str:
    """Subtask ids grouped by status|operation, with the words and colour of each group."""
    groups: dict[str, list[int]] = {}
    for pk, status, operation, _ in states:
        groups.setdefault(f"{status}|{operation}", []).append(pk)
    runs = {pk: run for pk, _, _, run in states if run > 1}
    payload = {
        "groups": {
            key: {
                "status": key.split("|")[0],
                "op": key.split("|")[1],
                "label": presenters.subtask_label(*key.split("|")),
                "tone": presenters.subtask_tone(*key.split("|")),
                "ids": ids,
            }
            for key, ids in groups.items()
        },
        "runs": runs,
    }
    return json.dumps(payload, separators=(",", ":"))


@dashboard_view
@require_GET
def task_live(request, task_id: int):
    """The detail page's poll: 204 while nothing changed, else the changed parts out of
    band (header, selected subtask, subtask states); 286 once the task has finished."""
    task = access.get_task_for_user(request.user, task_id)
    view = _parse_view(request.GET)
    client_digest = request.GET.get("v", "")
    shown_status = request.GET.get("sst", "")
    states = selectors.task_subtask_states(task_id=task.pk)
    digest = _digest(task, states)
    finished = task.status != TaskStatus.RUNNING
    if digest == client_digest and not finished:
        return HttpResponse(status=204)
    subtask_id = _int_param(request.GET, "subtask", minimum=1)
    selected = None
    if subtask_id is not None:
        selected = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    # A subtask that was idle and now runs again needs its log to start following.
    restart_log = bool(
        selected and selected.status in ACTIVE and shown_status and shown_status not in ACTIVE
    )
    context = {
        "task": task,
        "view": view,
        "digest": digest,
        "states_json": _states_json(states),
        "tone_counts": _tone_counts(states),
        "restart_log": restart_log,
        **_header_context(request, task, states),
        **_panel_context(request, task, selected, with_log=restart_log),
    }
    response = render(request, "dashboard/_task_live.html", context)
    if finished:
        response.status_code = 286
    return response


@dashboard_view
@require_GET
def subtask_panel(request, task_id: int, subtask_id: int):
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    if not is_partial(request):
        view = _parse_view(request.GET)
        url = reverse("dashboard:task_detail", args=[task.pk])
        return redirect(f"{url}?view={view}&subtask={subtask.pk}")
    context = {
        "task": task,
        "view": _parse_view(request.GET),
        # An empty digest makes the next poll send everything, so nothing can be missed.
        "digest": "",
        **_panel_context(request, task, subtask),
        "seen": selectors.task_last_operation_id(task_id=task.pk),
    }
    return render(request, "dashboard/_subtask_panel_swap.html", context)


# --- Logs --------------------------------------------------------------------------------------


@dashboard_view
@require_GET
def subtask_log(request, task_id: int, subtask_id: int):
    """New log text from `offset`, appended by the page; 286 when the subtask has finished."""
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    offset = _int_param(request.GET, "offset", minimum=0, default=0)
    skipped = 0
    if subtask.log_size - offset > LOG_POLL_BYTES:
        # Far behind (a burst of output): skip to the last part instead of sending it all.
        skipped = subtask.log_size - LOG_POLL_BYTES - offset
        offset = subtask.log_size - LOG_POLL_BYTES
    piece = selectors.log_read(subtask=subtask, offset=offset)
    text = piece.text
    if skipped:
        cut = text.find("\n")
        text = text[cut + 1 :] if 0 <= cut < len(text) - 1 else text
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
    response = render(request, "dashboard/_log_chunk.html", context)
    if piece.finished:
        response.status_code = 286
    return response


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
    """The diagnosis zip (summary + one log per attempt), spooled to disk past 8 MB."""
    task = access.get_task_for_user(request.user, task_id)
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - FileResponse closes it
    diagnosis.write_diagnosis_zip(task, spool)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=diagnosis.diagnosis_filename(task),
        content_type="application/zip",
    )


# --- Operations --------------------------------------------------------------------------------

CONFIRM_TEXT = {
    "retry": (
        "Retry task #{task} “{name}”?",
        "Every failed subtask runs again and the task continues from where it stopped.",
        "Retry task",
    ),
    "rollback": (
        "Roll back task #{task} “{name}”?",
        "Every subtask that has run is undone, in reverse order. This is OCP's “give up”: "
        "the task ends as rolled back, not as done.",
        "Roll back task",
    ),
    "subtask_retry": (
        "Retry “{subtask}”?",
        "This subtask runs again (run {next_run}); the task continues when it succeeds.",
        "Retry subtask",
    ),
    "skip": (
        "Skip “{subtask}”?",
        "The subtask is set to successful without running, and the steps after it go on. "
        "Use this only when its work was done another way.",
        "Skip subtask",
    ),
    "skip_rollback": (
        "Skip the rollback of “{subtask}”?",
        "The rollback of this step is treated as done without running it, and the "
        "rollback goes on with the steps before it.",
        "Skip rollback",
    ),
    "cancel": (
        "Cancel “{subtask}”?",
        "The worker stops this running subtask; it ends as failed (canceled) and the task "
        "stops after it. You can retry it later.",
        "Cancel subtask",
    ),
}


@dashboard_view
@require_GET
def confirm(request, task_id: int):
    """The confirmation dialog of an operation (with a reason field), or why it is not
    possible now. Permission is checked here as well as on the POST."""
    op = request.GET.get("op", "")
    if op not in presenters.TASK_OPS + presenters.SUBTASK_OPS:
        raise InvalidParameter(f"Invalid parameter 'op': '{op}' is not an operation.")
    task = access.get_operable_task_for_user(request.user, task_id, op)
    seen = _int_param(request.GET, "seen", minimum=0, default=0)
    subtask = None
    if op in presenters.SUBTASK_OPS:
        subtask_id = _int_param(request.GET, "subtask", minimum=1)
        if subtask_id is None:
            raise InvalidParameter("Parameter 'subtask' is required for a subtask operation.")
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
        buttons = presenters.subtask_buttons(request.user, subtask, task)
        segment = {"subtask_retry": "retry"}.get(op, op)
        action_url = reverse("dashboard:subtask_operate", args=[task.pk, subtask.pk, segment])
    else:
        buttons = presenters.task_buttons(request.user, task)
        action_url = reverse("dashboard:task_operate", args=[task.pk, op])
    button = next((b for b in buttons if b.op == op), None)
    if button is None or not button.enabled:
        why = button.why if button else "The current state does not allow it."
        flash = _refusal(task, subtask, seen, op, why)
        return _flash_response(request, flash)
    key = "skip_rollback" if op == "skip" and subtask and subtask.is_rollback else op
    title, body, confirm_label = CONFIRM_TEXT[key]
    fmt = {
        "task": task.pk,
        "name": task.name,
        "subtask": subtask.name if subtask else "",
        "next_run": (subtask.run_time + 1) if subtask else 0,
    }
    context = {
        "op": op,
        "title": title.format(**fmt),
        "body": body.format(**fmt),
        "confirm_label": confirm_label,
        "danger": button.danger,
        "reason_required": op in presenters.REASON_REQUIRED,
        "action_url": action_url,
        "seen": seen,
        "task": task,
        "subtask": subtask,
    }
    return render(request, "dashboard/_confirm.html", context)


@dashboard_view
def task_operate(request, task_id: int, op: str):
    if op not in presenters.TASK_OPS:
        raise Http404("Unknown operation")
    return _operate(request, task_id, op, None)


@dashboard_view
def subtask_operate(request, task_id: int, subtask_id: int, op: str):
    names = {"retry": "subtask_retry", "skip": "skip", "cancel": "cancel"}
    if op not in names:
        raise Http404("Unknown operation")
    return _operate(request, task_id, names[op], subtask_id)


SERVICES = {
    "retry": services.task_retry,
    "rollback": services.task_rollback,
    "subtask_retry": services.subtask_retry,
    "skip": services.subtask_skip,
    "cancel": services.subtask_cancel,
}

DONE_MESSAGES = {
    "retry": "Retry started: the failed subtasks of task #{task} run again.",
    "rollback": "Rollback started: task #{task} is being undone step by step.",
    "subtask_retry": "“{subtask}” runs again.",
    "skip": "“{subtask}” was skipped (set to success); the task goes on.",
    "cancel": "Cancel requested: the worker is stopping “{subtask}”.",
}


def _operate(request, task_id: int, op: str, subtask_id: int | None):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task = access.get_operable_task_for_user(request.user, task_id, op)
    subtask = None
    if subtask_id is not None:
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    form = ActionForm(request.POST, reason_required=op in presenters.REASON_REQUIRED)
    if not form.is_valid():
        message = " ".join(str(m) for errors in form.errors.values() for m in errors)
        return error_response(request, 400, message)
    reason = form.cleaned_data["reason"]
    seen = form.cleaned_data["seen"] or 0
    kwargs = {"task_id": task.pk, "actor": request.user, "reason": reason}
    if subtask is not None:
        kwargs["subtask_id"] = subtask.pk
    try:
        SERVICES[op](**kwargs)
        flash = {
            "level": "success",
            "message": DONE_MESSAGES[op].format(
                task=task.pk, subtask=subtask.name if subtask else ""
            ),
        }
    except (InvalidState, RollbackProhibited) as exc:
        flash = _refusal(task, subtask, seen, op, exc.message)
    except TaskNotFound as exc:
        return error_response(request, 404, exc.message)

    if not is_partial(request):
        getattr(messages, flash["level"])(
            request, flash["message"] + (f" {flash['detail']}" if flash.get("detail") else "")
        )
        url = reverse("dashboard:task_detail", args=[task.pk])
        return redirect(f"{url}?subtask={subtask.pk}" if subtask else url)

    task = access.get_task_for_user(request.user, task.pk)  # the state after the operation
    selected_id = subtask.pk if subtask else form.cleaned_data["selected"]
    selected = None
    if selected_id:
        try:
            selected = selectors.subtask_get(task_id=task.pk, subtask_id=selected_id)
        except TaskNotFound:
            selected = None
    states = selectors.task_subtask_states(task_id=task.pk)
    context = {
        "flash": flash,
        "task": task,
        "view": form.cleaned_data["view"] or "flow",
        "digest": "",
        "states_json": _states_json(states),
        "tone_counts": _tone_counts(states),
        **_header_context(request, task, states),
        **_panel_context(request, task, selected),
    }
    return render(request, "dashboard/_after_action.html", context)


ALREADY = {
    "RETRY": "retried this task",
    "ROLLBACK": "rolled this task back",
    "SUBTASK_RETRY": "retried “{subtask}”",
    "SKIP": "skipped “{subtask}”",
    "CANCEL": "canceled “{subtask}”",
}


def _refusal(task, subtask, seen: int, op: str, message: str) -> dict:
    """A refusal in words: who got there first, when we know, and the service's message."""
    label = presenters.OP_LABELS[op]
    for operation in selectors.task_operations_after(task_id=task.pk, after_id=seen):
        if subtask is not None and operation.subtask_id not in (None, subtask.pk):
            continue
        what = ALREADY.get(operation.action)
        if what is None:
            continue
        name = operation.subtask.name if operation.subtask_id else ""
        when = timezone.localtime(operation.created_at).strftime("%H:%M:%S")
        return {
            "level": "warning",
            "message": f"Not done: {operation.actor_name} already {what.format(subtask=name)} "
            f"at {when}.",
            "detail": message,
        }
    return {"level": "warning", "message": f"{label} is not possible now.", "detail": message}


def _flash_response(request, flash: dict, status: int = 200) -> HttpResponse:
    if not is_partial(request):
        messages.warning(request, f"{flash['message']} {flash.get('detail', '')}".strip())
        return redirect(request.headers.get("Referer") or reverse("dashboard:task_list"))
    response = render(request, "dashboard/_flash.html", {"flash": flash}, status=status)
    response["HX-Retarget"] = "#flash"
    response["HX-Reswap"] = "innerHTML"
    return response


# --- Audit -------------------------------------------------------------------------------------


def _paging(page_no: int, pages: int, size: int, rows: list, total: int) -> dict:
    """The pagination fields the list and audit templates share."""
    return {
        "page_no": page_no,
        "pages": pages,
        "size": size,
        "first_row": (page_no - 1) * size + 1 if rows else 0,
        "last_row": (page_no - 1) * size + len(rows),
        "past_end": bool(total) and not rows,
    }


@dashboard_view
@require_GET
def audit(request):
    user = request.user
    params = request.GET
    status, error = 200, None
    rows, total, page_no = [], 0, 1
    try:
        page_no, size = parse_page(params, default_size=AUDIT_PAGE_SIZE)
        queryset = selectors.operation_list(
            visible=access.visible_tasks(user),
            params=params,
            include_account_changes=access.can_manage_accounts(user),
        )
        rows, total = selectors.operation_page(queryset=queryset, page=page_no, size=size)
    except InvalidParameter as exc:
        status, error, size = 400, exc.message, AUDIT_PAGE_SIZE
    form = AuditFilterForm(params, actions=selectors.operation_actions(), users=[])
    pages = max(1, math.ceil(total / size)) if total else 1
    context = {
        "nav": "audit",
        "form": form,
        "rows": rows,
        "total": total,
        **_paging(page_no, pages, size, rows, total),
        "error": error,
        "filtered": form.active_count > 0,
        "query": _clean_query(params),
    }
    if is_partial(request, "audit-results"):
        response = render(request, "dashboard/_audit_results.html", context, status=status)
        clean = _clean_query(params)
        response["HX-Push-Url"] = reverse("dashboard:audit") + (f"?{clean}" if clean else "")
        return response
    return page(request, "dashboard/audit.html", context, status=status)


def csrf_failure(request, reason: str = ""):
    """CSRF refusals in the dashboard's words (settings.CSRF_FAILURE_VIEW)."""
    message = (
        "This form's security token is missing or has expired (it changes when you sign "
        "in again). Reload the page and repeat the action."
    )
    if request.htmx:
        response = render(
            request,
            "dashboard/_flash.html",
            {"flash": {"level": "error", "message": message}},
            status=403,
        )
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    return render(
        request,
        "dashboard/error.html",
        {"status": 403, "title": "The request was refused", "message": message},
        status=403,
    )
