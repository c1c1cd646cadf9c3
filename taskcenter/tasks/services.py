"""Every change of a task or subtask status happens here, one function per operation.

Rules (see DESIGN.md): each operation runs in one transaction that first locks the task
row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction is IMMEDIATE, which
serialises writers), then changes rows with compare-and-set updates whose row count says
whether the transition was allowed. Celery work is enqueued only on commit, and every
operation writes its audit row in the same transaction.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from taskcenter.core.trace import current_trace_id
from taskcenter.engine.dispatch import enqueue_attempt
from taskcenter.tasks import definitions
from taskcenter.tasks.errors import (
    InvalidDefinition,
    InvalidState,
    RollbackProhibited,
    TaskNotFound,
)
from taskcenter.tasks.models import (
    ACTIVE_SUBTASK_STATUSES,
    Cluster,
    Host,
    LogChunk,
    Operation,
    SubtaskInstance,
    SubtaskOperation,
    SubtaskStatus,
    TaskDefinition,
    TaskInstance,
    TaskOperation,
    TaskStatus,
    TaskType,
    Tenant,
)

LOG_CHUNK_MAX = 64 * 1024
# Columns the finishing path never reads; skipping them saves JSON decoding per subtask.
_HEAVY_SUBTASK_FIELDS = ("action", "rollback_action", "result", "description", "upstream_ids")


# --- Definitions -------------------------------------------------------------------------------


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


# --- Starting a task ------------------------------------------------------------------------


def task_start(
    *,
    definition_name: str,
    parameters: dict[str, Any] | None = None,
    creator=None,
    cluster: Cluster | None = None,
    tenant: Tenant | None = None,
    hosts: Iterable[Host] = (),
    type: str = TaskType.MANUAL,
    name: str | None = None,
    version: int | None = None,
) -> TaskInstance:
    """Create a task instance from a definition and start its root subtasks."""
    spec, definition_row = definition_resolve(name=definition_name, version=version)
    params = spec.resolve_parameters(parameters or {})
    ordered = definitions.validate_subtasks(spec.name, spec.build(params))
    now = timezone.now()
    with transaction.atomic():
        definition_row = definition_row or definition_sync(spec=spec)
        task = TaskInstance.objects.create(
            name=name or spec.name,
            definition=definition_row,
            cluster=cluster or (tenant.cluster if tenant else None),
            tenant=tenant,
            creator=creator,
            status=TaskStatus.RUNNING,
            type=type,
            operation=TaskOperation.EXECUTE,
            parameters=params,
            start_time=now,
            subtask_total=len(ordered),
        )
        if hosts:
            task.hosts.set(hosts)
        rows = SubtaskInstance.objects.bulk_create(
            [
                SubtaskInstance(
                    task=task,
                    name=sub.name,
                    series_id=index,
                    description=sub.description or sub.name,
                    timeout=sub.timeout,
                    node_type=sub.kind,
                    parallel_idx=sub.parallel_idx,
                    prohibit_rollback=sub.prohibit_rollback,
                    retry_count=sub.retry_count,
                    action=sub.action,
                    rollback_action=sub.rollback,
                    upstreams_left=len(set(sub.upstreams)),
                )
                for index, sub in enumerate(ordered)
            ]
        )
        id_of = {sub.key: row.pk for sub, row in zip(ordered, rows, strict=True)}
        downstream: dict[str, list[int]] = {sub.key: [] for sub in ordered}
        for sub in ordered:
            for upstream in dict.fromkeys(sub.upstreams):
                downstream[upstream].append(id_of[sub.key])
        for sub, row in zip(ordered, rows, strict=True):
            row.upstream_ids = [id_of[u] for u in dict.fromkeys(sub.upstreams)]
            row.downstream_ids = downstream[sub.key]
        SubtaskInstance.objects.bulk_update(
            rows, ["upstream_ids", "downstream_ids"], batch_size=500
        )
        _audit(creator, "START", task, to_status=TaskStatus.RUNNING, reason=spec.name)
        roots = [row.pk for row in rows if not row.upstream_ids]
        _make_ready(
            SubtaskInstance.objects.filter(pk__in=roots),
            [SubtaskStatus.PENDING],
            operation=SubtaskOperation.EXECUTE,
        )
    return task


# --- Task operations ----------------------------------------------------------------------------


def task_retry(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Run every FAILED subtask again; the task continues from where it failed."""
    with transaction.atomic():
        task = _lock_task(task_id)
        refused = _invalid_state(task, "retry")
        if task.status != TaskStatus.FAILED or task.operation == TaskOperation.ROLLBACK:
            raise refused
        _recount_upstreams(task)
        _make_ready(task.subtasks.all(), [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
        _set_task(task, status=TaskStatus.RUNNING, operation=TaskOperation.RETRY, finish_time=None)
        _audit(actor, "RETRY", task, TaskStatus.FAILED, TaskStatus.RUNNING, reason)
    return task


def task_rollback(*, task_id: int, actor=None, reason: str = "") -> TaskInstance:
    """Undo every started subtask, walking the DAG backwards ("give up" in OCP)."""
    with transaction.atomic():
        task = _lock_task(task_id)
        if task.status != TaskStatus.FAILED:
            raise _invalid_state(task, "rollback")
        if (
            task.prohibit_rollback
            or task.subtasks.filter(prohibit_rollback=True, start_time__isnull=False).exists()
        ):
            raise RollbackProhibited(
                f"The {task.pk} task cannot be rolled back: a subtask that has run prohibits it."
            )
        task.subtasks.exclude(status=SubtaskStatus.PENDING).update(
            operation=SubtaskOperation.ROLLBACK, rollback_pending=True
        )
        _set_task(
            task, status=TaskStatus.RUNNING, operation=TaskOperation.ROLLBACK, finish_time=None
        )
        _audit(actor, "ROLLBACK", task, TaskStatus.FAILED, TaskStatus.RUNNING, reason)
        _ready_rollback(task)
        _task_refresh_status(task)
    return task


# --- Subtask operations -------------------------------------------------------------------------


def subtask_retry(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    with transaction.atomic():
        task = _lock_task(task_id)
        subtask = _get_subtask(task, subtask_id)
        if subtask.status != SubtaskStatus.FAILED or subtask.is_rollback:
            raise _invalid_state(subtask, "retry", kind="subtask")
        _recount_upstreams(task)
        _make_ready(
            task.subtasks.filter(pk=subtask.pk),
            [SubtaskStatus.FAILED],
            operation=SubtaskOperation.RETRY,
        )
        _audit(
            actor,
            "SUBTASK_RETRY",
            task,
            SubtaskStatus.FAILED,
            SubtaskStatus.READY,
            reason,
            subtask=subtask,
        )
        _task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def subtask_skip(*, task_id: int, subtask_id: int, actor=None, reason: str = "") -> SubtaskInstance:
    """Treat a FAILED subtask as done ("set to success"); in a rollback, as rolled back."""
    with transaction.atomic():
        task = _lock_task(task_id)
        subtask = _get_subtask(task, subtask_id)
        if subtask.status != SubtaskStatus.FAILED:
            raise _invalid_state(subtask, "skip", kind="subtask")
        now = timezone.now()
        if subtask.is_rollback:
            new_status, operation = SubtaskStatus.PENDING, SubtaskOperation.ROLLBACK_SKIP
        else:
            new_status, operation = SubtaskStatus.SUCCESSFUL, SubtaskOperation.SKIP
        updated = SubtaskInstance.objects.filter(pk=subtask.pk, status=SubtaskStatus.FAILED).update(
            status=new_status, operation=operation, finish_time=now, rollback_pending=False
        )
        if updated != 1:
            raise _invalid_state(subtask, "skip", kind="subtask")
        _log_line(subtask, f"skipped by {_actor_name(actor)}" + (f": {reason}" if reason else ""))
        _audit(actor, "SKIP", task, SubtaskStatus.FAILED, new_status, reason, subtask=subtask)
        if subtask.is_rollback:
            _ready_rollback(task)
        else:
            _recount_upstreams(task)  # counts the skipped subtask as succeeded
            _start_unblocked(subtask.downstream_ids)
        _task_refresh_status(task)
        subtask.refresh_from_db()
    return subtask


def subtask_cancel(
    *, task_id: int, subtask_id: int, actor=None, reason: str = ""
) -> SubtaskInstance:
    """Ask the worker to stop a RUNNING subtask; it ends FAILED with operation CANCEL."""
    with transaction.atomic():
        task = _lock_task(task_id)
        subtask = _get_subtask(task, subtask_id)
        updated = SubtaskInstance.objects.filter(
            pk=subtask.pk, status=SubtaskStatus.RUNNING
        ).update(status=SubtaskStatus.CANCELING, operation=SubtaskOperation.CANCEL)
        if updated != 1:
            raise _invalid_state(subtask, "cancel", kind="subtask")
        _log_line(subtask, f"cancel requested by {_actor_name(actor)}")
        _audit(
            actor,
            "CANCEL",
            task,
            SubtaskStatus.RUNNING,
            SubtaskStatus.CANCELING,
            reason,
            subtask=subtask,
        )
        subtask.refresh_from_db()
    return subtask


# --- Engine-facing operations (called by the worker and the reaper) -----------------------------


def attempt_claim(*, subtask_id: int, attempt: int, executor: str) -> SubtaskInstance | None:
    """READY -> RUNNING for exactly this attempt; None when it was already claimed or moved on.

    This is what makes a redelivered Celery message harmless.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = SubtaskInstance.objects.filter(
            pk=subtask_id, attempt=attempt, status=SubtaskStatus.READY
        ).update(
            status=SubtaskStatus.RUNNING,
            executor=executor,
            start_time=now,
            finish_time=None,
            heartbeat_at=now,
        )
        if claimed != 1:
            return None
        # The task comes along for its parameters, which the action needs.
        subtask = SubtaskInstance.objects.select_related("task").get(pk=subtask_id)
        task_updates: dict[str, Any] = {}
        if subtask.prohibit_rollback and not subtask.is_rollback:
            task_updates["prohibit_rollback"] = True
        if not subtask.task.executor:
            task_updates["executor"] = executor
        if task_updates:
            TaskInstance.objects.filter(pk=subtask.task_id).update(**task_updates)
    return subtask


def attempt_heartbeat(*, subtask_id: int, attempt: int) -> bool:
    """Record that the attempt's worker is alive; False when the attempt is no longer running."""
    return (
        SubtaskInstance.objects.filter(
            pk=subtask_id,
            attempt=attempt,
            status__in=[SubtaskStatus.RUNNING, SubtaskStatus.CANCELING],
        ).update(heartbeat_at=timezone.now())
        == 1
    )


def attempt_finish(
    *,
    subtask_id: int,
    attempt: int,
    task_id: int | None = None,
    succeeded: bool,
    log: bytes = b"",
    result: Any = None,
) -> SubtaskInstance | None:
    """End a running attempt with its outcome, then let the DAG move on.

    A failed forward attempt is retried automatically while runTime <= retryCount, unless
    it was cancelled. Returns None when the attempt had already been ended (by the reaper).
    """
    with transaction.atomic():
        if task_id is None:
            task_id = _task_id_of(subtask_id)
        task = _lock_task(task_id)
        subtask = SubtaskInstance.objects.defer(*_HEAVY_SUBTASK_FIELDS).get(pk=subtask_id)
        if subtask.attempt != attempt or subtask.status not in (
            SubtaskStatus.RUNNING,
            SubtaskStatus.CANCELING,
        ):
            return None
        # The subtask row was just read under the task lock: its log size is current.
        log_fields = _write_log_chunks(
            subtask.pk, attempt, log, subtask.log_size, subtask.log_truncated
        )
        _attempt_end(task, subtask, succeeded=succeeded, result=result, extra_fields=log_fields)
    return subtask


def attempt_fail_lost(*, subtask_id: int, attempt: int, why: str) -> bool:
    """The reaper's verdict on an attempt whose worker stopped answering."""
    with transaction.atomic():
        task = _lock_task(_task_id_of(subtask_id))
        subtask = SubtaskInstance.objects.get(pk=subtask_id)
        if subtask.attempt != attempt or subtask.status not in (
            SubtaskStatus.RUNNING,
            SubtaskStatus.CANCELING,
        ):
            return False
        _log_line(subtask, f"worker lost: {why}; the attempt is marked FAILED")
        _audit(
            None, "WORKER_LOST", task, subtask.status, SubtaskStatus.FAILED, why, subtask=subtask
        )
        _attempt_end(task, subtask, succeeded=False, result=None)
    return True


def attempt_redispatch(*, subtask_id: int, attempt: int) -> bool:
    """Enqueue a READY attempt again (its message may be lost); claiming is idempotent."""
    still_ready = SubtaskInstance.objects.filter(
        pk=subtask_id, attempt=attempt, status=SubtaskStatus.READY
    ).update(ready_at=timezone.now())
    if still_ready:
        enqueue_attempt(subtask_id, attempt)
    return bool(still_ready)


def log_append(*, subtask_id: int, attempt: int, data: bytes) -> None:
    """Append to a subtask's log (the worker streams output through this)."""
    if not data:
        return
    with transaction.atomic():
        subtask = (
            SubtaskInstance.objects.select_for_update()
            .only("pk", "log_size", "log_truncated")
            .get(pk=subtask_id)
        )
        _log_append(subtask, attempt, data)


# --- Internals ---------------------------------------------------------------------------------


def _lock_task(task_id: int) -> TaskInstance:
    try:
        # Parameters are only needed by actions; not decoding them keeps the lock cheap.
        return TaskInstance.objects.select_for_update().defer("parameters").get(pk=task_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def _task_id_of(subtask_id: int) -> int:
    return (
        SubtaskInstance.objects.filter(pk=subtask_id).values_list("task_id", flat=True).first() or 0
    )


def _get_subtask(task: TaskInstance, subtask_id: int) -> SubtaskInstance:
    try:
        return task.subtasks.get(pk=subtask_id)
    except SubtaskInstance.DoesNotExist:
        raise TaskNotFound(
            f"The {subtask_id} subtask does not exist in the {task.pk} task."
        ) from None


def _invalid_state(obj: TaskInstance | SubtaskInstance, action: str, kind: str = "task"):
    detail = f"{obj.status}" + (f"/{obj.operation}" if obj.operation else "")
    return InvalidState(
        f"This operation ({action}) is not supported for the {obj.pk} {kind} in the {detail} state."
    )


def _actor_name(actor) -> str:
    return actor.get_username() if actor is not None else "system"


def _audit(
    actor,
    action: str,
    task: TaskInstance,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    subtask: SubtaskInstance | None = None,
) -> None:
    target = f"task {task.pk}" + (f" / subtask {subtask.pk} {subtask.name}" if subtask else "")
    Operation.objects.create(
        actor=actor,
        actor_name=_actor_name(actor),
        action=action,
        task=task,
        subtask=subtask,
        target=target,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        trace_id=current_trace_id(),
    )


def _set_task(task: TaskInstance, **fields: Any) -> None:
    TaskInstance.objects.filter(pk=task.pk).update(**fields)
    for key, value in fields.items():
        setattr(task, key, value)


def _make_ready(
    candidates: QuerySet[SubtaskInstance],
    from_statuses: list[str],
    operation: str,
    count_run: bool = True,
) -> list[int]:
    """Compare-and-set the candidates to READY with a new attempt; enqueue them on commit.

    The caller holds the task lock, so the attempts read here are the ones being bumped.
    """
    rows = list(candidates.filter(status__in=from_statuses).values_list("pk", "attempt"))
    if not rows:
        return []
    updates: dict[str, Any] = {
        "status": SubtaskStatus.READY,
        "operation": operation,
        "attempt": F("attempt") + 1,
        "ready_at": timezone.now(),
        "finish_time": None,
    }
    if count_run:
        updates["run_time"] = F("run_time") + 1
    if operation == SubtaskOperation.ROLLBACK:
        updates["rollback_pending"] = False
    ids = [pk for pk, _ in rows]
    SubtaskInstance.objects.filter(pk__in=ids, status__in=from_statuses).update(**updates)
    for pk, attempt in rows:
        enqueue_attempt(pk, attempt + 1)
    return ids


def _release_downstreams(subtask: SubtaskInstance) -> list[int]:
    """A subtask succeeded: count it off its downstreams and start those now unblocked."""
    if not subtask.downstream_ids:
        return []
    SubtaskInstance.objects.filter(pk__in=subtask.downstream_ids).update(
        upstreams_left=F("upstreams_left") - 1
    )
    return _start_unblocked(subtask.downstream_ids)


def _start_unblocked(candidate_ids: list[int]) -> list[int]:
    return _make_ready(
        SubtaskInstance.objects.filter(pk__in=candidate_ids, upstreams_left__lte=0),
        [SubtaskStatus.PENDING],
        operation=SubtaskOperation.EXECUTE,
    )


def _recount_upstreams(task: TaskInstance) -> None:
    """Set every subtask's upstreams_left from the statuses (before work resumes)."""
    rows = list(task.subtasks.values_list("pk", "status", "upstream_ids", "upstreams_left"))
    succeeded = {pk for pk, status, _, _ in rows if status == SubtaskStatus.SUCCESSFUL}
    changed = [
        SubtaskInstance(pk=pk, upstreams_left=left)
        for pk, _, ups, current in rows
        if (left := sum(1 for u in ups if u not in succeeded)) != current
    ]
    SubtaskInstance.objects.bulk_update(changed, ["upstreams_left"], batch_size=500)


def _ready_rollback(task: TaskInstance) -> None:
    """Make READY every subtask waiting for rollback whose downstreams are all PENDING."""
    rows = list(task.subtasks.values_list("pk", "status", "rollback_pending", "downstream_ids"))
    status_of = {pk: status for pk, status, _, _ in rows}
    ready = [
        pk
        for pk, status, pending, downs in rows
        if pending
        and status in (SubtaskStatus.SUCCESSFUL, SubtaskStatus.FAILED)
        and all(status_of[d] == SubtaskStatus.PENDING for d in downs)
    ]
    _make_ready(
        SubtaskInstance.objects.filter(pk__in=ready),
        [SubtaskStatus.SUCCESSFUL, SubtaskStatus.FAILED],
        operation=SubtaskOperation.ROLLBACK,
        count_run=False,
    )


def _task_refresh_status(task: TaskInstance) -> None:
    """Derive the task status from its subtasks (OCP's rules) and record a finish."""
    active = task.subtasks.filter(status__in=ACTIVE_SUBTASK_STATUSES)
    if task.status == TaskStatus.RUNNING and active.exists():
        return  # the common case while work goes on: one indexed EXISTS, no aggregate
    counts = dict(task.subtasks.values_list("status").annotate(n=Count("pk")).order_by())
    total = sum(counts.values())
    if any(counts.get(status, 0) for status in ACTIVE_SUBTASK_STATUSES):
        new_status = TaskStatus.RUNNING
    elif task.operation == TaskOperation.ROLLBACK:
        all_back = counts.get(SubtaskStatus.PENDING, 0) == total
        new_status = TaskStatus.SUCCESSFUL if all_back else TaskStatus.FAILED
    else:
        all_done = counts.get(SubtaskStatus.SUCCESSFUL, 0) == total
        new_status = TaskStatus.SUCCESSFUL if all_done else TaskStatus.FAILED
    if new_status == task.status:
        return
    previous = task.status
    finish_time: datetime | None = None if new_status == TaskStatus.RUNNING else timezone.now()
    _set_task(task, status=new_status, finish_time=finish_time)
    if new_status != TaskStatus.RUNNING:
        label = "rolled back" if task.is_rolled_back else new_status
        _audit(None, "FINISH", task, previous, new_status, f"task ended {label}")


def _attempt_end(
    task: TaskInstance,
    subtask: SubtaskInstance,
    succeeded: bool,
    result: Any,
    extra_fields: dict[str, Any] | None = None,
) -> None:
    now = timezone.now()
    rollback = subtask.operation == SubtaskOperation.ROLLBACK
    canceled = subtask.status == SubtaskStatus.CANCELING
    fields: dict[str, Any] = {"finish_time": now, "heartbeat_at": None, **(extra_fields or {})}
    if result is not None:
        fields["result"] = result
    if succeeded:
        fields["status"] = SubtaskStatus.PENDING if rollback else SubtaskStatus.SUCCESSFUL
    else:
        fields["status"] = SubtaskStatus.FAILED
        if canceled:
            fields["operation"] = SubtaskOperation.CANCEL
    updated = SubtaskInstance.objects.filter(
        pk=subtask.pk,
        attempt=subtask.attempt,
        status__in=[SubtaskStatus.RUNNING, SubtaskStatus.CANCELING],
    ).update(**fields)
    if updated != 1:
        return
    if succeeded and rollback:
        _ready_rollback(task)
    elif succeeded:
        if _release_downstreams(subtask):
            return  # work was just started, so the task is still RUNNING
    elif not rollback and not canceled and subtask.run_time <= subtask.retry_count:
        _log_line(
            subtask,
            f"attempt failed; retrying automatically (run {subtask.run_time + 1} of "
            f"{subtask.retry_count + 1})",
        )
        _audit(None, "AUTO_RETRY", task, SubtaskStatus.FAILED, SubtaskStatus.READY, subtask=subtask)
        _make_ready(
            SubtaskInstance.objects.filter(pk=subtask.pk),
            [SubtaskStatus.FAILED],
            operation=SubtaskOperation.RETRY,
        )
    _task_refresh_status(task)


def _log_line(subtask: SubtaskInstance, message: str) -> None:
    _log_append(subtask, subtask.attempt, format_log_line(message))


def format_log_line(message: str) -> bytes:
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{stamp} [{socket.gethostname()}] {message}\n".encode()


def _log_append(subtask: SubtaskInstance, attempt: int, data: bytes) -> None:
    """Append `data` to the log; the caller holds a lock on the subtask or task row."""
    row = SubtaskInstance.objects.filter(pk=subtask.pk).values("log_size", "log_truncated").get()
    fields = _write_log_chunks(subtask.pk, attempt, data, row["log_size"], row["log_truncated"])
    if fields:
        SubtaskInstance.objects.filter(pk=subtask.pk).update(**fields)


def _write_log_chunks(
    subtask_id: int, attempt: int, data: bytes, size: int, truncated: bool
) -> dict[str, Any]:
    """Insert `data` as chunks from byte `size` on, respecting the cap.

    Returns the log_size/log_truncated fields for the caller's UPDATE of the subtask.
    """
    if truncated or not data:
        return {}
    cap = settings.TASKCENTER_LOG_CAP_BYTES
    if size + len(data) > cap:
        marker = (
            f"\n[log truncated: reached the limit of {cap} bytes; "
            "later output of this subtask is not kept]\n"
        ).encode()
        data = data[: max(0, cap - size)] + marker
        truncated = True
    chunks = []
    for start in range(0, len(data), LOG_CHUNK_MAX):
        piece = data[start : start + LOG_CHUNK_MAX]
        chunks.append(
            LogChunk(
                subtask_id=subtask_id, attempt=attempt, offset=size, length=len(piece), data=piece
            )
        )
        size += len(piece)
    LogChunk.objects.bulk_create(chunks)
    return {"log_size": size, "log_truncated": truncated}
