"""The task verbs from the pages: the confirmation dialog, the POST that does the verb,
and the answer in words (done, or refused and why, naming who got there first).

Access is checked once per request, and the task it returns is what the rest of the
request works on. The POST answers with the flash message only, and tells the page that
the task changed (the `taskChanged` event): the page's live poll then renders the header,
the selected subtask and the states, so each region has one renderer
(dashboard/_task_live.html). Without htmx, the POST redirects to the task's page with the
message.

What code needs of a verb (permission, reason required, refusal, which states offer it)
is the verb's (taskcenter.tasks.verbs); how the pages word it is verb_words'.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from django_htmx.http import trigger_client_event

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import (
    InvalidParameter,
    InvalidState,
    NotPermitted,
    RollbackProhibited,
    TaskNotFound,
)
from taskcenter.core.http import error_response, flash_fragment, is_partial, signed_in_view
from taskcenter.dashboard.forms import ActionForm
from taskcenter.dashboard.presenters import parameter_rows
from taskcenter.dashboard.verb_words import WORDS
from taskcenter.tasks import enqueue, selectors, verbs
from taskcenter.tasks.verbs import Verb

dashboard_view = signed_in_view(access.require_view)

# The event an answer sends the page: its live poll listens for it and renders at once.
TASK_CHANGED = "taskChanged"

# --- Views ---------------------------------------------------------------------------------------


@dashboard_view
@require_GET
def confirm(request, task_id: int):
    """The confirmation dialog of a verb (with a reason field), or why it is not possible
    now. Permission is checked here as well as on the POST."""
    verb = verbs.verb(request.GET.get("op", ""))
    if verb is None:
        raise InvalidParameter.because("op", f"'{request.GET.get('op', '')}' is not an operation.")
    task = access.get_operable_task_for_user(request.user, task_id, verb.key)
    seen = parse.integer(request.GET, "seen", minimum=0, default=0) or 0
    subtask = None
    if verb.on_subtask:
        subtask_id = parse.integer(request.GET, "subtask", minimum=1)
        if subtask_id is None:
            raise InvalidParameter(
                "subtask", "Parameter 'subtask' is required for a subtask operation."
            )
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
        args = [task.pk, subtask.pk, verb.url_segment]
        action_url = reverse("dashboard:subtask_operate", args=args)
    else:
        action_url = reverse("dashboard:task_operate", args=[task.pk, verb.url_segment])
    offered = verb.is_offered(task, subtask)
    refused = verb.refused(task, subtask, actor=request.user) if offered else None
    if not offered or refused is not None:
        why = refused.why if refused else "The current state does not allow it."
        return _refusal_response(request, _refusal(task, subtask, seen, verb, why))
    confirmation = WORDS[verb.key].confirmation_for(subtask)
    fmt = {
        "task": task.pk,
        "name": task.name,
        "subtask": subtask.name if subtask else "",
        "next_run": (subtask.run_time + 1) if subtask else 0,
    }
    context = {
        "op": verb.key,
        "title": confirmation.title.format(**fmt),
        "body": confirmation.body.format(**fmt),
        "confirm_label": confirmation.button,
        "danger": verb.danger,
        "reason_required": verb.reason_required,
        "action_url": action_url,
        "seen": seen,
        "task": task,
        "subtask": subtask,
    }
    if verb.actor_refusal is not None:  # an approval: the parameters to judge by
        context["parameters"] = parameter_rows(selectors.shown_parameters(task))
    return render(request, "dashboard/_confirm.html", context)


@dashboard_view
def task_operate(request, task_id: int, op: str):
    verb = verbs.task_verb_at(op)
    if verb is None:
        raise Http404("Unknown operation")
    return _perform(request, task_id, verb, None)


@dashboard_view
def subtask_operate(request, task_id: int, subtask_id: int, op: str):
    verb = verbs.subtask_verb_at(op)
    if verb is None:
        raise Http404("Unknown operation")
    return _perform(request, task_id, verb, subtask_id)


def _perform(request, task_id: int, verb: Verb, subtask_id: int | None):
    """Do the verb; the verb itself reads the subtask under the task's lock and asks its
    refusal predicate there, once."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task = access.get_operable_task_for_user(request.user, task_id, verb.key)
    form = ActionForm(request.POST, reason_required=verb.reason_required)
    if not form.is_valid():
        message = " ".join(str(m) for errors in form.errors.values() for m in errors)
        return error_response(request, 400, message)
    reason = form.cleaned_data["reason"]
    seen = form.cleaned_data["seen"] or 0
    try:
        with enqueue.collect_queued() as queued:
            changed = verb.perform(task, subtask_id, actor=request.user, reason=reason)
        name = changed.name if verb.on_subtask else ""
        done = WORDS[verb.key].done.format(task=task.pk, subtask=name)
        flash = {"level": "success", "message": done}
        if queued:  # done, but the workers get it once the broker answers again
            flash = {"level": "warning", "message": done, "detail": enqueue.queued_notice(queued)}
    except (InvalidState, RollbackProhibited) as exc:
        flash = _refusal(task, subtask_id, seen, verb, exc.message)
    except NotPermitted as exc:  # the verb's rules about this person (an approval's)
        label = WORDS[verb.key].label
        flash = {"level": "warning", "message": f"{label}: not by you.", "detail": exc.message}
    except TaskNotFound as exc:
        return error_response(request, 404, exc.message)

    if not is_partial(request):
        getattr(messages, flash["level"])(
            request, flash["message"] + (f" {flash['detail']}" if flash.get("detail") else "")
        )
        url = reverse("dashboard:task_detail", args=[task.pk])
        return redirect(f"{url}?subtask={subtask_id}" if subtask_id else url)
    # Done or refused, the task may have changed (by this verb or by whoever got there
    # first): the page's live poll shows its state now.
    return trigger_client_event(flash_fragment(request, flash), TASK_CHANGED)


def _refusal(task, subtask, seen: int, verb: Verb, message: str) -> dict:
    """A refusal in words: who got there first, when we know, and the verb's message.
    `subtask` is the subtask or its id (None for a task verb)."""
    subtask_id = getattr(subtask, "pk", subtask)
    for entry in selectors.task_audit_entries_after(task_id=task.pk, after_id=seen):
        if subtask_id is not None and entry.subtask_id not in (None, subtask_id):
            continue
        done_first = verbs.BY_AUDIT_ACTION.get(entry.action)
        if done_first is None:
            continue
        name = entry.subtask.name if entry.subtask else ""
        # A flash message is plain text, which the page's script does not put in the
        # reader's zone: the time says its zone.
        when = timezone.localtime(entry.created_at).strftime("%H:%M:%S %Z")
        already = WORDS[done_first.key].already.format(subtask=name)
        return {
            "level": "warning",
            "message": f"Not done: {entry.actor_name} already {already} at {when}.",
            "detail": message,
        }
    label = WORDS[verb.key].label
    return {"level": "warning", "message": f"{label} is not possible now.", "detail": message}


def same_origin_or(request, url: str | None, fallback: str) -> str:
    """`url` when it points into this site (a Referer can name any site), else `fallback`'s
    URL: a redirect never leads elsewhere."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(fallback)


def _refusal_response(request, flash: dict):
    """The refusal as a flash message; without htmx, on the page the user came from."""
    if not is_partial(request):
        messages.warning(request, f"{flash['message']} {flash.get('detail', '')}".strip())
        return redirect(
            same_origin_or(request, request.headers.get("Referer"), "dashboard:task_list")
        )
    return flash_fragment(request, flash)
