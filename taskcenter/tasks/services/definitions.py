"""Task definitions as stored rows: mirroring and adding them (finding them is a read:
selectors.definition_get)."""

from __future__ import annotations

from typing import Any

from taskcenter.core.errors import InvalidDefinition
from taskcenter.tasks import definitions
from taskcenter.tasks.models import TaskDefinition


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
