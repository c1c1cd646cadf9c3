"""The Jobs pages: every task definition with its parameters and recent runs, Schedule
(the plan form with the job chosen), and a Run form generated from its declared parameters
(taskcenter.dashboard.parameter_fields) that starts a task (run permission, checked on the
server whatever the page shows) on a cluster of the user's (taskcenter.dashboard.placement)
and opens its page."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from taskcenter.accounts import access
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter, NotPermitted, TaskCenterError
from taskcenter.core.http import page, signed_in_view
from taskcenter.dashboard import history_grid, presenters
from taskcenter.dashboard.parameter_fields import ParameterFields
from taskcenter.dashboard.placement import PlacementField
from taskcenter.schedules import selectors as schedule_selectors
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.parameters import InvalidParameters

RECENT_RUNS_LISTED = 3
RECENT_RUNS_DETAIL = 10

dashboard_view = signed_in_view(access.require_view)


def _parameters(spec) -> list[dict]:
    """The declared parameters as the table shows them (a secret's default never)."""
    return [
        {
            "name": param.name,
            "label": param.shown_label,
            "type": param.type,
            "default": "" if param.secret or param.default in (None, "") else param.default,
            "help": param.description,
            "required": param.required,
            "bounds": field.bounds,
            "choices": [str(choice) or "(none)" for choice in param.choices],
        }
        for param, field in ((f.spec, f) for f in ParameterFields(spec).fields)
    ]


def _runs(user, name: str, limit: int) -> list[dict]:
    visible = access.visible_tasks(user)
    return presenters.list_rows(
        schedule_selectors.definition_runs(visible=visible, name=name, limit=limit)
    )


def _history(user, name: str, params) -> dict:
    """The history grid's context: its filters (InvalidParameter for a bad one) and its
    table, in two queries over the runs `user` may see."""
    filters = history_grid.GridFilters.parse(params)
    runs = selectors.job_history_runs(
        visible=access.visible_tasks(user),
        name=name,
        limit=filters.runs,
        outcome=filters.outcome or None,
        cluster_id=filters.cluster,
        since=filters.since(timezone.now()),
    )
    cells = selectors.job_history_cells(task_ids=[run.pk for run in runs])
    prefix = reverse("dashboard:task_detail", args=[0])[: -len("0/")]
    clusters = selectors.cluster_names(clusters=access.visible_clusters(user))
    return {
        "filters": filters,
        "menus": history_grid.filter_menus(filters, clusters),
        "table": history_grid.render(runs, cells, task_prefix=prefix, job=name),
        "run_count": len(runs),
        "tones": presenters.TONE_ORDER,
    }


def _placed(user, placement: PlacementField):
    """The run's cluster and tenant, when they exist and are the user's to run on; else
    None, with the reason on the field."""
    where = placement.resolve()
    if where is None:
        return None
    try:
        access.run_placement(user, where[0], field="placement")
    except InvalidParameter as exc:
        placement.refuse(exc)
        return None
    return where


@dashboard_view
@require_GET
def job_list(request):
    definitions = [
        {
            "spec": spec,
            "parameters": _parameters(spec),
            "runs": _runs(request.user, spec.name, RECENT_RUNS_LISTED),
        }
        for spec in schedule_selectors.job_definitions()
    ]
    return page(
        request,
        "dashboard/job_list.html",
        {
            "nav": "jobs",
            "definitions": definitions,
            "can_run": access.can_run_jobs(request.user),
            "can_schedule": access.can_manage_schedules(request.user),
        },
    )


def _repeated(request, spec):
    """The task a Run again… opened this form for (`repeat` in the address, `repeat_of` in
    the form), one the user may see and of this job; None for a plain run."""
    data = request.POST if request.method == "POST" else request.GET
    raw = data.get("repeat_of" if request.method == "POST" else "repeat")
    if not raw:
        return None
    task = access.get_task_for_user(request.user, parse.identifier(raw, "repeat"))
    if task.definition is None or task.definition.name != spec.name:
        raise InvalidParameter.because("repeat", f"task #{task.pk} is not a run of {spec.name}.")
    return task


def _secrets(spec, values: dict) -> dict:
    """The values of `spec`'s secret parameters among `values`: a run again keeps them
    when their (never shown) field is left empty."""
    return {p.name: values[p.name] for p in spec.parameters if p.secret and p.name in values}


@dashboard_view
@require_http_methods(["GET", "POST"])
def job_detail(request, key: str):
    """The definition's page; a POST is its Run form: the task's page on success, else the
    form again with the messages next to the fields (400). With `repeat=<task id>` the
    form is that task's run again: its version, parameters, cluster and tenant."""
    spec = schedule_selectors.job_definition_get(key=key)
    repeat = _repeated(request, spec)
    if repeat is not None:
        spec = selectors.definition_version_or_current(
            name=spec.name, version=repeat.definition.version if repeat.definition else None
        )
    allowed = access.can_run_jobs(request.user)
    data = request.POST if request.method == "POST" else None
    values = kept = None
    if repeat is not None:
        values, kept = dict(repeat.parameters), _secrets(spec, repeat.parameters)
    form = ParameterFields(spec, data, values=values, kept=kept)
    placement = PlacementField.of(
        clusters=access.run_clusters(request.user),
        data=data,
        cluster_id=repeat.cluster_id if repeat is not None else None,
        tenant_id=repeat.tenant_id if repeat is not None else None,
    )
    status = 200
    if request.method == "POST":
        if not allowed:
            raise NotPermitted("You do not have permission to run jobs.")
        where = _placed(request.user, placement)
        parameters = form.check()
        if parameters is not None and where is not None:
            try:
                task = verbs.task_start(
                    definition_name=spec.name,
                    version=spec.version,
                    parameters=parameters,
                    creator=request.user,
                    cluster=where[0],
                    tenant=where[1],
                    repeat_of=repeat,
                )
            except InvalidParameters as exc:
                form.refuse(exc)
            except TaskCenterError as exc:
                form.error = exc.message
            else:
                return redirect("dashboard:task_detail", task_id=task.pk)
        status = 400
    context = {
        "nav": "jobs",
        "spec": spec,
        "parameters": _parameters(spec),
        "runs": _runs(request.user, spec.name, RECENT_RUNS_DETAIL),
        "history": _history(request.user, spec.name, request.GET),
        "form": form,
        "placement": placement,
        "can_run": allowed,
        "can_schedule": access.can_manage_schedules(request.user),
        "repeat": repeat,
    }
    return page(request, "dashboard/job_detail.html", context, status=status)
