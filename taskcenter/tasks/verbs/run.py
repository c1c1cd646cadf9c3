"""Run: start tasks, one or a batch: their rows, their DAGs' edges, their START audit
entries, and their first READY subtasks (sent to the workers on commit).

A page's "Run" (taskcenter.dashboard.jobs), the API's start, the command line and the
scheduler's fires all start tasks here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskcenter.core.errors import TaskCenterError
from taskcenter.tasks import models, selectors, sql
from taskcenter.tasks.audit import Action, audit_entry, audit_record_many
from taskcenter.tasks.definitions import DefinitionSpec, SubtaskSpec, validate_subtasks
from taskcenter.tasks.services import definitions as stored
from taskcenter.tasks.services.progress import make_ready


@dataclass(frozen=True, kw_only=True)
class TaskStart:
    """One task to start: task_start's arguments, for task_start_many."""

    definition_name: str
    parameters: dict[str, Any] | None = None
    creator: Any = None
    cluster: models.Cluster | None = None
    tenant: models.Tenant | None = None
    hosts: Iterable[models.Host] = ()
    type: str = models.TaskType.MANUAL
    name: str | None = None
    version: int | None = None
    # When given, replaces every subtask's automatic retries for this run (a schedule's
    # retryTimes).
    retry_count: int | None = None
    # The task this run repeats ("Run again"), which then lists it among its repeats.
    repeat_of: models.TaskInstance | None = None


def task_start(
    *,
    definition_name: str,
    parameters: dict[str, Any] | None = None,
    creator=None,
    cluster: models.Cluster | None = None,
    tenant: models.Tenant | None = None,
    hosts: Iterable[models.Host] = (),
    type: str = models.TaskType.MANUAL,
    name: str | None = None,
    version: int | None = None,
    retry_count: int | None = None,
    repeat_of: models.TaskInstance | None = None,
) -> models.TaskInstance:
    """Create a task instance from a definition and start its root subtasks (TaskStart
    says what each argument is); raises the error that refuses it, and then nothing is
    written."""
    start = TaskStart(
        definition_name=definition_name,
        parameters=parameters,
        creator=creator,
        cluster=cluster,
        tenant=tenant,
        hosts=hosts,
        type=type,
        name=name,
        version=version,
        retry_count=retry_count,
        repeat_of=repeat_of,
    )
    [started] = task_start_many(starts=[start])
    if isinstance(started, TaskCenterError):
        raise started
    return started


def task_start_many(*, starts: list[TaskStart]) -> list[models.TaskInstance | TaskCenterError]:
    """Start many tasks in one transaction: each its task, or the error that refused it
    (bad parameters, an unknown definition), in the order of `starts`.

    A scheduler's tick starts hundreds of runs of a few definitions at once: each
    definition is resolved once, the rows of all the tasks (tasks, subtasks, edges, audit)
    are written with one statement per table, and their first attempts go to the engine
    in one send on commit. A refused start writes nothing and does not stop the others.
    """
    resolved: dict[tuple[str, int | None], _Definition] = {}
    planned: list[_Planned | TaskCenterError] = []
    for start in starts:
        try:
            planned.append(_plan(start, resolved))
        except TaskCenterError as exc:
            planned.append(exc)
    accepted = [plan for plan in planned if isinstance(plan, _Planned)]
    if accepted:
        with transaction.atomic():
            _write(accepted)
    return [plan.task if isinstance(plan, _Planned) else plan for plan in planned]


@dataclass
class _Definition:
    spec: DefinitionSpec
    row: models.TaskDefinition | None


@dataclass
class _Planned:
    start: TaskStart
    definition: _Definition
    parameters: dict[str, Any]
    ordered: list[SubtaskSpec]  # in topological order
    task: models.TaskInstance = field(init=False)


def _plan(start: TaskStart, resolved: dict[tuple[str, int | None], _Definition]) -> _Planned:
    """Check one start before anything is written: its definition, parameters and DAG."""
    key = (start.definition_name, start.version)
    if key not in resolved:
        resolved[key] = _Definition(
            *selectors.definition_get(name=start.definition_name, version=start.version)
        )
    definition = resolved[key]
    spec = definition.spec
    params = spec.resolve_parameters(start.parameters or {})
    return _Planned(start, definition, params, validate_subtasks(spec.name, spec.build(params)))


