"""Typed job parameters: what a definition declares, and the one validator of what is given.

A definition declares each parameter's type, whether it is required or its default, its
bounds (minimum and maximum, max length, pattern), a label and help. Every way of starting
a job checks its parameters here: the OCP Jobs API, HENGSHI's jobParams, the Run form, the
plan form, `run_task` and the scheduler. A refusal is one InvalidParameters that names
every invalid parameter at once, each with its reason, so nobody fixes them one per try.

Values are JSON values, checked strictly: the integer 4 is an integer, the text "4" is not
(forms and the command line read their text into typed values first, with text_value()).
A valid value is returned unchanged; an absent optional one becomes its default.

The checking is pydantic's: a model is built once per declaration, in strict mode, with
`extra="forbid"`. Why pydantic rather than hand-written checks: it is already installed
(pydantic-settings reads the environment), it checks every field and reports every error
in one pass with the field it concerns, its strict mode refuses what Python's own coercions
accept (True as 1, "4" as 4, 4.5 as an integer), and its messages name bounds without
quoting the value, which matters for secrets. JSON Schema (jsonschema) would do as well but
is one more dependency for the same answers.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.utils.dateparse import parse_datetime
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic import create_model as pydantic_model

from taskcenter.core.errors import InvalidDefinition, InvalidParameter

if TYPE_CHECKING:
    from taskcenter.tasks.definitions import DefinitionSpec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Longest text a string parameter takes when it declares no max length: a parameter is a
# name, a path or a URL, and a task's parameters are stored and shown whole.
TEXT_MAX = 10_000
SECRET_MASK = "••••••"


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"  # one of `choices`
    DATETIME = "datetime"  # ISO 8601 text with its zone, e.g. 2024-05-01T10:00:00+08:00
    SECRET = "secret"  # a string never shown in pages, API answers, audit or logs
    ANY = "any"  # any JSON value: what an undeclared parameter of old definitions takes


class InvalidParameters(InvalidParameter):
    """Parameters refused: `problems` maps each invalid parameter's name to its reason.

    `parameter` is the field that holds them all (e.g. "parameters", "execDetail.jobParams");
    `targets()` names each one inside it, as the API's subErrors do.
    """

    def __init__(self, definition: str, problems: dict[str, str], *, field: str = "parameters"):
        self.definition = definition
        self.problems = problems
        self.field = field
        listed = "; ".join(f"'{name}' {why}" for name, why in problems.items())
        super().__init__(field, f"{self.PREFIX}{field}': {listed}.")

    def targets(self) -> list[tuple[str, str]]:
        return [(f"{self.field}.{name}", why) for name, why in self.problems.items()]


@dataclass
class ParameterSpec:
    """One declared parameter. `type` is inferred from the default when not given (4 is an
    integer, 1.5 a number, "x" a string, True a boolean; no default: any JSON value)."""

    name: str
    default: Any = None
    description: str = ""  # the help shown next to the field
    required: bool = False
    type: str = ""
    label: str = ""
    minimum: float | None = None  # for integer and number
    maximum: float | None = None
    max_length: int | None = None  # for string and secret
    pattern: str | None = None  # for string and secret, matched whole
    choices: tuple[Any, ...] = ()  # for choice

    def __post_init__(self):
        self.type = self.type or _inferred_type(self.default)
        self.choices = tuple(self.choices)
        problem = _declaration_problem(self)
        if problem:
            raise InvalidDefinition(f"Parameter '{self.name}': {problem}")

    @property
    def secret(self) -> bool:
        return self.type == ParamType.SECRET

    @property
    def shown_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def describe(self) -> dict[str, Any]:
        """The declaration as the Jobs API shows it (a secret's default is never shown)."""
        return {
            "name": self.name,
            "label": self.shown_label,
            "type": self.type,
            "required": self.required,
            "default": None if self.secret else self.default,
            "min": self.minimum,
            "max": self.maximum,
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "choices": list(self.choices) if self.choices else None,
            "help": self.description,
        }


def _inferred_type(default: Any) -> str:
    if isinstance(default, bool):
        return ParamType.BOOLEAN
    if isinstance(default, int):
        return ParamType.INTEGER
    if isinstance(default, float):
        return ParamType.NUMBER
    if isinstance(default, str):
        return ParamType.STRING
    return ParamType.ANY


def _declaration_problem(param: ParameterSpec) -> str:
    if param.type not in ParamType.__members__.values():
        return f"unknown type {param.type!r} (use {', '.join(ParamType)})."
    if param.type == ParamType.CHOICE and not param.choices:
        return "a choice needs its 'choices'."
    if param.pattern is not None:
        try:
            re.compile(param.pattern)
        except re.error as exc:
            return f"its pattern is not a regular expression: {exc}."
    if param.required or param.default is None:
        return ""
    problems = check_values([param], {param.name: param.default})
    return f"its default {problems[param.name]}" if problems else ""


# --- The checker: a pydantic model per declaration -------------------------------------------------


def _without_nul(value: str) -> str:
    # No database stores a NUL in text (PostgreSQL refuses it in jsonb).
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def _date_time(value: str) -> str:
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError("is not an ISO 8601 date-time with its zone (2024-05-01T10:00:00+08:00)")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    return value


def _json_text_without_nul(value: Any) -> Any:
    texts = [value]
    while texts:
        item = texts.pop()
        if isinstance(item, str):
            _without_nul(item)
        elif isinstance(item, dict):
            texts += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            texts += item
    return value


def _annotation(param: ParameterSpec) -> Any:
    kind = param.type
    if kind == ParamType.INTEGER:
        low = INT64_MIN if param.minimum is None else param.minimum
        high = INT64_MAX if param.maximum is None else param.maximum
        return Annotated[int, Field(strict=True, ge=low, le=high)]
    if kind == ParamType.NUMBER:
        # An integer is a number too (JSON does not tell 1 from 1.0); bool is refused.
        number = Annotated[
            Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True)],
            Field(union_mode="left_to_right"),
        ]
        return Annotated[number, _bounded(param)]
    if kind == ParamType.BOOLEAN:
        return StrictBool
    if kind == ParamType.CHOICE:
        return Literal[param.choices]
    if kind == ParamType.DATETIME:
        return Annotated[
            str, Field(strict=True), AfterValidator(_without_nul), AfterValidator(_date_time)
        ]
    if kind in (ParamType.STRING, ParamType.SECRET):
        return Annotated[
            str,
            Field(
                strict=True,
                max_length=TEXT_MAX if param.max_length is None else param.max_length,
                pattern=None if param.pattern is None else f"^(?:{param.pattern})$",
            ),
            AfterValidator(_without_nul),
        ]
    return Annotated[Any, AfterValidator(_json_text_without_nul)]


