"""The job-class registry: what a plan's execDetail.jobClass may name.

HENGSHI names a job by a Java class; here each name maps to a registered task definition.
Only registered names run: a jobClass from a request is a key in this table, never a
dotted path to import. jobParams are checked against that definition's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskcenter.core.errors import InvalidDefinition, InvalidParameter
from taskcenter.tasks.definitions import DefinitionSpec, get_registered_definition


@dataclass(frozen=True)
class JobClass:
    name: str  # as clients send it, e.g. com.hengshi.nangaparbat.schedulejob.NotebookJob
    definition: str  # the task definition a run starts
    # How a plan of this job is titled: formatted with group (lower case), key and the
    # job's parameters, e.g. "notebook{key}" gives HENGSHI's "notebook1".
    title: str = "{group}{key}"

    def title_for(self, entity_group: str, entity_key: str, params: dict[str, Any]) -> str:
        try:
            return self.title.format(group=entity_group.lower(), key=entity_key, **params)
        except (KeyError, IndexError, ValueError):
            return f"{entity_group.lower()}{entity_key}"


_JOB_CLASSES: dict[str, JobClass] = {}


def register_job_class(name: str, *, definition: str, title: str = "{group}{key}") -> JobClass:
    job = JobClass(name=name, definition=definition, title=title)
    _JOB_CLASSES[name] = job
    return job


def registered_job_classes() -> list[JobClass]:
    return sorted(_JOB_CLASSES.values(), key=lambda job: job.name)


def job_class_get(name: str, *, field: str = "execDetail.jobClass") -> JobClass:
    """The registered job class `name`; InvalidParameter naming `field` otherwise."""
    job = _JOB_CLASSES.get(name) if isinstance(name, str) else None
    if job is None:
        known = ", ".join(sorted(_JOB_CLASSES)) or "none"
        raise InvalidParameter.because(field, f"unknown job class {name!r} (known: {known}).")
    return job


def job_definition(job: JobClass) -> DefinitionSpec:
    spec = get_registered_definition(job.definition)
    if spec is None:
        raise InvalidParameter.because(
            "execDetail.jobClass",
            f"job class {job.name!r} runs the definition {job.definition!r}, "
            "which is not registered in this installation.",
        )
    return spec


def job_params_check(job: JobClass, params: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters (defaults filled in), or InvalidParameter on jobParams."""
    try:
        return job_definition(job).resolve_parameters(params)
    except InvalidDefinition as exc:
        raise InvalidParameter.because("execDetail.jobParams", exc.message) from None
