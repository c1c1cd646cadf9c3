"""The HENGSHI schedules and contexts API (seed 003): parse -> access -> verb or
selector -> representation, answered in HENGSHI's envelope (taskcenter.api.hengshi).

A context is a task instance that a plan started (its id is the task's id, and so are
its jobLogId and jobResultId); its logs and results are per subtask, the subtask id being
the subKey. Waits (POST with sync: true, logs and results with block=true) are bounded by
settings.TASKCENTER_CONTEXT_WAIT_SECONDS (default 30 s); a wait that runs out answers with
what exists and done: false. Behind `serve`'s web server the views hand their waits to its
event loop (taskcenter.api.waits), which answers through `answer_after_wait`.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from taskcenter.accounts import access
from taskcenter.api import waits
from taskcenter.api.hengshi import hengshi_view, ok, user_data, when
from taskcenter.core import params as parse
from taskcenter.core.errors import TaskCenterError
from taskcenter.schedules import inputs, selectors, verbs
from taskcenter.schedules import status as job_status
from taskcenter.schedules.models import (
    CronType,
    MisfirePolicy,
    OverlapPolicy,
    Plan,
    PlanItem,
    TriggerType,
)
from taskcenter.tasks import selectors as task_selectors
from taskcenter.tasks.models import TaskInstance

LOG_BYTES_MAX = 1024 * 1024  # per subKey in one answer
WAIT_POLL_SECONDS = 0.5


def wait_limit() -> float:
    return float(settings.TASKCENTER_CONTEXT_WAIT_SECONDS)


# --- Permissions: the plans of the caller's clusters only (taskcenter.accounts.access) -----------


def _operable_plan(user, plan_id: int, *, run: bool = False) -> Plan:
    return access.get_operable_plan_for_user(user, plan_id, run=run)


# --- Representations ----------------------------------------------------------------------------


def item_data(item: PlanItem) -> dict:
    data = item.snapshot()
    data.update(
        nextStartAt=when(item.next_fire_at),
        createdAt=when(item.created_at),
        createdBy=item.created_by_id,
        updatedAt=when(item.updated_at),
        updatedBy=item.updated_by_id,
    )
    return data


def _cost(task: TaskInstance | None) -> int | None:
    if task is None or task.start_time is None or task.finish_time is None:
        return None
    return int((task.finish_time - task.start_time).total_seconds())


def _frequency(items: list[PlanItem]) -> str | None:
    for item in items:
        if item.trigger_type == TriggerType.CRON_JOB:
            return item.cron_type
    return TriggerType.DEPENDENCY if items else None


def plan_data(
    plan: Plan,
    items: list[PlanItem],
    last_run: TaskInstance | None,
    context_id: int | None = None,
) -> dict:
    creator = plan.created_by
    return {
        "id": plan.pk,
        "entityGroup": plan.entity_group,
        "entityKey": plan.entity_key,
        "enabled": plan.enabled,
        "planItems": [item_data(item) for item in items],
        "execDetail": plan.exec_detail,
        "title": plan.title,
        "createdAt": when(plan.created_at),
        "createdBy": plan.created_by_id,
        "updatedAt": when(plan.updated_at),
        "updatedBy": plan.updated_by_id,
        "entityCreatedBy": plan.created_by_id,
        "entityCreatedByName": creator.get_username() if creator else None,
        "execFrequency": _frequency(items),
        "startAt": when(last_run.start_time) if last_run else None,
        "stopAt": when(last_run.finish_time) if last_run else None,
        "jobStatus": getattr(plan, "job_status", None) or "NONE",
        "costTime": _cost(last_run),
        "contextId": context_id,
        "nextStartAt": when(getattr(plan, "next_start_at", None)),
        "misfirePolicy": plan.misfire_policy,
        "overlapPolicy": plan.overlap_policy,
        "clusterId": plan.cluster_id,
        "tenantId": plan.tenant_id,
    }


def _plans_data(plans: list[Plan]) -> list[dict]:
    items = selectors.plan_schedule_items(plan_ids=[plan.pk for plan in plans])
    runs = selectors.plan_last_runs(plans=plans)
    return [plan_data(plan, items.get(plan.pk, []), runs.get(plan.pk)) for plan in plans]


def _plan_answer(user, plan_id: int):
    plan = selectors.plan_get(visible=access.visible_plans(user), plan_id=plan_id)
    return ok(_plans_data([plan])[0])


def context_data(task: TaskInstance) -> dict:
    fire = task.plan_fire
    scheduled = when(fire.fire_time)
    return {
        "id": task.pk,
        "planId": fire.plan_id,
        "planItemId": fire.item_id,
        "entityGroup": fire.entity_group,
        "entityKey": fire.entity_key,
        "title": fire.title,
        "jobStatus": task.job_status,  # type: ignore[attr-defined]  # annotated by the selector
        "createdAt": when(task.create_time),
        "createdBy": task.creator_id,
        # The seed's table says scheduledAt and its sample scheduleAt: both are sent.
        "scheduledAt": scheduled,
        "scheduleAt": scheduled,
        "startAt": when(task.start_time),
        "stopAt": when(task.finish_time),
        "costTime": _cost(task),
        "planItem": fire.plan_item,
        "jobLogId": task.pk,
        "jobResultId": task.pk,
        "execDetail": fire.exec_detail,
        "entityCreatedByName": task.creator.get_username() if task.creator else None,
        "reason": fire.reason,
        "clusterId": task.cluster_id,
        "tenantId": task.tenant_id,
    }


# --- Schema pieces: what each parameter and body accepts, as the parsers accept it ---------------

_ANSWER = OpenApiResponse(OpenApiTypes.OBJECT, description="HENGSHI's envelope.")
_ERRORS = {code: _ANSWER for code in (400, 401, 403, 404, 405, 429)}
# Ids are ASCII digits from 1 to 2**63-1 (core.params.identifier).
_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": parse.INT64_MAX}
SCHEDULE_ID = OpenApiParameter("scheduleId", _ID, OpenApiParameter.PATH)
CONTEXT_ID = OpenApiParameter("contextId", _ID, OpenApiParameter.PATH)
_JOB_STATUS = {"type": "string", "enum": list(job_status.JOB_STATUSES)}
_FILTERS = [
    OpenApiParameter("entityKey", str),
    OpenApiParameter("entityGroup", str),
    OpenApiParameter("q", str, description="Searches title, entityKey and entityGroup."),
    OpenApiParameter(
        "jobStatusList",
        {"type": "array", "items": _JOB_STATUS},
        explode=False,
        description="Comma-separated jobStatus values.",
    ),
]
_PAGING = [
    OpenApiParameter(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": parse.INT64_MAX},
        description="Default 0; given once.",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": selectors.LIST_MAX},
        description=f"Default 10, at most {selectors.LIST_MAX}; given once.",
    ),
    OpenApiParameter(
        "entityCreatedByList",
        {"type": "array", "items": _ID, "maxItems": selectors.USER_LIST_MAX},
        explode=False,
        description="Comma-separated user ids.",
    ),
]
_BLOCK = OpenApiParameter(
    "block", OpenApiTypes.BOOL, description="Wait (bounded) until the run ends; default true."
)


# Text: no NUL, no lone surrogate (core.text_input), and something besides blanks.
_TEXT = "^[^\\u0000\\ud800-\\udfff]*[^\\s\\u0000\\ud800-\\udfff][^\\u0000\\ud800-\\udfff]*$"


def _text(max_length: int, **extra) -> dict:
    """A text field: not blank, at most `max_length` characters (inputs._text)."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": _TEXT, **extra}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