def _bounded(param: ParameterSpec) -> AfterValidator:
    """A number's bounds, checked after either of its shapes (int or float) is taken."""

    def check(value: float) -> float:
        _finite(value)
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("is out of range")
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"should be greater than or equal to {param.minimum:g}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"should be less than or equal to {param.maximum:g}")
        return value

    return AfterValidator(check)


def _checker(parameters: list[ParameterSpec]) -> type[BaseModel]:
    """The model that checks values of these declarations; built once per declaration (a
    scheduler's tick checks hundreds of runs of a few jobs)."""
    key = tuple(
        (p.name, p.type, p.minimum, p.maximum, p.max_length, p.pattern, p.choices)
        for p in parameters
    )
    try:
        return _cached_checker(key)
    except TypeError:  # a choice that is a list or an object: not hashable, built each time
        return _build_checker(parameters)


@functools.lru_cache(maxsize=1024)
def _cached_checker(key: tuple) -> type[BaseModel]:
    return _build_checker(
        [
            ParameterSpec(
                name, type=kind, minimum=low, maximum=high, max_length=length, pattern=pattern,
                choices=choices,
            )
            for name, kind, low, high, length, pattern, choices in key
        ]
    )  # fmt: skip


def _build_checker(parameters: list[ParameterSpec]) -> type[BaseModel]:
    # Fields are named f0, f1... with the parameter's name as alias, so that a parameter
    # may be called anything (even "model_config" or "not valid python"). Every field may
    # be absent: resolve() reports missing and unknown names itself.
    fields: dict[str, Any] = {
        f"f{index}": (_annotation(param), Field(default=None, alias=param.name))
        for index, param in enumerate(parameters)
    }
    # Patterns are Python's (the declaration is checked with re.compile), not Rust's.
    config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=False, regex_engine="python-re"
    )
    return pydantic_model("Parameters", __config__=config, **fields)


