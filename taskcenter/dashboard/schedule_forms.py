"""The plan form of the Schedules pages: its job (any job, with its parameters as fields
generated from their declaration, taskcenter.dashboard.parameter_fields), its cron
builder and live preview.

Neither saves anything: the views hand what they read to taskcenter.tasks.services
(task_start) and taskcenter.schedules.verbs (plan_submit), whose refusals come back
as messages next to the field they name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.text import slugify

from taskcenter.core.errors import InvalidParameter
from taskcenter.dashboard import presenters
from taskcenter.dashboard.parameter_fields import ParameterFields
from taskcenter.schedules import cron, describe, jobs
from taskcenter.schedules.inputs import (
    ENTITY_GROUP_MAX,
    ENTITY_KEY_MAX,
    ExecDetailInput,
    ItemInput,
    PlanInput,
)
from taskcenter.schedules.models import CronType, MisfirePolicy, OverlapPolicy, TriggerType
from taskcenter.tasks.parameters import InvalidParameters

PREVIEW_COUNT = 5
ZONE_SUGGESTIONS = (
    "UTC", "GMT+08:00", "Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata", "Europe/London",
    "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Australia/Sydney",
)  # fmt: skip
WEEKDAYS = ((1, "Sun"), (2, "Mon"), (3, "Tue"), (4, "Wed"), (5, "Thu"), (6, "Fri"), (7, "Sat"))
# The builder's "Repeat" for a plan that only runs after other jobs (or when run now).
NO_SCHEDULE = "NONE"


# --- Cron builder ---------------------------------------------------------------------------------

# The shapes the builder writes, and reads back when a plan is edited: (type, pattern).
_SHAPES: dict[str, re.Pattern[str]] = {
    CronType.MINUTELY: re.compile(r"0 (?:\*|0/(?P<every>\d+)) \* \* \* \?"),
    CronType.HOURLY: re.compile(r"0 (?P<minute>\d+) (?:\*|0/(?P<every>\d+)) \* \* \?"),
    CronType.DAILY: re.compile(r"0 (?P<minute>\d+) (?P<hour>\d+) \* \* \?"),
    CronType.WEEKLY: re.compile(
        r"0 (?P<minute>\d+) (?P<hour>\d+) \? \* (?P<weekdays>[1-7](?:,[1-7])*)"
    ),
    CronType.MONTHLY: re.compile(r"0 (?P<minute>\d+) (?P<hour>\d+) (?P<day>\d+|L) \* \?"),
}


@dataclass
class Builder:
    """The builder's inputs; `expression()` is the Quartz expression they make."""

    cron_type: str = CronType.WEEKLY
    every: int = 1
    minute: int = 0
    hour: int = 0
    weekdays: list[int] = field(default_factory=lambda: [1])
    day: str = "1"
    text: str = ""  # the free-text expression of the CRON type
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data) -> Builder:
        builder = cls(cron_type=data.get("cron_type") or CronType.WEEKLY)
        if builder.cron_type not in (*CronType.values, NO_SCHEDULE):
            builder.errors["cron_type"] = f"Choose one of {', '.join(CronType.values)}."
            builder.cron_type = CronType.CRON
        builder.every = builder._number(data, "every", 1, 1, 59)
        builder.minute = builder._number(data, "minute", 0, 0, 59)
        builder.hour = builder._number(data, "hour", 0, 0, 23)
        days = data.getlist("weekdays") if hasattr(data, "getlist") else data.get("weekdays", [])
        builder.weekdays = sorted({int(d) for d in days if str(d) in "1234567" and str(d)})
        if builder.cron_type == CronType.WEEKLY and not builder.weekdays:
            builder.errors["weekdays"] = "Choose at least one day."
        builder.day = (data.get("day") or "1").strip().upper()
        if builder.day != "L" and not (
            builder.day.isascii() and builder.day.isdigit() and 1 <= int(builder.day) <= 31
        ):
            builder.errors["day"] = "A day of the month, 1 to 31, or L for the last day."
            builder.day = "1"
        builder.text = " ".join((data.get("cron_desc") or "").split())
        return builder

    def _number(self, data, name: str, default: int, low: int, high: int) -> int:
        text = str(data.get(name) or "").strip()
        if not text:
            return default
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            self.errors[name] = f"A whole number from {low} to {high}."
            return default
        return int(text)

    @classmethod
    def from_item(cls, cron_type: str, expression: str) -> Builder:
        """The builder that writes `expression`, or the CRON type with it as text."""
        shape = _SHAPES.get(cron_type)
        found = shape.fullmatch(expression) if shape else None
        if found is None:
            return cls(cron_type=CronType.CRON, text=expression)
        parts = found.groupdict()
        built = cls(
            cron_type=cron_type,
            every=int(parts.get("every") or 1),
            minute=int(parts.get("minute") or 0),
            hour=int(parts.get("hour") or 0),
            weekdays=[int(d) for d in (parts.get("weekdays") or "1").split(",")],
            day=parts.get("day") or "1",
            text=expression,
        )
        # Saved unchanged, the item must keep its very text ("0 0/1 * * * ?" stays so).
        if built.expression() != expression:
            return cls(cron_type=CronType.CRON, text=expression)
        return built

    @property
    def scheduled(self) -> bool:
        return self.cron_type != NO_SCHEDULE

    def expression(self) -> str:
        if not self.scheduled:
            return ""
        every = f"0/{self.every}" if self.every > 1 else "*"
        if self.cron_type == CronType.MINUTELY:
            return f"0 {every} * * * ?"
        if self.cron_type == CronType.HOURLY:
            return f"0 {self.minute} {every} * * ?"
        if self.cron_type == CronType.DAILY:
            return f"0 {self.minute} {self.hour} * * ?"
        if self.cron_type == CronType.WEEKLY:
            return f"0 {self.minute} {self.hour} ? * {','.join(map(str, self.weekdays or [1]))}"
        if self.cron_type == CronType.MONTHLY:
            return f"0 {self.minute} {self.hour} {self.day} * ?"
        return self.text