_ENTITY = {
    "entityGroup": _text(inputs.ENTITY_GROUP_MAX),
    "entityKey": _text(inputs.ENTITY_KEY_MAX),
}
_JOB = {"type": "object", "required": ["entityGroup", "entityKey"], "properties": _ENTITY}
_ITEM_ID = _nullable({"type": "integer", "format": "int64"})
_ITEM = {
    "description": "A CRON_JOB item needs cronDesc (Quartz cron); a DEPENDENCY item "
    "triggerByJobs; a ONCE item runs the job now.",
    "oneOf": [
        {
            "type": "object",
            "required": ["triggerType", "cronDesc"],
            "properties": {
                "id": _ITEM_ID,
                "triggerType": {"type": "string", "enum": [TriggerType.CRON_JOB]},
                "cronDesc": _text(255),
                "cronType": _nullable({"type": "string", "enum": [*CronType.values, ""]}),
                "timeZone": _nullable({"type": "string", "maxLength": 64}),
            },
        },
        {
            "type": "object",
            "required": ["triggerType", "triggerByJobs"],
            "properties": {
                "id": _ITEM_ID,
                "triggerType": {"type": "string", "enum": [TriggerType.DEPENDENCY]},
                "triggerByJobs": {"type": "array", "minItems": 1, "items": _JOB},
            },
        },
        {
            "type": "object",
            "required": ["triggerType"],
            "properties": {
                "id": _ITEM_ID,
                "triggerType": {"type": "string", "enum": [TriggerType.ONCE]},
            },
        },
    ],
}
_ITEMS = _nullable({"type": "array", "maxItems": inputs.PLAN_ITEMS_MAX, "items": _ITEM})
_FLAG = _nullable({"type": "boolean"})
_EXEC_DETAIL = _nullable(
    {
        "type": "object",
        "required": ["jobClass"],
        "description": "The job class and its parameters, as the job class declares them.",
        "properties": {
            "jobClass": _text(255),
            "jobParams": _nullable({"type": "object"}),
            "retryTimes": _nullable(
                {"type": "integer", "minimum": 0, "maximum": inputs.RETRY_TIMES_MAX}
            ),
        },
    }
)
PLAN_BODY = {
    "application/json": {
        "type": "object",
        "required": ["entityGroup", "entityKey"],
        "properties": {
            **_ENTITY,
            "execDetail": _EXEC_DETAIL,
            "planItems": _ITEMS,
            "enabled": _FLAG,
            "sync": _FLAG,
            "misfirePolicy": _nullable({"type": "string", "enum": list(MisfirePolicy.values)}),
            "overlapPolicy": _nullable({"type": "string", "enum": list(OverlapPolicy.values)}),
            "clusterId": _nullable(_ID),
            "tenantId": _nullable(_ID),
        },
    }
}
PLAN_CHANGE_BODY = {
    "application/json": {
        "type": "object",
        "nullable": True,
        "properties": {"planItems": _ITEMS, "enabled": _FLAG},
    }
}
ENTITY_BODY = {
    "application/json": {
        "type": "object",
        "required": ["entityGroup", "entityKey"],
        "properties": _ENTITY,
    }
}


