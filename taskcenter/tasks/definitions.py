"""Task definitions: named, versioned DAG templates, and the registry that apps fill.

A definition turns parameters into a list of SubtaskSpec. Python definitions may build
the list with code (fan-outs whose width is a parameter); data definitions (JSON, stored
in TaskDefinition.spec) list their subtasks literally and may only use shell and HTTP
actions, so that no code path is ever chosen by data.

Actions are small dicts:
    {"callable": "demo.sleep", "kwargs": {...}}                  PYTHON_TASK
    {"command": "echo hi", "env": {...}}                          SHELL_TASK
    {"method": "GET", "url": "...", "headers": {}, "json": ...,   HTTP_TASK
     "expect_status": [200]}
    {"permission": "tasks.approve_subtaskinstance",               APPROVAL_TASK
     "role": "", "onTimeout": "fail", "starterMayApprove": false}

An APPROVAL_TASK is a gate: no worker runs it. It waits, RUNNING, for a person to approve
or reject it (taskcenter.tasks.verbs.approval) or for its timeout (the subtask's
`timeout`), at which the reaper fails or approves it as `onTimeout` says. Python
definitions build one with `approval_gate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from taskcenter.core.errors import InvalidDefinition
from taskcenter.core.graph import topological_order
from taskcenter.tasks import parameters as parameters_module
from taskcenter.tasks.models import NodeType
from taskcenter.tasks.parameters import ParameterSpec

__all__ = ["DefinitionSpec", "ParameterSpec", "SubtaskSpec"]

# Keyed by the plain string a definition file carries (NodeType members are strings).
KIND_REQUIRED_KEY: dict[str, str] = {
    NodeType.PYTHON_TASK: "callable",
    NodeType.SHELL_TASK: "command",
    NodeType.HTTP_TASK: "url",
}

# An approval gate's settings (its `action`), with their defaults.
APPROVAL_PERMISSION = "tasks.approve_subtaskinstance"
APPROVAL_DEFAULTS: dict[str, Any] = {
    "permission": APPROVAL_PERMISSION,
    "role": "",
    "onTimeout": "fail",
    "starterMayApprove": False,
}
APPROVAL_TIMEOUT_ACTIONS = ("fail", "approve")


@dataclass
class SubtaskSpec:
    key: str
    name: str
    kind: str
    action: dict[str, Any]
    upstreams: list[str] = field(default_factory=list)
    description: str = ""
    timeout: int = 600
    retry_count: int = 0
    prohibit_rollback: bool = False
    parallel_idx: int = -1
    rollback: dict[str, Any] | None = None


@dataclass
class DefinitionSpec:
    name: str
    build: Callable[[dict[str, Any]], list[SubtaskSpec]]
    version: int = 1
    description: str = ""
    parameters: list[ParameterSpec] = field(default_factory=list)
    source: str = "CODE"

    def resolve_parameters(
        self, given: dict[str, Any], *, field: str = "parameters"
    ) -> dict[str, Any]:
        """The run's parameters, checked by the one validator (tasks.parameters.resolve):
        InvalidParameters names every invalid one at once."""
        return parameters_module.resolve(self, given, field=field)


def approval_gate(
    key: str,
    name: str,
    *,
    upstreams: list[str] | None = None,
    description: str = "",
    timeout: int = 24 * 3600,
    permission: str = APPROVAL_PERMISSION,
    role: str = "",
    on_timeout: str = "fail",
    starter_may_approve: bool = False,
) -> SubtaskSpec:
    """An approval gate in a Python definition: the steps after it wait until a person
    holding `permission` (and, when given, the role named `role`) approves it; whoever
    started the task may not, unless `starter_may_approve`. At `timeout` seconds the gate
    fails or approves itself (`on_timeout`)."""
    return SubtaskSpec(
        key=key,
        name=name,
        kind=NodeType.APPROVAL_TASK,
        action={
            "permission": permission,
            "role": role,
            "onTimeout": on_timeout,
            "starterMayApprove": starter_may_approve,
        },
        upstreams=list(upstreams or []),
        description=description,
        timeout=timeout,
    )


def approval_settings(action: dict[str, Any] | None) -> dict[str, Any]:
    """A gate's settings with their defaults filled in."""
    return {**APPROVAL_DEFAULTS, **{k: v for k, v in (action or {}).items() if v is not None}}


# --- Registries ---------------------------------------------------------------------------

_DEFINITIONS: dict[str, DefinitionSpec] = {}
_CALLABLES: dict[str, Callable[..., Any]] = {}