# --- Preview: the expression in words and its next fire times -------------------------------------


@dataclass
class FireTime:
    utc: datetime
    local: str  # the wall time in the plan's zone, as written (templates would convert it)
    offset: str  # that zone's offset then, "UTC+08:00"
    offset_change: str  # "" or the words for a DST change since the time before


@dataclass
class Preview:
    expression: str
    zone: str
    words: str = ""
    times: list[FireTime] = field(default_factory=list)
    error: str = ""  # Quartz's reason, or the zone's
    error_field: str = ""
    scheduled: bool = True  # False: the plan has no cron trigger (NO_SCHEDULE)
    after: str = ""  # its dependency trigger in words, "after NOTEBOOK/1 succeeds"


def _offset_words(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def preview(expression: str, zone_name: str, *, now: datetime | None = None) -> Preview:
    """What the plan would do: its words and next fire times in its zone, each marked
    where the zone's offset changed since the time before (a DST change)."""
    result = Preview(expression=expression, zone=zone_name)
    if not expression:
        result.error, result.error_field = "Enter a cron expression.", "cron_desc"
        return result
    try:
        parsed = cron.parse(expression)
    except cron.InvalidCron as exc:
        result.error, result.error_field = exc.advice, "cron_desc"
        return result
    try:
        zone = cron.parse_zone(zone_name)
    except cron.InvalidZone as exc:
        result.error, result.error_field = exc.reason, "time_zone"
        return result
    now = now or timezone.now()
    never = cron.never_fires_reason(parsed, zone, now)
    if never:
        result.error, result.error_field = never, "cron_desc"
        return result
    result.words = describe.describe(expression, zone_name)
    previous = now.astimezone(zone).utcoffset()
    for fire in parsed.next_fire_times(now, zone, PREVIEW_COUNT):
        local = fire.astimezone(zone)
        offset = local.utcoffset()
        change = ""
        if offset != previous:
            change = f"clocks change: {_offset_words(previous)} → {_offset_words(offset)}"
        result.times.append(
            FireTime(
                utc=fire,
                local=local.strftime("%a %Y-%m-%d %H:%M:%S"),
                offset=_offset_words(offset),
                offset_change=change,
            )
        )
        previous = offset
    return result


# --- The plan form -------------------------------------------------------------------------------


def _upstream_value(job: dict[str, str]) -> str:
    """A job to follow as the form's checkbox value (entity keys may hold any character)."""
    return json.dumps([job["entityGroup"], job["entityKey"]])


def _upstream_job(value: str) -> dict[str, str] | None:
    try:
        group, key = json.loads(value)
    except (ValueError, TypeError):
        return None
    if not (isinstance(group, str) and isinstance(key, str) and group and key):
        return None
    if len(group) > ENTITY_GROUP_MAX or len(key) > ENTITY_KEY_MAX:
        return None
    return {"entityGroup": group, "entityKey": key}


@dataclass
class UpstreamOption:
    value: str
    label: str  # "NOTEBOOK/1"
    title: str  # its plan's title, or why there is none
    checked: bool


class PlanForm:
    """A plan: its job (entity and job class), its triggers (one cron trigger made by the
    builder, and one "after these jobs succeed" trigger), and its policies.

    Editing keeps what the person did not change: the cron and dependency items the form
    shows keep their ids and, untouched, their exact values; the plan's other items are
    passed on as they are. `plan_input()` gives what plan_submit takes; the service's
    refusals are put next to their field by `refuse()`."""

    FIELD_OF = {  # the service's field names -> this form's
        "entityGroup": "entity_group",
        "entityKey": "entity_key",
        "execDetail.jobClass": "job_class",
        "execDetail.jobParams": "job_params",
        "execDetail.retryTimes": "retry_times",
        "cronDesc": "cron_desc",
        "timeZone": "time_zone",
        "triggerByJobs": "after",
        "planItems": "cron_desc",
    }

    def __init__(
        self, data=None, *, plan=None, item=None, dependency=None, kept_items=(), job: str = ""
    ):
        self.plan = plan
        self.kept_items = list(kept_items)  # the plan's other items, kept as they are
        self.item_id = item.pk if item is not None else None  # kept: its fires point at it
        self.dependency = dependency  # the DEPENDENCY item the form shows, if any
        self.had_triggers = item is not None or dependency is not None
        self.errors: dict[str, str] = {}
        self.error = ""
        before = list(dependency.trigger_by_jobs) if dependency is not None else []
        if data is None:
            self.values = self._initial(plan, item, job)
            if item is not None:
                self.builder = Builder.from_item(item.cron_type, item.cron_desc)
            elif plan is not None:  # a plan without a cron trigger gains none by being edited
                self.builder = Builder(cron_type=NO_SCHEDULE)
            else:
                self.builder = Builder(hour=0)
            self.after = before
        else:
            self.values = {
                name: (data.get(name) or "").strip()
                for name in (
                    "entity_group",
                    "entity_key",
                    "job_class",
                    "retry_times",
                    "time_zone",
                    "misfire_policy",
                    "overlap_policy",
                )
            }
            self.values["enabled"] = bool(data.get("enabled"))
            if plan is not None:  # a plan's job is its identity: it does not change
                self.values["entity_group"] = plan.entity_group
                self.values["entity_key"] = plan.entity_key
            self.builder = Builder.from_data(data)
            self.errors.update(self.builder.errors)
            self.after = self._read_after(data, before)
        self.params = self._parameter_fields(data)

    def _read_after(self, data, before: list[dict[str, str]]) -> list[dict[str, str]]:
        """The jobs to follow, as checked; the item's own list when the same jobs are."""
        values = data.getlist("after") if hasattr(data, "getlist") else data.get("after", [])
        chosen: list[dict[str, str]] = []
        for value in values:
            job = _upstream_job(value)
            if job is None:
                self.errors["after"] = "Choose jobs from the list."
            elif job not in chosen:
                chosen.append(job)
        return (
            before
            if sorted(map(_upstream_value, before)) == sorted(map(_upstream_value, chosen))
            else chosen
        )

    def _parameter_fields(self, data) -> ParameterFields:
        """The job's parameters as fields; a saved plan's values are shown (its secrets
        kept, never shown) while the job is the plan's."""
        try:
            spec = jobs.job_definition(jobs.job_class_get(self.values["job_class"]))
        except InvalidParameter as exc:
            if self.values["job_class"] or data is not None:
                self.errors["job_class"] = exc.reason
            spec = None
        same_job = self.plan is not None and self.plan.job_class == self.values["job_class"]
        saved = self.plan.job_params if same_job else None
        return ParameterFields(spec, data, values=saved, kept=saved, raw_name="job_params")

    @staticmethod
    def _initial(plan, item, job: str = "") -> dict:
        if plan is None:
            first_job = next(iter(jobs.registered_job_classes()), None)
            chosen = job or (first_job.name if first_job else "")
            return {
                "entity_group": "JOB" if job else "",
                "entity_key": slugify(job)[:100] if job else "",
                "job_class": chosen,
                "retry_times": "0",
                "time_zone": settings.TIME_ZONE,
                "misfire_policy": MisfirePolicy.RUN_ONCE,
                "overlap_policy": OverlapPolicy.SKIP,
                "enabled": True,
            }
        return {
            "entity_group": plan.entity_group,
            "entity_key": plan.entity_key,
            "job_class": plan.job_class,
            "retry_times": str(plan.retry_times),
            "time_zone": item.time_zone if item else settings.TIME_ZONE,
            "misfire_policy": plan.misfire_policy,
            "overlap_policy": plan.overlap_policy,
            "enabled": plan.enabled,
        }

    @property
    def text_fields(self) -> dict[str, dict]:
        """The plain text inputs as the template shows them: name, value, error."""
        return {
            name: {"name": name, "value": self.values[name], "error": self.errors.get(name, "")}
            for name in ("entity_group", "entity_key", "retry_times")
        }

    @property
    def expression(self) -> str:
        return self.builder.expression()

    def preview(self) -> Preview:
        zone = self.values["time_zone"] or settings.TIME_ZONE
        if self.builder.scheduled:
            result = preview(self.expression, zone)
        else:
            result = Preview(expression="", zone=zone, scheduled=False)
        result.after = presenters.dependency_words(self.after) if self.after else ""
        return result

    def upstream_options(self, plans) -> list[UpstreamOption]:
        """The jobs this plan may follow (the other plans), and any it follows that have
        no plan the reader can see, checked."""
        chosen = {_upstream_value(job) for job in self.after}
        options = []
        for other in plans:
            if self.plan is not None and other.pk == self.plan.pk:
                continue
            value = _upstream_value(
                {"entityGroup": other.entity_group, "entityKey": other.entity_key}
            )
            options.append(
                UpstreamOption(
                    value=value,
                    label=f"{other.entity_group}/{other.entity_key}",
                    title=other.title or other.job_class.rsplit(".", 1)[-1],
                    checked=value in chosen,
                )
            )
        listed = {option.value for option in options}
        options.extend(
            UpstreamOption(
                value=_upstream_value(job),
                label=f"{job['entityGroup']}/{job['entityKey']}",
                title="no plan",
                checked=True,
            )
            for job in self.after
            if _upstream_value(job) not in listed
        )
        return options

    def plan_input(self) -> PlanInput | None:
        """The plan as plan_submit takes it, or None when a field is wrong (see errors)."""
        values = self.values
        for name, label in (("entity_group", "Entity group"), ("entity_key", "Entity key")):
            if not values[name]:
                self.errors[name] = f"{label} is required."
        params = self.params.check() if self.params.spec is not None else None
        retry = values["retry_times"] or "0"
        if not (retry.isascii() and retry.isdigit()) or int(retry) > 100:
            self.errors["retry_times"] = "A whole number from 0 to 100."
            retry = "0"
        check = self.preview()
        if check.error:
            self.errors.setdefault(check.error_field, check.error)
        for name, choices in (
            ("misfire_policy", MisfirePolicy.values),
            ("overlap_policy", OverlapPolicy.values),
        ):
            if values[name] not in choices:
                self.errors[name] = f"Choose one of {', '.join(choices)}."
        items = self._trigger_items(check.zone)
        if not items and not self.kept_items and self.had_triggers:
            # plan_submit keeps a plan's items when given none: say how to stop it instead.
            self.errors["cron_type"] = (
                "Choose a schedule or jobs to run after; to stop the plan, disable it."
            )
        if not items and not self.kept_items and self.plan is None:
            self.errors["cron_type"] = "Choose a schedule or jobs to run after."
        if self.errors or params is None:
            return None
        return PlanInput(
            entity_group=values["entity_group"],
            entity_key=values["entity_key"],
            exec_detail=ExecDetailInput(
                job_class=values["job_class"], job_params=params, retry_times=int(retry)
            ),
            items=[*items, *self.kept_items],
            enabled=values["enabled"],
            sync=False,
            misfire_policy=values["misfire_policy"],
            overlap_policy=values["overlap_policy"],
        )

    def _trigger_items(self, zone: str) -> list[ItemInput]:
        """The cron and dependency items the form shows, each with its id when it was one."""
        items: list[ItemInput] = []
        if self.builder.scheduled:
            items.append(
                ItemInput(
                    field=f"planItems[{len(items)}]",
                    id=self.item_id,
                    trigger_type=TriggerType.CRON_JOB,
                    cron_desc=self.expression,
                    cron_type=self.builder.cron_type,
                    time_zone=zone,
                )
            )
        if self.after:
            items.append(
                ItemInput(
                    field=f"planItems[{len(items)}]",
                    id=self.dependency.pk if self.dependency is not None else None,
                    trigger_type=TriggerType.DEPENDENCY,
                    trigger_by_jobs=self.after,
                )
            )
        return items

    def refuse(self, exc: InvalidParameter) -> None:
        """A service's refusal, shown next to the field it names (each parameter's next
        to its own field)."""
        if isinstance(exc, InvalidParameters):
            self.params.refuse(exc)
            return
        name = (exc.parameter or "").split(".")[-1] if exc.parameter else ""
        full = exc.parameter or ""
        target = self.FIELD_OF.get(full) or self.FIELD_OF.get(name)
        if target:
            self.errors[target] = exc.reason
        else:
            self.error = exc.message


def kept_item_inputs(items) -> list[ItemInput]:
    """A plan's items other than the one the form edits, as plan_submit keeps them."""
    return [
        ItemInput(
            field=f"planItems[{index}]",
            id=item.pk,
            trigger_type=item.trigger_type,
            cron_desc=item.cron_desc,
            cron_type=item.cron_type,
            time_zone=item.time_zone,
            trigger_by_jobs=item.trigger_by_jobs,
        )
        for index, item in enumerate(items, start=2)
    ]
