"""Task definitions as stored rows: finding, mirroring and adding them."""

from __future__ import annotations

from typing import Any

from taskcenter.core.errors import InvalidDefinition
from taskcenter.tasks import definitions
from taskcenter.tasks.models import TaskDefinition


def definition_resolve(
    *, name: str, version: int | None = None
) -> tuple[definitions.DefinitionSpec, TaskDefinition | None]:
    """The spec of a definition, code-registered or data, and its stored row if any.

    A code definition's row is created by task_start, once the parameters are accepted,
    so a refused request leaves nothing behind.
    """
    spec = definitions.get_registered_definition(name)
    if spec is not None and (version is None or version == spec.version):
        row = TaskDefinition.objects.filter(name=spec.name, version=spec.version).first()
        return spec, row
    rows = TaskDefinition.objects.filter(name=name, source=TaskDefinition.Source.DATA)
    row = rows.filter(version=version).first() if version else rows.order_by("-version").first()
    if row is None:
        raise InvalidDefinition(f"There is no task definition named '{name}'.")
    return definitions.definition_from_data(row.name, row.version, row.spec), row


def definition_sync(*, spec: definitions.DefinitionSpec) -> TaskDefinition:
    """The stored row mirroring a code definition, created on first use."""
    row, _ = TaskDefinition.objects.get_or_create(
        name=spec.name,
        version=spec.version,
        defaults={"description": spec.description, "source": TaskDefinition.Source.CODE},
    )
    return row


def definition_create_from_data(*, name: str, spec: dict[str, Any]) -> TaskDefinition:
    """Store a JSON definition as the next version of `name`, after validating it."""
    if definitions.get_registered_definition(name) is not None:
        raise InvalidDefinition(f"'{name}' is defined in code and cannot be replaced by data.")
    latest = TaskDefinition.objects.filter(name=name).order_by("-version").first()
    version = latest.version + 1 if latest else 1
    definitions.definition_from_data(name, version, spec)
    return TaskDefinition.objects.create(
        name=name,
        version=version,
        description=str(spec.get("description", "")),
        source=TaskDefinition.Source.DATA,
        spec=spec,
    )