def check_values(declared: list[ParameterSpec], given: Mapping[str, Any]) -> dict[str, str]:
    """The problem of each given value that its declaration refuses (type and bounds only;
    missing and unknown names are resolve()'s)."""
    by_name = {param.name: param for param in declared}
    if not any(name in by_name for name in given):
        return {}
    checker = _checker(declared)
    try:
        checker.model_validate({name: given[name] for name in by_name if name in given})
    except ValidationError as exc:
        return _problems(exc, by_name)
    return {}


def _problems(exc: ValidationError, by_name: Mapping[str, ParameterSpec]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in problems:  # a union reports each shape; the first reason is enough
            continue
        problems[name] = _reason(error, by_name.get(name))
    return problems


def _reason(error: Mapping[str, Any], param: ParameterSpec | None) -> str:
    """Words for one pydantic error; never the value (it may be a secret)."""
    kind = param.type if param else ""
    if kind == ParamType.INTEGER and error["type"] in ("int_type", "int_from_float"):
        return "must be an integer (a whole number, not text)"
    if kind == ParamType.NUMBER and error["type"] in ("int_type", "float_type"):
        return "must be a number"
    if kind == ParamType.BOOLEAN:
        return "must be true or false"
    if kind == ParamType.CHOICE:
        listed = ", ".join(json.dumps(choice) for choice in param.choices)  # type: ignore[union-attr]
        return f"must be one of {listed}"
    if error["type"] == "string_type":
        return "must be text"
    if error["type"] == "string_pattern_mismatch":
        return f"must match the pattern {param.pattern}"  # type: ignore[union-attr]
    message = str(error["msg"]).removeprefix("Value error, ")
    for opening in ("Input ", "String "):  # "Input should be ..." -> "should be ..."
        if message.startswith(opening):
            return message[len(opening) :]
    return message


def resolve(spec: DefinitionSpec, given: Mapping[str, Any], *, field: str = "parameters") -> dict:
    """The run's parameters: each given value unchanged, each absent one its default.

    Raises InvalidParameters naming every problem at once: unknown names, missing required
    ones, and every value of the wrong type or out of bounds.
    """
    if not isinstance(given, Mapping):
        raise InvalidParameter.because(field, "must be an object of parameter names and values.")
    known = {param.name for param in spec.parameters}
    problems: dict[str, str] = {}
    for name in given:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems[str(name)[:100]] = f"is not a parameter of this job (known: {listed})"
    for param in spec.parameters:
        if param.required and param.name not in given:
            problems[param.name] = "is required"
    problems.update(check_values(spec.parameters, given))
    if problems:
        order = {param.name: index for index, param in enumerate(spec.parameters)}
        ordered = dict(sorted(problems.items(), key=lambda item: order.get(item[0], len(order))))
        raise InvalidParameters(spec.name, ordered, field=field)
    return {
        param.name: given[param.name] if param.name in given else param.default
        for param in spec.parameters
    }


def masked(spec: DefinitionSpec | None, values: Any) -> Any:
    """`values` as pages, API answers and the audit may show them: secrets masked."""
    if spec is None or not isinstance(values, dict):
        return values
    secrets = {param.name for param in spec.parameters if param.secret}
    return {
        name: SECRET_MASK if name in secrets and value not in (None, "") else value
        for name, value in values.items()
    }


# --- Text to typed values (forms and the command line) ---------------------------------------------


def text_value(param: ParameterSpec, text: str) -> Any:
    """The typed value a field's text stands for; text the type cannot read is returned as
    it is, for resolve() to refuse with the parameter's name and reason."""
    kind = param.type
    if kind == ParamType.INTEGER and re.fullmatch(r"-?[0-9]{1,30}", text):
        return int(text)
    if kind == ParamType.NUMBER:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(text) if re.fullmatch(r"-?[0-9]{1,30}", text) else number
    if kind == ParamType.BOOLEAN and text.lower() in ("true", "false", "on", "1", "0"):
        return text.lower() in ("true", "on", "1")
    if kind == ParamType.CHOICE:
        for choice in param.choices:
            if str(choice) == text:
                return choice
        return text
    if kind == ParamType.ANY:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