def _schema(operation_id: str, summary: str, **kwargs):
    kwargs.setdefault("responses", {200: _ANSWER, **_ERRORS})
    kwargs.setdefault("request", None)
    return extend_schema(
        operation_id=operation_id, summary=summary, tags=["schedules (HENGSHI)"], **kwargs
    )


# --- Plans ---------------------------------------------------------------------------------------


@_schema("listSchedules", "List plans", methods=["GET"], parameters=_PAGING + _FILTERS)
@_schema(
    "submitSchedule",
    "Create or update a job's plan, or run it now (ONCE items)",
    methods=["POST"],
    request=PLAN_BODY,
)
@hengshi_view(["GET", "POST"])
def schedules(request):
    if request.method == "POST":
        return _submit(request)
    access.require_view(request.user)
    params = parse.single_valued(request.query_params)
    offset, limit = selectors.page(params)
    plans = selectors.plan_list(visible=access.visible_plans(request.user), params=params)
    rows, total = selectors.page_and_total(plans, offset, limit)
    return ok(_plans_data(rows), totalHits=total, offset=offset)


def _submit(request):
    data = inputs.plan_input(request.data)
    runs_now = any(item.trigger_type == TriggerType.ONCE for item in data.items)
    access.require_view(request.user)
    access.require_manage_schedules(request.user, run=runs_now)
    access.require_plan_submit(request.user, data, run=runs_now)
    if waits.client_gone(request):
        return Response(status=499)  # the client left before its request was taken: no run
    submitted = verbs.plan_submit(actor=request.user, data=data)
    context_id = submitted.context_ids[0] if submitted.context_ids else None
    if data.sync and context_id is not None:
        if waits.edge_waits(request):
            wait = waits.Wait(
                user_id=request.user.pk,
                context_id=context_id,
                kind="submit",
                plan_id=submitted.plan.pk,
                context_ids=tuple(submitted.context_ids),
                item_ids=tuple(item.pk for item in submitted.items),
            )
            waits.hand_over(request, wait)
        else:
            _wait_until_done(context_id)
    answer = _submit_answer(
        request.user, submitted.plan.pk, submitted.items, context_id, submitted.context_ids
    )
    return ok(answer)