def _write(planned: list[_Planned]) -> None:
    """The rows of the checked starts, and their root subtasks READY on commit."""
    now = timezone.now()
    for plan in planned:
        if plan.definition.row is None:  # a code definition's first run: mirror it once
            plan.definition.row = stored.definition_sync(spec=plan.definition.spec)
    tasks = models.TaskInstance.objects.bulk_create(
        _task_row(plan.start, plan.definition, plan.parameters, len(plan.ordered), now)
        for plan in planned
    )
    for plan, task in zip(planned, tasks, strict=True):
        plan.task = task
        if plan.start.hosts:
            task.hosts.set(plan.start.hosts)
    rows = [
        _subtask_row(plan.task.pk, index, sub, plan.start.retry_count)
        for plan in planned
        for index, sub in enumerate(plan.ordered)
    ]
    ids = sql.insert_subtasks(rows, lambda ids: _edges_of_all(planned, ids))
    roots, offset = [], 0
    for plan in planned:
        plan_ids = ids[offset : offset + len(plan.ordered)]
        offset += len(plan.ordered)
        roots += [pk for sub, pk in zip(plan.ordered, plan_ids, strict=True) if not sub.upstreams]
    audit_record_many(
        [
            audit_entry(
                actor=plan.start.creator,
                action=Action.START,
                task=plan.task,
                to_status=models.TaskStatus.RUNNING,
                reason=plan.definition.spec.name,
            )
            for plan in planned
        ]
    )
    make_ready(roots, [models.SubtaskStatus.PENDING], operation=models.SubtaskRunMode.EXECUTE)
    # Stamped again last: a start of many subtasks takes a while, and the live pages read
    # changes by updated_at, which should be close to the commit that shows the task.
    models.TaskInstance.objects.filter(pk__in=[plan.task.pk for plan in planned]).update(
        updated_at=timezone.now()
    )


def _task_row(
    start: TaskStart, definition: _Definition, params: dict[str, Any], size: int, now
) -> models.TaskInstance:
    return models.TaskInstance(
        name=start.name or definition.spec.name,
        definition=definition.row,
        cluster=start.cluster or (start.tenant.cluster if start.tenant else None),
        tenant=start.tenant,
        creator=start.creator,
        status=models.TaskStatus.RUNNING,
        type=start.type,
        operation=models.TaskRunMode.EXECUTE,
        parameters=params,
        start_time=now,
        subtask_total=size,
        repeat_of=start.repeat_of,
    )


def _subtask_row(
    task_id: int, index: int, sub: SubtaskSpec, retry_count: int | None = None
) -> dict[str, Any]:
    """A new subtask's columns (model attribute names) that its spec decides; the insert
    gives the others their defaults (sql.insert_subtasks)."""
    return dict(
        task_id=task_id,
        name=sub.name,
        key=sub.key,
        series_id=index,
        description=sub.description or sub.name,
        timeout=sub.timeout,
        node_type=sub.kind,
        parallel_idx=sub.parallel_idx,
        prohibit_rollback=sub.prohibit_rollback,
        retry_count=sub.retry_count if retry_count is None else retry_count,
        action=sub.action,
        rollback_action=sub.rollback,
        upstreams_left=len(set(sub.upstreams)),
    )


def _edges_of_all(planned: list[_Planned], ids: list[int]) -> list[tuple[list[int], list[int]]]:
    """(upstream ids, downstream ids) of every new subtask of every planned start, given
    their ids in the same order."""
    edges, offset = [], 0
    for plan in planned:
        edges += _edges(plan.ordered, ids[offset : offset + len(plan.ordered)])
        offset += len(plan.ordered)
    return edges


def _edges(ordered: list[SubtaskSpec], ids: list[int]) -> list[tuple[list[int], list[int]]]:
    """(upstream ids, downstream ids) of each new subtask."""
    id_of = {sub.key: pk for sub, pk in zip(ordered, ids, strict=True)}
    downstream: dict[str, list[int]] = {sub.key: [] for sub in ordered}
    for sub in ordered:
        for upstream in dict.fromkeys(sub.upstreams):
            downstream[upstream].append(id_of[sub.key])
    return [
        ([id_of[u] for u in dict.fromkeys(sub.upstreams)], downstream[sub.key]) for sub in ordered
    ]
