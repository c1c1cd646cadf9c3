"""Operations from the pages: the confirmation dialog, the POST that runs a service, and
the answer in words (done, or refused and why, naming who got there first).

The tables below are the pages' vocabulary of operations; they are kept together here
until one operation registry replaces them.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.http import error_response, flash_fragment, is_partial, signed_in_view
from taskcenter.dashboard import detail, presenters
from taskcenter.dashboard.forms import ActionForm
from taskcenter.tasks import selectors, services
from taskcenter.tasks.errors import InvalidParameter, InvalidState, RollbackProhibited, TaskNotFound

dashboard_view = signed_in_view(access.require_view)

# --- The pages' operation tables ------------------------------------------------------------

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


# The subtask URL's segment of each subtask operation, and back.
URL_SEGMENTS = {"subtask_retry": "retry"}
SUBTASK_OPS_BY_SEGMENT = {"retry": "subtask_retry", "skip": "skip", "cancel": "cancel"}


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


ALREADY = {
    "RETRY": "retried this task",
    "ROLLBACK": "rolled this task back",
    "SUBTASK_RETRY": "retried “{subtask}”",
    "SKIP": "skipped “{subtask}”",
    "CANCEL": "canceled “{subtask}”",
}

# --- Views ---------------------------------------------------------------------------------------


@dashboard_view
@require_GET
def confirm(request, task_id: int):
    """The confirmation dialog of an operation (with a reason field), or why it is not
    possible now. Permission is checked here as well as on the POST."""
    op = request.GET.get("op", "")
    if op not in presenters.TASK_OPS + presenters.SUBTASK_OPS:
        raise InvalidParameter.because("op", f"'{op}' is not an operation.")
    task = access.get_operable_task_for_user(request.user, task_id, op)
    seen = parse.integer(request.GET, "seen", minimum=0, default=0) or 0
    subtask = None
    if op in presenters.SUBTASK_OPS:
        subtask_id = parse.integer(request.GET, "subtask", minimum=1)
        if subtask_id is None:
            raise InvalidParameter(
                "subtask", "Parameter 'subtask' is required for a subtask operation."
            )
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
        buttons = presenters.subtask_buttons(request.user, subtask, task)
        segment = URL_SEGMENTS.get(op, op)
        action_url = reverse("dashboard:subtask_operate", args=[task.pk, subtask.pk, segment])
    else:
        buttons = presenters.task_buttons(request.user, task)
        action_url = reverse("dashboard:task_operate", args=[task.pk, op])
    button = next((b for b in buttons if b.op == op), None)
    if button is None or not button.enabled:
        why = button.why if button else "The current state does not allow it."
        return _refusal_response(request, _refusal(task, subtask, seen, op, why))
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
    if op not in SUBTASK_OPS_BY_SEGMENT:
        raise Http404("Unknown operation")
    return _operate(request, task_id, SUBTASK_OPS_BY_SEGMENT[op], subtask_id)


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
        **detail.states_context(request, task, states),
        **detail.panel_context(request, task, selected),
    }
    return render(request, "dashboard/_after_action.html", context)


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


def _refusal_response(request, flash: dict):
    """The refusal as a flash message; without htmx, on the page the user came from."""
    if not is_partial(request):
        messages.warning(request, f"{flash['message']} {flash.get('detail', '')}".strip())
        return redirect(request.headers.get("Referer") or reverse("dashboard:task_list"))
    return flash_fragment(request, flash)