def register_callable(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a Python function available to PYTHON_TASK actions under `name`.

    Only registered names can run: an action never imports a dotted path it was given.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        _CALLABLES[name] = func
        return func

    return decorator


def get_callable(name: str) -> Callable[..., Any]:
    try:
        return _CALLABLES[name]
    except KeyError:
        raise InvalidDefinition(f"Unknown callable '{name}': it is not registered.") from None


def register_definition(spec: DefinitionSpec) -> DefinitionSpec:
    _DEFINITIONS[spec.name] = spec
    return spec


def registered_definitions() -> list[DefinitionSpec]:
    return sorted(_DEFINITIONS.values(), key=lambda spec: spec.name)


def get_registered_definition(name: str) -> DefinitionSpec | None:
    return _DEFINITIONS.get(name)


# --- Data definitions -----------------------------------------------------------------------


def definition_from_data(name: str, version: int, spec: dict[str, Any]) -> DefinitionSpec:
    """A DefinitionSpec from a JSON document: {description, parameters, subtasks: [...]}."""
    if not isinstance(spec, dict) or not isinstance(spec.get("subtasks"), list):
        raise InvalidDefinition("A data definition needs a 'subtasks' list.")
    raw_params = spec.get("parameters", [])
    if not isinstance(raw_params, list):
        raise InvalidDefinition("'parameters' must be a list.")
    parameters = [_parameter_from_data(raw) for raw in raw_params]
    if len({param.name for param in parameters}) != len(parameters):
        raise InvalidDefinition("Two parameters have the same name.")
    subtasks = []
    for index, raw in enumerate(spec["subtasks"]):
        if not isinstance(raw, dict):
            raise InvalidDefinition(f"Subtask #{index} must be an object.")
        kind = raw.get("kind")
        if kind not in DATA_KINDS:
            raise InvalidDefinition(
                f"Subtask #{index}: kind must be SHELL_TASK, HTTP_TASK or APPROVAL_TASK in a "
                f"data definition, got {kind!r}."
            )
        try:
            subtasks.append(
                SubtaskSpec(
                    key=str(raw["key"]),
                    name=str(raw.get("name", raw["key"])),
                    kind=kind,
                    action=dict(raw.get("action") or {})
                    if kind == NodeType.APPROVAL_TASK
                    else dict(raw["action"]),
                    upstreams=[str(u) for u in raw.get("upstreams", [])],
                    description=str(raw.get("description", "")),
                    timeout=int(raw.get("timeout", 600)),
                    retry_count=int(raw.get("retryCount", 0)),
                    prohibit_rollback=bool(raw.get("prohibitRollback", False)),
                    parallel_idx=int(raw.get("parallelIdx", -1)),
                    rollback=dict(raw["rollback"]) if raw.get("rollback") else None,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidDefinition(f"Subtask #{index} is malformed: {exc}") from None
    static = subtasks
    definition = DefinitionSpec(
        name=name,
        version=version,
        description=str(spec.get("description", "")),
        parameters=parameters,
        build=lambda params: static,
        source="DATA",
    )
    validate_subtasks(definition.name, static)
    return definition


DATA_KINDS = (NodeType.SHELL_TASK, NodeType.HTTP_TASK, NodeType.APPROVAL_TASK)

_PARAMETER_KEYS = {
    "name", "type", "default", "required", "label", "help", "description",
    "min", "max", "maxLength", "pattern", "choices",
}  # fmt: skip


def _parameter_from_data(raw: Any) -> ParameterSpec:
    """A declared parameter of a data definition: {name, type, required, default, min, max,
    maxLength, pattern, choices, label, help}, the same declaration as code's ParameterSpec."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise InvalidDefinition("Each parameter needs a 'name'.")
    unknown = sorted(set(raw) - _PARAMETER_KEYS)
    if unknown:
        raise InvalidDefinition(
            f"Parameter '{raw['name']}': unknown key(s) {', '.join(unknown)} "
            f"(use {', '.join(sorted(_PARAMETER_KEYS))})."
        )
    try:
        return ParameterSpec(
            name=raw["name"],
            type=str(raw.get("type") or ""),
            default=raw.get("default"),
            required=bool(raw.get("required", False)),
            label=str(raw.get("label") or ""),
            description=str(raw.get("help", raw.get("description", ""))),
            minimum=_bound(raw, "min"),
            maximum=_bound(raw, "max"),
            max_length=_bound(raw, "maxLength", integer=True),
            pattern=raw.get("pattern"),
            choices=tuple(raw.get("choices") or ()),
        )
    except TypeError as exc:
        raise InvalidDefinition(f"Parameter '{raw['name']}' is malformed: {exc}") from None


def _bound(raw: dict, key: str, *, integer: bool = False) -> Any:
    value = raw.get(key)
    allowed = (int,) if integer else (int, float)
    if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
        raise InvalidDefinition(f"Parameter '{raw['name']}': '{key}' must be a number.")
    return value


# --- Validation ------------------------------------------------------------------------------


def validate_subtasks(definition_name: str, subtasks: list[SubtaskSpec]) -> list[SubtaskSpec]:
    """Check the DAG and the actions; return the subtasks in topological order.

    Raises InvalidDefinition naming the first problem: an empty DAG, duplicate keys, an
    unknown upstream, a cycle, an unknown kind or callable, a missing action field.
    """
    prefix = f"Definition '{definition_name}'"
    if not subtasks:
        raise InvalidDefinition(f"{prefix} has no subtasks.")
    by_key: dict[str, SubtaskSpec] = {}
    for spec in subtasks:
        if spec.key in by_key:
            raise InvalidDefinition(f"{prefix}: duplicate subtask key '{spec.key}'.")
        by_key[spec.key] = spec
    for spec in subtasks:
        _validate_action(prefix, spec, spec.action, "action")
        if spec.rollback is not None:
            _validate_action(prefix, spec, spec.rollback, "rollback")
        if spec.timeout <= 0:
            raise InvalidDefinition(f"{prefix}: subtask '{spec.key}' needs a positive timeout.")
        for upstream in spec.upstreams:
            if upstream not in by_key:
                raise InvalidDefinition(
                    f"{prefix}: subtask '{spec.key}' has unknown upstream '{upstream}'."
                )
    return _topological_order(prefix, subtasks)


def _validate_action(prefix: str, spec: SubtaskSpec, action: dict, what: str) -> None:
    if spec.kind == NodeType.APPROVAL_TASK:
        _validate_approval(prefix, spec, action, what)
        return
    if spec.kind not in KIND_REQUIRED_KEY:
        raise InvalidDefinition(f"{prefix}: subtask '{spec.key}' has unknown kind '{spec.kind}'.")
    required = KIND_REQUIRED_KEY[spec.kind]
    if not isinstance(action, dict) or not action.get(required):
        raise InvalidDefinition(f"{prefix}: subtask '{spec.key}' {what} needs '{required}'.")
    if spec.kind == NodeType.PYTHON_TASK:
        get_callable(action["callable"])  # raises with the name when unknown


def _validate_approval(prefix: str, spec: SubtaskSpec, action: dict, what: str) -> None:
    where = f"{prefix}: approval gate '{spec.key}'"
    if what == "rollback":
        raise InvalidDefinition(f"{where} has nothing to undo: it takes no rollback.")
    if not isinstance(action, dict):
        raise InvalidDefinition(f"{where} settings must be an object.")
    unknown = sorted(set(action) - set(APPROVAL_DEFAULTS))
    if unknown:
        raise InvalidDefinition(
            f"{where}: unknown setting(s) {', '.join(unknown)} "
            f"(use {', '.join(sorted(APPROVAL_DEFAULTS))})."
        )
    gate = approval_settings(action)
    permission = gate["permission"]
    if not isinstance(permission, str) or permission.count(".") != 1:
        raise InvalidDefinition(f"{where}: 'permission' must be 'app_label.codename'.")
    if not isinstance(gate["role"], str):
        raise InvalidDefinition(f"{where}: 'role' must be a role's name.")
    if gate["onTimeout"] not in APPROVAL_TIMEOUT_ACTIONS:
        raise InvalidDefinition(f"{where}: 'onTimeout' must be 'fail' or 'approve'.")
    if not isinstance(gate["starterMayApprove"], bool):
        raise InvalidDefinition(f"{where}: 'starterMayApprove' must be true or false.")
    if spec.retry_count:
        raise InvalidDefinition(f"{where} is not retried automatically: retryCount must be 0.")


def _topological_order(prefix: str, subtasks: list[SubtaskSpec]) -> list[SubtaskSpec]:
    # Declaration order among subtasks that are ready together, so that seriesId reads
    # naturally.
    ordered, on_cycle = topological_order(
        subtasks, key=attrgetter("key"), upstreams=attrgetter("upstreams")
    )
    if on_cycle:
        stuck = sorted(spec.key for spec in on_cycle)
        raise InvalidDefinition(f"{prefix}: the subtasks form a cycle through {', '.join(stuck)}.")
    return ordered
