"""Reading a plan from a HENGSHI request body: types and shapes, each refusal naming its
field ("planItems[1].cronDesc"). What the names mean (a registered job class, item ids of
this plan, no dependency cycle) is checked by the verbs (taskcenter.schedules.verbs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from taskcenter.core.errors import InvalidParameter
from taskcenter.schedules import cron
from taskcenter.schedules.models import CronType, MisfirePolicy, OverlapPolicy, TriggerType

RETRY_TIMES_MAX = 100
PLAN_ITEMS_MAX = 100
ENTITY_KEY_MAX = 200
ENTITY_GROUP_MAX = 64


@dataclass
class ItemInput:
    field: str  # where it was in the body, for messages: "planItems[0]"
    id: int | None
    trigger_type: str
    cron_desc: str = ""
    cron_type: str = ""
    time_zone: str = ""
    trigger_by_jobs: list[dict[str, str]] = dataclasses.field(default_factory=list)


@dataclass
class ExecDetailInput:
    job_class: str
    job_params: dict[str, Any]
    retry_times: int


@dataclass
class PlanInput:
    entity_group: str
    entity_key: str
    exec_detail: ExecDetailInput | None
    items: list[ItemInput]
    enabled: bool | None
    sync: bool
    misfire_policy: str | None
    overlap_policy: str | None
    # Where its runs go (clusterId, tenantId): None for either when the body leaves both
    # out (placed False: an edit keeps the plan's), or null.
    cluster_id: int | None = None
    tenant_id: int | None = None
    placed: bool = False


@dataclass
class PlanChange:
    """A PUT: items None when planItems is absent (kept); [] when null or empty (all removed)."""

    items: list[ItemInput] | None
    enabled: bool | None


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter.because(name, "expected a JSON object.")
    return value


def _text(data: dict, key: str, name: str, *, required: bool, max_length: int = 255) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidParameter.because(name, "is required.")
        return ""
    if not isinstance(value, str):
        raise InvalidParameter.because(name, f"expected a string, got {_type(value)}.")
    if len(value) > max_length or "\x00" in value:
        raise InvalidParameter.because(name, f"at most {max_length} characters, no NUL.")
    value = value.strip()
    if required and not value:
        raise InvalidParameter.because(name, "must not be empty.")
    return value


def _flag(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidParameter.because(key, f"expected true or false, got {_type(value)}.")
    return value


def _choice(data: dict, key: str, choices: list[str]) -> str | None:
    value = data.get(key)
    if value is not None and value not in choices:
        raise InvalidParameter.because(key, f"{value!r} (use {' or '.join(choices)}).")
    return value


def _type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list) else "an object or null"
    )


def exec_detail_input(value: Any) -> ExecDetailInput:
    data = _object(value, "execDetail")
    job_class = _text(data, "jobClass", "execDetail.jobClass", required=True)
    params = data.get("jobParams")
    if params is None:
        params = {}
    params = _object(params, "execDetail.jobParams")
    retry = data.get("retryTimes", 0)
    if retry is None:
        retry = 0
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise InvalidParameter.because(
            "execDetail.retryTimes", f"expected an integer, got {_type(retry)}."
        )
    if not 0 <= retry <= RETRY_TIMES_MAX:
        raise InvalidParameter.because(
            "execDetail.retryTimes", f"{retry} is out of range (0 to {RETRY_TIMES_MAX})."
        )
    return ExecDetailInput(job_class=job_class, job_params=params, retry_times=retry)


def items_input(value: Any) -> list[ItemInput]:
    """planItems: null or [] is no item."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter.because("planItems", f"expected an array, got {_type(value)}.")
    if len(value) > PLAN_ITEMS_MAX:
        raise InvalidParameter.because("planItems", f"at most {PLAN_ITEMS_MAX} items.")
    return [_item(raw, f"planItems[{index}]") for index, raw in enumerate(value)]


