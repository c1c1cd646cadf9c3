"""The Schedules pages: the plans, a plan with its runs and its skipped and missed fires,
the create/edit form with its cron builder and live preview, and the plan's actions
(enable, disable, run now, cancel, delete), each confirmed in a dialog.

Reads go through taskcenter.schedules.selectors and every write through a verb of
taskcenter.schedules.verbs, which also says which actions a plan offers and why one is
refused (taskcenter.dashboard.plan_actions words them); permissions (view; manage
schedules; run for "run now") and the user's clusters (a scoped user sees and manages the
plans of their clusters only: taskcenter.accounts.access) are checked here on the server
whatever the page shows.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter
from taskcenter.core.http import page, paging, signed_in_view
from taskcenter.dashboard import plan_actions, presenters
from taskcenter.dashboard.placement import PlacementField
from taskcenter.dashboard.schedule_forms import (
    NO_SCHEDULE,
    WEEKDAYS,
    ZONE_SUGGESTIONS,
    PlanForm,
    kept_item_inputs,
)
from taskcenter.schedules import jobs, selectors, verbs
from taskcenter.schedules.models import (
    CronType,
    FireOutcome,
    MisfirePolicy,
    OverlapPolicy,
    TriggerType,
)

PAGE_SIZE = 50
HISTORY_SHOWN = 50

dashboard_view = signed_in_view(access.require_view)


def _require(user) -> None:
    access.require_manage_schedules(user)


def _job_status(row) -> str:
    """The jobStatus the selectors annotate plans and contexts with."""
    return getattr(row, "job_status", "NONE")


def _triggers(items) -> list[str]:
    return [presenters.trigger_words(item) for item in items]


# --- List and detail -----------------------------------------------------------------------------


# --- Live: the list and a plan's page follow runs and others' changes ------------------------------
#
# Each page carries the cursor of what it shows (selectors.schedule_changes, as the task list
# carries task_changes'); its poll answers 204 while nothing changed, else the page again,
# of which the poller swaps in its live part (#schedule-live).


def _list_changes(request, cursor: str = ""):
    return selectors.schedule_changes(
        plans=selectors.plan_list(visible=access.visible_plans(request.user), params={}),
        runs=access.visible_tasks(request.user).filter(plan_fire__isnull=False),
        cursor=cursor,
    )


def _plan_changes(request, plan_id: int, cursor: str = ""):
    return selectors.schedule_changes(
        plans=access.visible_plans(request.user).filter(pk=plan_id),
        runs=access.visible_tasks(request.user).filter(plan_fire__plan_id=plan_id),
        cursor=cursor,
    )


def _live_url(name: str, args: list, cursor: str, **query) -> str:
    return f"{reverse(name, args=args)}?{urlencode({**query, 'c': cursor})}"


@dashboard_view
@require_GET
def schedule_list(request):
    return _list_page(request, _list_changes(request).cursor)


@dashboard_view
@require_GET
def schedule_list_live(request):
    """The list's poll: 204 while no plan, fire or visible run changed since `c`."""
    changes = _list_changes(request, request.GET.get("c", ""))
    if not changes.changed:
        return HttpResponse(status=204)
    return _list_page(request, changes.cursor)


def _list_page(request, cursor: str):
    page_no, size = parse.page(request.GET, default_size=PAGE_SIZE)
    plans_query = selectors.plan_list(visible=access.visible_plans(request.user), params={})
    total = plans_query.count()
    plans = list(plans_query[(page_no - 1) * size : page_no * size])
    items = selectors.plan_schedule_items(plan_ids=[plan.pk for plan in plans])
    # The last run as the viewer may see it: a scoped user is not told how another
    # cluster's run went.
    last_runs = selectors.plan_last_runs(plans=plans, visible=access.visible_tasks(request.user))
    rows = [
        {
            "plan": plan,
            "job": plan.job_class.rsplit(".", 1)[-1],  # the class name without its package
            "triggers": _triggers(items.get(plan.pk, [])),
            "last_run": last_runs.get(plan.pk),
            "badge": presenters.job_status_badge(_job_status(last_runs.get(plan.pk))),
        }
        for plan in plans
    ]
    context = {
        "nav": "schedules",
        "rows": rows,
        "total": total,
        **paging(page_no=page_no, size=size, rows=rows, total=total),
        "can_manage": access.can_manage_schedules(request.user),
        "live_url": _live_url("dashboard:schedule_list_live", [], cursor, page=page_no),
    }
    return page(request, "dashboard/schedule_list.html", context)


