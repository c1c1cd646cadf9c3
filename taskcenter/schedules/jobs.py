"""The job-class registry: what a plan's execDetail.jobClass may name.

HENGSHI names a job by a Java class; here each name maps to a registered task definition.
A plan may also name any job by its task definition's name ("Back up cluster", or one
loaded with load_definition). Only registered names run: a jobClass from a request is a key
in this table or a definition's name, never a dotted path to import. jobParams are checked
against that definition's declared parameters by tasks.parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskcenter.core.errors import InvalidDefinition, InvalidParameter
from taskcenter.tasks import selectors as task_selectors
from taskcenter.tasks.definitions import DefinitionSpec
from taskcenter.tasks.parameters import masked


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
    """The job `name`: a registered job class, or any task definition by its name (a job
    is a definition; a HENGSHI class name is an alias of one). InvalidParameter naming
    `field` otherwise."""
    job = _JOB_CLASSES.get(name) if isinstance(name, str) else None
    if job is None and isinstance(name, str) and name and _definition_exists(name):
        job = JobClass(name=name, definition=name)
    if job is None:
        known = ", ".join(sorted(_JOB_CLASSES)) or "none"
        raise InvalidParameter.because(
            field,
            f"unknown job class {name!r}: name a job by its definition's name, or one of the "
            f"job classes {known}.",
        )
    return job


def _definition_exists(name: str) -> bool:
    try:
        task_selectors.definition_get(name=name)
    except InvalidDefinition:
        return False
    return True


def job_definition(job: JobClass) -> DefinitionSpec:
    try:
        return task_selectors.definition_get(name=job.definition)[0]
    except InvalidDefinition:
        raise InvalidParameter.because(
            "execDetail.jobClass",
            f"job class {job.name!r} runs the definition {job.definition!r}, "
            "which is not registered in this installation.",
        ) from None


def job_params_check(job: JobClass, params: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters (defaults filled in), by the one validator; InvalidParameters
    names each invalid one inside execDetail.jobParams."""
    return job_definition(job).resolve_parameters(params, field="execDetail.jobParams")


def shown_params(job_class: str, params: Any) -> Any:
    """A plan's jobParams as pages and API answers show them: its job's secrets masked."""
    try:
        spec = job_definition(job_class_get(job_class))
    except InvalidParameter:
        return params
    return masked(spec, params)
