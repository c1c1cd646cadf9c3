"""The diagnosis bundle of a task: what an operator attaches to a support ticket.

One zip, shared by the dashboard's button and the API's downloadDiagnosis:

    summary.json                   the task, and its subtasks in topological order with
                                   their dependencies, statuses, times and runs
    operations.json                the task's audit trail, oldest first
    logs/<nnn>-<id>-<name>/attempt-<n>.log
                                   one file per attempt of each subtask (log_attempts)

The zip is written entry by entry to any binary file object, so a caller can spool it to
a temporary file instead of holding it in memory; each subtask's log is read on its own.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from datetime import datetime
from operator import attrgetter
from typing import IO, Any

from django.http import FileResponse
from django.utils import timezone

from taskcenter.core import graph
from taskcenter.tasks import selectors
from taskcenter.tasks.models import SubtaskInstance, TaskInstance

SPOOL_BYTES = 8 * 1024 * 1024  # a larger zip goes to a temporary file


def write_diagnosis_zip(task: TaskInstance, fileobj: IO[bytes]) -> None:
    """Write the bundle into `fileobj` (a file, a SpooledTemporaryFile, a BytesIO)."""
    subtasks = topological_order(selectors.task_subtasks(task=task))
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("summary.json", _json(task_summary(task, subtasks)))
        bundle.writestr("operations.json", _json(_operations(task)))
        for position, subtask in enumerate(subtasks, start=1):
            folder = f"logs/{position:03d}-{subtask.pk}-{_slug(subtask.name)}"
            attempts = selectors.log_attempts(subtask=subtask)
            if not attempts:
                bundle.writestr(f"{folder}/no-log.txt", "This subtask has not written a log.\n")
            for attempt, data in attempts:
                bundle.writestr(f"{folder}/attempt-{attempt}.log", data)


def diagnosis_filename(task: TaskInstance) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    return f"task-{task.pk}-diagnosis-{stamp}.zip"


def topological_order(subtasks: list[SubtaskInstance]) -> list[SubtaskInstance]:
    """Upstreams always first, ties broken by series id."""
    ordered, on_cycle = graph.topological_order(
        sorted(subtasks, key=_series), key=attrgetter("pk"), upstreams=attrgetter("upstream_ids")
    )
    # A cycle cannot be created (definitions are validated), but never drop a subtask.
    return ordered + on_cycle


def task_summary(task: TaskInstance, subtasks: list[SubtaskInstance]) -> dict[str, Any]:
    return {
        "id": task.pk,
        "name": task.name,
        "status": task.status,
        "operation": task.operation,
        "rolledBack": task.is_rolled_back,
        "type": task.type,
        "cluster": task.cluster.name if task.cluster else None,
        "tenant": task.tenant.name if task.tenant else None,
        "creator": task.creator.get_username() if task.creator else None,
        "executor": task.executor,
        "prohibitRollback": task.prohibit_rollback,
        "parameters": selectors.shown_parameters(task),  # secrets masked
        "createTime": _time(task.create_time),
        "startTime": _time(task.start_time),
        "finishTime": _time(task.finish_time),
        "subtaskTotal": len(subtasks),
        "generatedAt": _time(timezone.now()),
        "subtasks": [
            {
                "order": position,
                "id": s.pk,
                "seriesId": s.series_id,
                "name": s.name,
                "description": s.description,
                "nodeType": s.node_type,
                "status": s.status,
                "operation": s.operation,
                "runTime": s.run_time,
                "retryCount": s.retry_count,
                "parallelIdx": s.parallel_idx,
                "prohibitRollback": s.prohibit_rollback,
                "executor": s.executor,
                "upstreams": list(s.upstream_ids),
                "downstreams": list(s.downstream_ids),
                "startTime": _time(s.start_time),
                "finishTime": _time(s.finish_time),
                "logSize": s.log_size,
                "logTruncated": s.log_truncated,
                "result": s.result,
            }
            for position, s in enumerate(subtasks, start=1)
        ],
    }


def _operations(task: TaskInstance) -> list[dict[str, Any]]:
    return [
        {
            "id": op.pk,
            "time": _time(op.created_at),
            "user": op.actor_name,
            "action": op.action,
            "target": op.target,
            "subtaskId": op.subtask_id,
            "from": op.from_status,
            "to": op.to_status,
            "reason": op.reason,
            "traceId": op.trace_id,
            "callerTraceId": op.caller_trace_id,
            "accessKeyId": op.access_key_id,
        }
        for op in task.audit_entries.order_by("id")
    ]


def _series(subtask: SubtaskInstance) -> tuple[int, int]:
    return (subtask.series_id, subtask.pk)


def _time(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower()
    return slug[:60] or "subtask"


def diagnosis_response(task: TaskInstance) -> FileResponse:
    """The diagnosis zip of `task` as a download, for the pages and the API alike; spooled
    to disk when large."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - FileResponse closes it
    write_diagnosis_zip(task, spool)
    spool.seek(0)
    return FileResponse(
        spool, as_attachment=True, filename=diagnosis_filename(task), content_type="application/zip"
    )