@dashboard_view
@require_GET
def schedule_detail(request, plan_id: int):
    return _detail_page(request, plan_id, _plan_changes(request, plan_id).cursor)


@dashboard_view
@require_GET
def schedule_detail_live(request, plan_id: int):
    """The plan page's poll: 204 while neither the plan, its fires nor its visible runs
    changed since `c`. A plan deleted meanwhile sends the page to the list, saying so."""
    if not access.visible_plans(request.user).filter(pk=plan_id).exists():
        messages.info(request, f"Plan {plan_id} was deleted.")
        return HttpResponseClientRedirect(reverse("dashboard:schedule_list"))
    changes = _plan_changes(request, plan_id, request.GET.get("c", ""))
    if not changes.changed:
        return HttpResponse(status=204)
    return _detail_page(request, plan_id, changes.cursor)


def _detail_page(request, plan_id: int, cursor: str):
    plan = selectors.plan_get(visible=access.visible_plans(request.user), plan_id=plan_id)
    items = selectors.plan_schedule_items(plan_ids=[plan.pk]).get(plan.pk, [])
    history = selectors.plan_history(
        plan_id=plan.pk, visible=access.visible_tasks(request.user), limit=HISTORY_SHOWN
    )
    runs = [
        {
            "fire": fire,
            "task": task,
            "badge": presenters.job_status_badge(_job_status(task)) if task else None,
        }
        for fire, task in history
        if fire.outcome == FireOutcome.STARTED
    ]
    not_run = [
        {
            "fire": fire,
            "tone": presenters.FIRE_OUTCOME_TONES[fire.outcome],
            "reason": presenters.audit_reason(fire.reason),
        }
        for fire, _ in history
        if fire.outcome != FireOutcome.STARTED
    ]
    last_run = selectors.plan_last_runs(
        plans=[plan], visible=access.visible_tasks(request.user)
    ).get(plan.pk)
    context = {
        "nav": "schedules",
        "plan": plan,
        "items": [(item, presenters.trigger_words(item)) for item in items],
        "badge": presenters.job_status_badge(_job_status(last_run)),
        "params_json": json.dumps(jobs.shown_params(plan.job_class, plan.job_params)),
        "runs": runs,
        "not_run": not_run,
        "buttons": plan_actions.plan_buttons(request.user, plan),
        "can_edit": plan_actions.edit_offered(request.user, plan),
        "live_url": _live_url("dashboard:schedule_detail_live", [plan.pk], cursor),
    }
    return page(request, "dashboard/schedule_detail.html", context)


# --- Create, edit and the live preview ------------------------------------------------------------


@dashboard_view
@require_http_methods(["GET", "POST"])
def schedule_new(request):
    _require(request.user)
    if request.method == "POST":
        data = request.POST
        form = PlanForm(data)
    else:  # Schedule on a job's page opens the form with that job chosen
        data = None
        form = PlanForm(job=parse.text(request.GET.get("job", ""), "job", maximum=200))
    return _form_page(request, form, _placement(request.user, data, None))


@dashboard_view
@require_http_methods(["GET", "POST"])
def schedule_edit(request, plan_id: int):
    access.get_operable_plan_for_user(request.user, plan_id)
    plan = selectors.plan_get(visible=access.visible_plans(request.user), plan_id=plan_id)
    items = selectors.plan_schedule_items(plan_ids=[plan.pk]).get(plan.pk, [])
    # The form shows the plan's first cron item and its first dependency item; its other
    # items are kept as they are.
    edited = next((item for item in items if item.trigger_type == TriggerType.CRON_JOB), None)
    follows = next((item for item in items if item.trigger_type == TriggerType.DEPENDENCY), None)
    kept = kept_item_inputs([item for item in items if item not in (edited, follows)])
    data = request.POST if request.method == "POST" else None
    form = PlanForm(data, plan=plan, item=edited, dependency=follows, kept_items=kept)
    return _form_page(request, form, _placement(request.user, data, plan))


def _placement(user, data, plan) -> PlacementField:
    """The plan's Cluster field: the clusters the user may manage plans on."""
    return PlacementField.of(
        clusters=access.plan_clusters(user),
        data=data,
        cluster_id=plan.cluster_id if plan else None,
        tenant_id=plan.tenant_id if plan else None,
    )


