"""Starting a task: its rows, its DAG's edges, and its first READY subtasks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskcenter.tasks import models, sql
from taskcenter.tasks.audit import Action, audit_record
from taskcenter.tasks.definitions import SubtaskSpec, validate_subtasks
from taskcenter.tasks.services import definitions as stored
from taskcenter.tasks.services.progress import make_ready


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
) -> models.TaskInstance:
    """Create a task instance from a definition and start its root subtasks.

    `retry_count`, when given, replaces every subtask's automatic retries for this run
    (a schedule's retryTimes).
    """
    spec, definition_row = stored.definition_resolve(name=definition_name, version=version)
    params = spec.resolve_parameters(parameters or {})
    ordered = validate_subtasks(spec.name, spec.build(params))
    now = timezone.now()
    with transaction.atomic():
        task = models.TaskInstance.objects.create(
            name=name or spec.name,
            definition=definition_row or stored.definition_sync(spec=spec),
            cluster=cluster or (tenant.cluster if tenant else None),
            tenant=tenant,
            creator=creator,
            status=models.TaskStatus.RUNNING,
            type=type,
            operation=models.TaskOperation.EXECUTE,
            parameters=params,
            start_time=now,
            subtask_total=len(ordered),
        )
        if hosts:
            task.hosts.set(hosts)
        rows = models.SubtaskInstance.objects.bulk_create(
            [_subtask_row(task, index, sub, retry_count) for index, sub in enumerate(ordered)]
        )
        _store_edges(ordered, [row.pk for row in rows])
        audit_record(
            actor=creator,
            action=Action.START,
            task=task,
            to_status=models.TaskStatus.RUNNING,
            reason=spec.name,
        )
        roots = [row.pk for sub, row in zip(ordered, rows, strict=True) if not sub.upstreams]
        make_ready(roots, [models.SubtaskStatus.PENDING], operation=models.SubtaskOperation.EXECUTE)
    return task


def _subtask_row(
    task: models.TaskInstance, index: int, sub: SubtaskSpec, retry_count: int | None = None
) -> models.SubtaskInstance:
    return models.SubtaskInstance(
        task=task,
        name=sub.name,
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


def _store_edges(ordered: list[SubtaskSpec], ids: list[int]) -> None:
    """Write each new subtask's upstream and downstream ids once the ids are known."""
    rows = [
        (json.dumps(ups), json.dumps(downs), pk)
        for ups, downs, pk in _edges(ordered, ids)
        if ups or downs
    ]
    if rows:
        sql.write_edges(rows)


def _edges(ordered: list[SubtaskSpec], ids: list[int]) -> list[tuple[list[int], list[int], int]]:
    """(upstream ids, downstream ids, id) of each new subtask."""
    id_of = {sub.key: pk for sub, pk in zip(ordered, ids, strict=True)}
    downstream: dict[str, list[int]] = {sub.key: [] for sub in ordered}
    for sub in ordered:
        for upstream in dict.fromkeys(sub.upstreams):
            downstream[upstream].append(id_of[sub.key])
    return [
        ([id_of[u] for u in dict.fromkeys(sub.upstreams)], downstream[sub.key], pk)
        for sub, pk in zip(ordered, ids, strict=True)
    ]
