"""Operations from the pages: the confirmation dialog, the POST that runs a service, and
the answer in words (done, or refused and why, naming who got there first).

What each operation is called, how it is confirmed and when it is refused come from the
operation registry (taskcenter.tasks.operations).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter, InvalidState, RollbackProhibited, TaskNotFound
from taskcenter.core.http import error_response, flash_fragment, is_partial, signed_in_view
from taskcenter.dashboard import detail, presenters
from taskcenter.dashboard.forms import ActionForm
from taskcenter.tasks import dispatch, operations, selectors
from taskcenter.tasks.operations import OperationSpec

dashboard_view = signed_in_view(access.require_view)

# --- Views ---------------------------------------------------------------------------------------


@dashboard_view
@require_GET
def confirm(request, task_id: int):
    """The confirmation dialog of an operation (with a reason field), or why it is not
    possible now. Permission is checked here as well as on the POST."""
    spec = operations.operation(request.GET.get("op", ""))
    if spec is None:
        raise InvalidParameter.because("op", f"'{request.GET.get('op', '')}' is not an operation.")
    task = access.get_operable_task_for_user(request.user, task_id, spec.key)
    seen = parse.integer(request.GET, "seen", minimum=0, default=0) or 0
    subtask = None
    if spec.on_subtask:
        subtask_id = parse.integer(request.GET, "subtask", minimum=1)
        if subtask_id is None:
            raise InvalidParameter(
                "subtask", "Parameter 'subtask' is required for a subtask operation."
            )
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
        buttons = presenters.subtask_buttons(request.user, subtask, task)
        args = [task.pk, subtask.pk, spec.url_segment]
        action_url = reverse("dashboard:subtask_operate", args=args)
    else:
        buttons = presenters.task_buttons(request.user, task)
        action_url = reverse("dashboard:task_operate", args=[task.pk, spec.url_segment])
    button = next((b for b in buttons if b.op == spec.key), None)
    if button is None or not button.enabled:
        why = button.why if button else "The current state does not allow it."
        return _refusal_response(request, _refusal(task, subtask, seen, spec, why))
    confirmation = spec.confirmation_for(subtask)
    fmt = {
        "task": task.pk,
        "name": task.name,
        "subtask": subtask.name if subtask else "",
        "next_run": (subtask.run_time + 1) if subtask else 0,
    }
    context = {
        "op": spec.key,
        "title": confirmation.title.format(**fmt),
        "body": confirmation.body.format(**fmt),
        "confirm_label": confirmation.button,
        "danger": button.danger,
        "reason_required": spec.reason_required,
        "action_url": action_url,
        "seen": seen,
        "task": task,
        "subtask": subtask,
    }
    return render(request, "dashboard/_confirm.html", context)


@dashboard_view
def task_operate(request, task_id: int, op: str):
    spec = operations.task_operation_at(op)
    if spec is None:
        raise Http404("Unknown operation")
    return _operate(request, task_id, spec, None)


@dashboard_view
def subtask_operate(request, task_id: int, subtask_id: int, op: str):
    spec = operations.subtask_operation_at(op)
    if spec is None:
        raise Http404("Unknown operation")
    return _operate(request, task_id, spec, subtask_id)


def _operate(request, task_id: int, spec: OperationSpec, subtask_id: int | None):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task = access.get_operable_task_for_user(request.user, task_id, spec.key)
    subtask = None
    if subtask_id is not None:
        subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    form = ActionForm(request.POST, reason_required=spec.reason_required)
    if not form.is_valid():
        message = " ".join(str(m) for errors in form.errors.values() for m in errors)
        return error_response(request, 400, message)
    reason = form.cleaned_data["reason"]
    seen = form.cleaned_data["seen"] or 0
    try:
        with dispatch.collect_queued() as queued:
            spec.run(
                task_id=task.pk,
                subtask_id=subtask.pk if subtask else None,
                actor=request.user,
                reason=reason,
            )
        done = spec.done.format(task=task.pk, subtask=subtask.name if subtask else "")
        flash = {"level": "success", "message": done}
        if queued:  # done, but the workers get it once the broker answers again
            flash = {"level": "warning", "message": done, "detail": dispatch.queued_notice(queued)}
    except (InvalidState, RollbackProhibited) as exc:
        flash = _refusal(task, subtask, seen, spec, exc.message)
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


def _refusal(task, subtask, seen: int, spec: OperationSpec, message: str) -> dict:
    """A refusal in words: who got there first, when we know, and the service's message."""
    for operation in selectors.task_operations_after(task_id=task.pk, after_id=seen):
        if subtask is not None and operation.subtask_id not in (None, subtask.pk):
            continue
        done_first = operations.BY_AUDIT_ACTION.get(operation.action)
        if done_first is None:
            continue
        name = operation.subtask.name if operation.subtask else ""
        # A flash message is plain text, which the page's script does not put in the
        # reader's zone: the time says its zone.
        when = timezone.localtime(operation.created_at).strftime("%H:%M:%S %Z")
        return {
            "level": "warning",
            "message": f"Not done: {operation.actor_name} already "
            f"{done_first.already.format(subtask=name)} at {when}.",
            "detail": message,
        }
    return {"level": "warning", "message": f"{spec.label} is not possible now.", "detail": message}


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