def _form_page(request, form: PlanForm, placement: PlacementField):
    status = 200
    if request.method == "POST":
        data = form.plan_input()
        if data is not None and placement.resolve() is not None:
            data.cluster_id, data.tenant_id = placement.cluster_id, placement.tenant_id
            data.placed = True
            try:
                access.require_plan_submit(request.user, data)
                submitted = verbs.plan_submit(actor=request.user, data=data)
            except InvalidParameter as exc:
                if exc.parameter in ("clusterId", "tenantId"):
                    placement.refuse(exc)
                else:
                    form.refuse(exc)
            else:
                verb = "saved" if form.plan else "created"
                messages.success(
                    request, f"Plan {submitted.plan.title or submitted.plan.pk} {verb}."
                )
                return redirect("dashboard:schedule_detail", plan_id=submitted.plan.pk)
        status = 400
    context = {
        "nav": "schedules",
        "form": form,
        "placement": placement,
        "plan": form.plan,
        "values": form.values,
        "builder": form.builder,
        "preview": form.preview(),
        "job_choices": job_choices(form.values["job_class"]),
        "cron_types": [NO_SCHEDULE, *CronType.values],
        "upstream_options": form.upstream_options(
            selectors.plan_list(visible=access.visible_plans(request.user), params={})
        ),
        "weekdays": WEEKDAYS,
        "zones": ZONE_SUGGESTIONS,
        "misfire_policies": MisfirePolicy.choices,
        "overlap_policies": OverlapPolicy.choices,
    }
    return page(request, "dashboard/schedule_form.html", context, status=status)


@dashboard_view
@require_GET
def schedule_preview(request):
    """The form's live preview (htmx): the expression, its words and next five fire times
    in the plan's zone, or Quartz's reason for refusing it."""
    _require(request.user)
    form = PlanForm(request.GET)
    return render(request, "dashboard/_cron_preview.html", {"preview": form.preview()})


def job_choices(chosen: str) -> dict[str, list[dict]]:
    """Every job the plan form may pick: each definition by its name, and each HENGSHI job
    class (an alias of a definition); a chosen name that is neither is kept, to be refused
    next to the field."""
    definitions = [{"name": spec.name, "text": spec.name} for spec in selectors.job_definitions()]
    classes = [
        # The class's short name: the select stays readable at 420 px (its title and the
        # help under it have the rest).
        {"name": job.name, "text": job.name.rsplit(".", 1)[-1]}
        for job in jobs.registered_job_classes()
    ]
    known = {choice["name"] for choice in definitions + classes}
    if chosen and chosen not in known:
        definitions.insert(0, {"name": chosen, "text": chosen})
    return {"Jobs": definitions, "HENGSHI job classes": classes}


@dashboard_view
@require_GET
def schedule_job_params(request):
    """The plan form's parameter fields for the job just chosen (htmx)."""
    _require(request.user)
    form = PlanForm(job=parse.text(request.GET.get("job_class", ""), "job_class", maximum=200))
    return render(request, "dashboard/_param_fields.html", {"params": form.params})


# --- Actions ------------------------------------------------------------------------------------


def _action(key: str) -> plan_actions.PlanActionWords:
    action = plan_actions.PLAN_ACTIONS.get(key)
    if action is None:
        raise InvalidParameter.because("action", f"{key!r} is not a plan action.")
    return action


@dashboard_view
@require_GET
def schedule_confirm(request, plan_id: int):
    """The confirmation dialog of an action (permission checked here and on the POST)."""
    action = _action(request.GET.get("action", ""))
    plan = access.get_operable_plan_for_user(request.user, plan_id, run=action.verb.needs_run)
    context = {
        "plan": plan,
        "action": action,
        "action_url": reverse("dashboard:schedule_action", args=[plan.pk, action.key]),
    }
    return render(request, "dashboard/_schedule_confirm.html", context)


@dashboard_view
@require_POST
def schedule_action(request, plan_id: int, key: str):
    """Run the action's verb; the verb refuses what its state does not allow."""
    action = _action(key)
    verb = action.verb
    access.get_operable_plan_for_user(request.user, plan_id, run=verb.needs_run)
    assert verb.act is not None  # every action with words is a one-click verb
    result = verb.act(plan_id=plan_id, actor=request.user)
    messages.success(request, action.done(plan_id, result))
    if key == "delete":
        return redirect("dashboard:schedule_list")
    return redirect("dashboard:schedule_detail", plan_id=plan_id)
