"""Bulk operations from the task list: the dry run page (every selected task done or
refused and why, counted by outcome, one confirmation with one reason), and the
operation's page with its live progress, its stop button and its audit link.

The selection comes from the list's checkboxes (`ids`) or from "all matching this
filter" (`all=1` with the list's query in `query`). Access shapes it
(taskcenter.accounts.access.bulk_selection); the judgement and the work are the verbs'
(taskcenter.tasks.verbs.bulk).
"""

from __future__ import annotations

from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter, TaskCenterError
from taskcenter.core.http import page, signed_in_view
from taskcenter.dashboard.forms import ActionForm
from taskcenter.dashboard.verb_words import WORDS
from taskcenter.tasks import verbs
from taskcenter.tasks.models import BulkOperation

dashboard_view = signed_in_view(access.require_view)

# How many tasks of each kind the dry run lists by id (the counts cover them all).
LISTED = 200
# What each bulk operation is called, by the name its URL gives.
TITLES = {"retry": "Retry", "rollback": "Roll back", "cancel": "Cancel"}
# htmx stops polling an element whose answer has this status.
STOP_POLLING = 286


def _selection(request, operation: str, data: QueryDict):
    """The selection of the list's form (ids, or all matching its query) and how to
    carry it on to the confirmation (hidden fields)."""
    if operation not in verbs.BULK_VERBS:
        raise InvalidParameter.because("operation", f"'{operation}' is not a bulk operation.")
    verb_key = verbs.BULK_VERBS[operation]
    query = data.get("query", "")
    if data.get("all") == "1":
        params = parse.without_nul(QueryDict(query))
        selection = access.bulk_selection(request.user, verb_key, params=params)
        carried = [("all", "1"), ("query", query)]
    else:
        # Checkboxes send one `ids` each; the confirmation sends them back comma-separated.
        raw = ",".join(data.getlist("ids"))
        ids = parse.integer_list({"ids": raw}, "ids", limit=verbs.BULK_MAX + 1)
        if not ids:
            raise InvalidParameter.because(
                "ids", "select at least one task, or all tasks matching the filter."
            )
        selection = access.bulk_selection(request.user, verb_key, ids=ids)
        carried = [("query", query), ("ids", ",".join(map(str, ids)))]
    return verb_key, selection, carried


@dashboard_view
@require_http_methods(["GET", "POST"])
def bulk_dry_run(request, operation: str):
    """GET: the dry run of `operation` on the selection. POST: its confirmation, which
    starts the operation and opens its page (or shows the dry run again, with why not)."""
    data = request.POST if request.method == "POST" else request.GET
    verb_key, selection, carried = _selection(request, operation, data)
    verb = verbs.VERBS[verb_key]
    form = ActionForm(
        data if request.method == "POST" else None, reason_required=verb.reason_required
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            bulk, _ = verbs.bulk_start(
                selection, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except TaskCenterError as exc:
            error = exc.message
        else:
            return redirect("dashboard:bulk_detail", bulk_id=bulk.pk)
    try:
        judgement = verbs.bulk_judge(selection)
    except InvalidParameter as exc:
        return page(
            request,
            "dashboard/bulk_dry_run.html",
            {
                "nav": "tasks",
                "operation": operation,
                "title": TITLES[operation],
                "too_many": exc.message,
                "back_url": _back(data),
            },
            status=400,
        )
    context = {
        "nav": "tasks",
        "operation": operation,
        "title": TITLES[operation],
        "words": WORDS[verb_key],
        "verb": verb,
        "judgement": judgement,
        "reasons": judgement.counts(),
        "accepted_listed": judgement.accepted[:LISTED],
        "accepted_more": max(0, len(judgement.accepted) - LISTED),
        "refused_listed": judgement.refused[:LISTED],
        "refused_more": max(0, len(judgement.refused) - LISTED),
        "carried": carried,
        "form": form,
        "error": error or _form_error(form),
        "back_url": _back(data),
        "by_filter": data.get("all") == "1",
    }
    status = 400 if request.method == "POST" else 200
    return page(request, "dashboard/bulk_dry_run.html", context, status=status)


def _form_error(form: ActionForm) -> str:
    if not form.is_bound or form.is_valid():
        return ""
    return " ".join(str(message) for messages in form.errors.values() for message in messages)


def _back(data: QueryDict) -> str:
    query = data.get("query", "")
    return reverse("dashboard:task_list") + (f"?{query}" if query else "")


@dashboard_view
@require_GET
def bulk_detail(request, bulk_id: str):
    bulk = access.get_bulk_for_user(request.user, bulk_id)
    context = {"nav": "tasks", **_progress_context(request, bulk)}
    return page(request, "dashboard/bulk_detail.html", context)


@dashboard_view
@require_GET
def bulk_progress(request, bulk_id: str):
    """The progress region, polled every second until the operation has finished."""
    bulk = access.get_bulk_for_user(request.user, bulk_id)
    context = _progress_context(request, bulk)
    response = render(request, "dashboard/_bulk_progress.html", context)
    if context["progress"].finished:
        response.status_code = STOP_POLLING
    return response


@dashboard_view
@require_POST
def bulk_stop(request, bulk_id: str):
    bulk = access.get_stoppable_bulk_for_user(request.user, bulk_id)
    verbs.bulk_stop(bulk=bulk, actor=request.user, reason=request.POST.get("reason", "")[:2000])
    if request.htmx:
        context = _progress_context(request, bulk)
        response = render(request, "dashboard/_bulk_progress.html", context)
        response.status_code = STOP_POLLING
        return response
    return redirect("dashboard:bulk_detail", bulk_id=bulk.pk)


def _progress_context(request, bulk: BulkOperation) -> dict:
    progress = verbs.bulk_progress(bulk=bulk)
    names = {key: name for name, key in verbs.BULK_VERBS.items()}
    operation = names.get(bulk.verb, bulk.verb)
    return {
        "bulk": bulk,
        "operation": operation,
        "title": TITLES.get(operation, operation),
        "progress": progress,
        "segments": [
            ("done", "Done", progress.done, progress.percent(progress.done)),
            ("refused", "Refused", progress.refused, progress.percent(progress.refused)),
            ("failed", "Failed", progress.failed, progress.percent(progress.failed)),
            ("stopped", "Left (stopped)", progress.stopped, progress.percent(progress.stopped)),
        ],
        "settled": progress.total - progress.pending,
        "problems": verbs.bulk_problems(bulk=bulk),
        "stop_refused": verbs.bulk_stop_refusal(bulk),
        "can_stop": access.can_stop_bulk(request.user, bulk),
        "audit_url": f"{reverse('dashboard:audit')}?bulk={bulk.pk}",
    }