def _item(raw: Any, name: str) -> ItemInput:
    data = _object(raw, name)
    item_id = data.get("id")
    if item_id is not None and (isinstance(item_id, bool) or not isinstance(item_id, int)):
        raise InvalidParameter.because(f"{name}.id", f"expected an integer, got {_type(item_id)}.")
    kind = data.get("triggerType")
    if kind not in TriggerType.values:
        raise InvalidParameter.because(
            f"{name}.triggerType", f"{kind!r} (use {', '.join(TriggerType.values)})."
        )
    item = ItemInput(field=name, id=item_id, trigger_type=kind)
    if kind == TriggerType.CRON_JOB:
        _cron_item(item, data, name)
    elif kind == TriggerType.DEPENDENCY:
        item.trigger_by_jobs = _jobs(data.get("triggerByJobs"), f"{name}.triggerByJobs")
    return item


def _cron_item(item: ItemInput, data: dict, name: str) -> None:
    item.cron_desc = _text(data, "cronDesc", f"{name}.cronDesc", required=True)
    try:
        cron.parse(item.cron_desc)
    except cron.InvalidCron as exc:
        raise InvalidParameter.because(f"{name}.cronDesc", exc.advice) from None
    item.cron_type = _text(data, "cronType", f"{name}.cronType", required=False) or CronType.CRON
    if item.cron_type not in CronType.values:
        raise InvalidParameter.because(
            f"{name}.cronType", f"{item.cron_type!r} (use {', '.join(CronType.values)})."
        )
    item.time_zone = (
        _text(data, "timeZone", f"{name}.timeZone", required=False, max_length=64)
        or settings.TIME_ZONE
    )
    try:
        cron.parse_zone(item.time_zone)
    except cron.InvalidZone as exc:
        raise InvalidParameter.because(f"{name}.timeZone", exc.reason) from None


def _jobs(value: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InvalidParameter.because(
            name, "a DEPENDENCY item needs a non-empty array of {entityGroup, entityKey}."
        )
    jobs = []
    for index, raw in enumerate(value):
        data = _object(raw, f"{name}[{index}]")
        jobs.append(
            {
                "entityGroup": _entity(data, "entityGroup", f"{name}[{index}].entityGroup"),
                "entityKey": _entity(data, "entityKey", f"{name}[{index}].entityKey"),
            }
        )
    return jobs


def _entity(data: dict, key: str, name: str) -> str:
    limit = ENTITY_GROUP_MAX if key == "entityGroup" else ENTITY_KEY_MAX
    return _text(data, key, name, required=True, max_length=limit)


def _identifier(data: dict, key: str) -> int | None:
    """An optional id: a positive integer or null."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter.because(key, f"expected an integer id, got {_type(value)}.")
    if value <= 0:
        raise InvalidParameter.because(key, f"{value} is not an id (ids are positive).")
    return value


def plan_input(value: Any) -> PlanInput:
    """The body of POST /api/schedules."""
    data = _object(value, "body")
    detail = data.get("execDetail")
    sync = _flag(data, "sync")
    return PlanInput(
        cluster_id=_identifier(data, "clusterId"),
        tenant_id=_identifier(data, "tenantId"),
        placed="clusterId" in data or "tenantId" in data,
        entity_group=_entity(data, "entityGroup", "entityGroup"),
        entity_key=_entity(data, "entityKey", "entityKey"),
        exec_detail=None if detail is None else exec_detail_input(detail),
        items=items_input(data.get("planItems")),
        enabled=_flag(data, "enabled"),
        sync=bool(sync),
        misfire_policy=_choice(data, "misfirePolicy", MisfirePolicy.values),
        overlap_policy=_choice(data, "overlapPolicy", OverlapPolicy.values),
    )


def plan_change_input(value: Any) -> PlanChange:
    """The body of PUT /api/schedules/{id}: only planItems and enabled may change."""
    data = _object(value if value is not None else {}, "body")
    items = items_input(data["planItems"]) if "planItems" in data else None
    return PlanChange(items=items, enabled=_flag(data, "enabled"))


def entity_input(value: Any) -> tuple[str, str]:
    """The body of POST /api/schedules/cancel."""
    data = _object(value, "body")
    return _entity(data, "entityGroup", "entityGroup"), _entity(data, "entityKey", "entityKey")
