"""A job's parameters as form fields, generated from its declaration: a number field for
an integer or number (with its bounds), a checkbox for a boolean, a select for a choice, a
datetime-local field for a date-time, a password field for a secret, a text field
otherwise; and the whole object as raw JSON, an advanced option that replaces the fields.

The Run form and the plan form both use these; what they read is checked by the one
validator (taskcenter.tasks.parameters.resolve), whose refusal puts each invalid
parameter's reason next to its own field, all at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from taskcenter.tasks import parameters as typed
from taskcenter.tasks.definitions import DefinitionSpec
from taskcenter.tasks.parameters import InvalidParameters, ParameterSpec, ParamType

PREFIX = "param-"
RAW_JSON = "params_json"

INPUT_TYPES = {
    ParamType.INTEGER: "number",
    ParamType.NUMBER: "number",
    ParamType.BOOLEAN: "checkbox",
    ParamType.CHOICE: "select",
    ParamType.DATETIME: "datetime-local",
    ParamType.SECRET: "password",
}


@dataclass
class ParameterField:
    spec: ParameterSpec
    value: str = ""  # as the input shows it (a secret's is never sent back)
    checked: bool = False
    error: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_id(self) -> str:
        return f"{PREFIX}{self.spec.name}"

    @property
    def label(self) -> str:
        return self.spec.shown_label

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def input(self) -> str:
        return INPUT_TYPES.get(self.spec.type, "text")  # type: ignore[call-overload]

    @property
    def help(self) -> str:
        return self.spec.description

    @property
    def required(self) -> bool:
        return self.spec.required

    @property
    def step(self) -> str:
        return "1" if self.spec.type == ParamType.INTEGER else "any"

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(str(choice), str(choice) or "(none)") for choice in self.spec.choices]

    @property
    def bounds(self) -> str:
        """The bounds in words, for the help line."""
        spec = self.spec
        low, high = spec.minimum, spec.maximum
        if low is not None and high is not None:
            return f"{low:g} to {high:g}"
        if low is not None:
            return f"at least {low:g}"
        if high is not None:
            return f"at most {high:g}"
        if spec.max_length is not None and spec.type != ParamType.SECRET:
            return f"at most {spec.max_length} characters"
        return ""


def shown(param: ParameterSpec, value: Any) -> str:
    """A value as its input shows it."""
    if value is None or param.secret:
        return ""
    if param.type == ParamType.DATETIME and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = timezone.localtime(moment)
        return moment.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)


def _read(param: ParameterSpec, data) -> tuple[bool, Any]:
    """(given, value) of one field of a POST."""
    key = f"{PREFIX}{param.name}"
    if param.type == ParamType.BOOLEAN:
        # A checkbox sends nothing when cleared: the form marks its booleans as present.
        return True, bool(data.get(key))
    text = (data.get(key) or "").strip()
    if not text:
        return False, None
    if param.type == ParamType.DATETIME:
        return True, _date_time_text(text)
    return True, typed.text_value(param, text)


def _date_time_text(text: str) -> str:
    """A datetime-local value ("2026-12-07T10:30") is a wall time in the reader's zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = timezone.make_aware(moment)
    return moment.isoformat()


class ParameterFields:
    """The fields of `spec`'s parameters, shown with `values` (initial values or kept
    ones) or read from a POST's `data`. `kept` holds values the form never shows (a saved
    plan's secrets), kept when their field is left empty."""

    def __init__(
        self, spec: DefinitionSpec | None, data=None, *, values=None, kept=None, raw_name=RAW_JSON
    ):
        self.spec = spec
        self.error = ""
        self.raw_name = raw_name  # the raw JSON field's name (the plan form keeps job_params)
        self.raw_json = ""
        self.raw_error = ""
        self.given: dict[str, Any] = {}
        self.kept = kept or {}
        params = spec.parameters if spec else []
        start = values if values is not None else {p.name: p.default for p in params}
        self.fields = [
            ParameterField(p, value=shown(p, start.get(p.name)), checked=start.get(p.name) is True)
            for p in params
        ]
        if data is not None:
            self._read_post(data)

    def _read_post(self, data) -> None:
        self.raw_json = (data.get(self.raw_name) or "").strip()
        for field in self.fields:
            present, value = _read(field.spec, data)
            field.value = "" if field.spec.secret else (data.get(field.input_id) or "").strip()
            field.checked = bool(data.get(field.input_id))
            if not present and field.spec.secret and field.name in self.kept:
                present, value = True, self.kept[field.name]
            if present:
                self.given[field.name] = value

    def check(self) -> dict[str, Any] | None:
        """The parameters, checked; None with each refusal next to its field."""
        given: Any = self.given
        if self.raw_json:
            try:
                given = json.loads(self.raw_json)
            except ValueError as exc:
                self.raw_error = f"Not JSON: {exc}."
                return None
            if not isinstance(given, dict):
                self.raw_error = 'A JSON object of names and values, e.g. {"seconds": 60}.'
                return None
        if self.spec is None:
            return given
        try:
            return typed.resolve(self.spec, given)
        except InvalidParameters as exc:
            self.refuse(exc)
            return None

    def refuse(self, exc: InvalidParameters) -> None:
        """Each problem next to its field, all at once; with raw JSON, under the JSON."""
        by_name = {field.name: field for field in self.fields}
        others = []
        for name, why in exc.problems.items():
            if name in by_name and not self.raw_json:
                by_name[name].error = _sentence(why)
            else:
                others.append(f"'{name}' {why}")
        if others:
            self.raw_error = "; ".join(others) + "."


def _sentence(why: str) -> str:
    """A reason as the words under a field: "is required" -> "Required."."""
    if why == "is required":
        return "Required."
    return f"{why[0].upper()}{why[1:]}."