def _submit_answer(user, plan_id: int, items, context_id: int | None, context_ids) -> dict:
    plan = selectors.plan_get(visible=access.visible_plans(user), plan_id=plan_id)
    runs = selectors.plan_last_runs(plans=[plan])
    answer = plan_data(plan, items, runs.get(plan.pk), context_id)
    if len(context_ids) > 1:
        answer["contextIds"] = list(context_ids)
    return answer


@_schema("scheduleUsers", "The users who created plans", parameters=_FILTERS)
@hengshi_view(["GET"])
def schedule_users(request):
    access.require_view(request.user)
    params = parse.single_valued(request.query_params)
    users = selectors.plan_users(visible=access.visible_plans(request.user), params=params)
    return ok([user_data(user) for user in users])


@_schema("getSchedule", "Get a plan", methods=["GET"], parameters=[SCHEDULE_ID])
@_schema(
    "updateSchedule",
    "Replace a plan's items as a whole and/or enable or disable it",
    methods=["PUT"],
    parameters=[SCHEDULE_ID],
    request=PLAN_CHANGE_BODY,
)
@_schema(
    "deleteSchedule",
    "Delete a plan (its contexts stay)",
    methods=["DELETE"],
    parameters=[SCHEDULE_ID],
)
@hengshi_view(["GET", "PUT", "DELETE"])
def schedule(request, scheduleId):
    plan_id = parse.identifier(scheduleId, "scheduleId")
    if request.method == "GET":
        access.require_view(request.user)
        return _plan_answer(request.user, plan_id)
    _operable_plan(request.user, plan_id)
    if request.method == "DELETE":
        verbs.plan_delete(plan_id=plan_id, actor=request.user)
        return ok()
    change = inputs.plan_change_input(request.data)
    verbs.plan_update(plan_id=plan_id, actor=request.user, change=change)
    return _plan_answer(request.user, plan_id)


@_schema("enableSchedule", "Enable a plan (no burst of past times)", parameters=[SCHEDULE_ID])
@hengshi_view(["POST"])
def schedule_enable(request, scheduleId):
    plan_id = parse.identifier(scheduleId, "scheduleId")
    _operable_plan(request.user, plan_id)
    verbs.plan_enable(plan_id=plan_id, actor=request.user)
    return ok()


@_schema("disableSchedule", "Disable a plan", parameters=[SCHEDULE_ID])
@hengshi_view(["POST"])
def schedule_disable(request, scheduleId):
    plan_id = parse.identifier(scheduleId, "scheduleId")
    _operable_plan(request.user, plan_id)
    verbs.plan_disable(plan_id=plan_id, actor=request.user)
    return ok()


@_schema("cancelSchedule", "Stop the plan's running contexts", parameters=[SCHEDULE_ID])
@hengshi_view(["PUT"])
def schedule_cancel(request, scheduleId):
    plan_id = parse.identifier(scheduleId, "scheduleId")
    _operable_plan(request.user, plan_id)
    verbs.plan_cancel(plan_id=plan_id, actor=request.user)
    return ok()


@_schema(
    "cancelScheduleByEntity",
    "Stop the running contexts of the plan of {entityGroup, entityKey}",
    request=ENTITY_BODY,
)
@hengshi_view(["POST"])
def schedule_cancel_by_entity(request):
    entity_group, entity_key = inputs.entity_input(request.data)
    access.require_view(request.user)
    plan = selectors.plan_get_by_entity(
        visible=access.visible_plans(request.user), entity_group=entity_group, entity_key=entity_key
    )
    _operable_plan(request.user, plan.pk)
    verbs.plan_cancel(plan_id=plan.pk, actor=request.user)
    return ok()


# --- Contexts ------------------------------------------------------------------------------------


def _context_filters():
    return [*_FILTERS, OpenApiParameter("jobStatus", _JOB_STATUS)]


@_schema(
    "contexts", "List contexts (runs started by plans)", parameters=_PAGING + _context_filters()
)
@hengshi_view(["GET"])
def contexts(request):
    access.require_view(request.user)
    params = parse.single_valued(request.query_params)
    offset, limit = selectors.page(params)
    rows = selectors.context_list(visible=access.visible_tasks(request.user), params=params)
    page, total = selectors.page_and_total(rows, offset, limit)
    return ok([context_data(task) for task in page], totalHits=total, offset=offset)


@_schema("contextUsers", "The users who started contexts", parameters=_context_filters())
@hengshi_view(["GET"])
def context_users(request):
    access.require_view(request.user)
    params = parse.single_valued(request.query_params)
    users = selectors.context_users(visible=access.visible_tasks(request.user), params=params)
    return ok([user_data(user) for user in users])


def _context(request, raw_id) -> TaskInstance:
    access.require_view(request.user)
    context_id = parse.identifier(raw_id, "contextId")
    return selectors.context_get(visible=access.visible_tasks(request.user), context_id=context_id)


@_schema("context", "Get a context", parameters=[CONTEXT_ID])
@hengshi_view(["GET"])
def context(request, contextId):
    return ok(context_data(_context(request, contextId)))


def _wait_until_done(context_id: int) -> bool:
    deadline = time.monotonic() + wait_limit()
    while not selectors.context_is_done(context_id=context_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(WAIT_POLL_SECONDS)
    return True


def _per_subtask(request, contextId, present):
    access.require_view(request.user)
    context_id = selectors.context_require(
        visible=access.visible_tasks(request.user),
        context_id=parse.identifier(contextId, "contextId"),
    )
    block = parse.choice(
        parse.single_valued(request.query_params), "block", ("true", "false"), default="true"
    )
    if block == "true" and not waits.edge_waits(request):
        done = _wait_until_done(context_id)
    else:
        done = selectors.context_is_done(context_id=context_id)
        if block == "true" and not done:
            kind = "logs" if present is _logs else "results"
            waits.hand_over(request, waits.Wait(request.user.pk, context_id, kind))
    data, done = _per_subtask_data(context_id, present, done)
    return ok(data, done=done)


def _per_subtask_data(context_id: int, present, done: bool) -> tuple[list, bool]:
    subtasks = selectors.context_subtasks(context_id=context_id)
    return [present(subtask) for subtask in subtasks], done


def _logs(subtask) -> dict:
    piece = task_selectors.log_read(subtask=subtask, offset=0, limit=LOG_BYTES_MAX)
    return {"subKey": str(subtask.pk), "logs": piece.text.splitlines()}


def _result(subtask) -> dict:
    value = subtask.result
    if isinstance(value, dict) and "schema" in value and "data" in value:
        result = {"schema": value["schema"], "data": value["data"]}
    elif value is None:
        result = {"schema": [], "data": []}
    else:
        result = {"schema": [{"name": "value", "type": "json"}], "data": [[value]]}
    return {"subKey": str(subtask.pk), "result": result}


@_schema("contextLogs", "A context's logs, by subKey", parameters=[CONTEXT_ID, _BLOCK])
@hengshi_view(["GET"])
def context_logs(request, contextId):
    return _per_subtask(request, contextId, _logs)


@_schema("contextResults", "A context's results, by subKey", parameters=[CONTEXT_ID, _BLOCK])
@hengshi_view(["GET"])
def context_results(request, contextId):
    return _per_subtask(request, contextId, _result)


def answer_after_wait(wait: waits.Wait) -> dict | None:
    """The envelope a handed-over wait answers with once it is over, for its caller as they
    are now (access checked again); None when they may no longer see it."""
    if wait.kind != "submit":
        return run_answer(wait.context_id, wait.kind) if may_still_see(wait) else None
    user = _active_user(wait.user_id)
    if user is None:
        return None
    try:
        access.require_view(user)
        assert wait.plan_id is not None
        items = selectors.plan_items(item_ids=wait.item_ids)
        data = _submit_answer(user, wait.plan_id, items, wait.context_id, wait.context_ids)
    except TaskCenterError:
        return None
    return ok(data).data


def may_still_see(wait: waits.Wait) -> bool:
    """Whether the caller of a logs or results wait may see its run now (active, allowed to
    view, the run within their clusters)."""
    user = _active_user(wait.user_id)
    if user is None:
        return False
    try:
        access.require_view(user)
    except TaskCenterError:
        return False
    return selectors.context_visible(visible=access.visible_tasks(user), context_id=wait.context_id)


def run_answer(context_id: int, kind: str) -> dict:
    """The envelope of a logs or results wait on this run, as it is now: the same for every
    caller who may see the run, so the edge renders it once for all the waits that end
    together (a run that a hundred clients wait on ends once)."""
    done = selectors.context_is_done(context_id=context_id)
    present = _logs if kind == "logs" else _result
    answer, done = _per_subtask_data(context_id, present, done)
    return ok(answer, done=done).data


def _active_user(user_id: int):
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()
