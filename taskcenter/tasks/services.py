"""Every change of a task or subtask status happens here, one function per operation.

Rules (see DESIGN.md): each operation runs in one transaction that first locks the task
row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction is IMMEDIATE, which
serialises writers), then changes rows with compare-and-set updates whose row count says
whether the transition was allowed. Celery work is enqueued only on commit, and every
operation writes its audit row in the same transaction.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from taskcenter.core.trace import current_trace_id
from taskcenter.engine.dispatch import enqueue_attempt, enqueue_attempts
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
        edges = [
            ([id_of[u] for u in dict.fromkeys(sub.upstreams)], downstream[sub.key], row.pk)
            for sub, row in zip(ordered, rows, strict=True)
        ]
        _store_edges(edges)
        _audit(creator, "START", task, to_status=TaskStatus.RUNNING, reason=spec.name)
        roots = [row.pk for sub, row in zip(ordered, rows, strict=True) if not sub.upstreams]
        _make_ready(roots, [SubtaskStatus.PENDING], operation=SubtaskOperation.EXECUTE)
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
        failed = list(
            task.subtasks.filter(status=SubtaskStatus.FAILED).values_list("pk", flat=True)
        )
        _make_ready(failed, [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
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
        _make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
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
#
# The claim and the finish run once per subtask attempt; with Celery's own message they are
# the whole cost of the engine (benchmarks/engine_overhead.py). They use a few plain SQL
# statements instead of ORM queries: building querysets and model instances took more
# Python time than the database took to answer. The SQL is portable: UPDATE ... RETURNING
# works on SQLite (3.35 and later) and PostgreSQL, and FOR UPDATE is added where supported.


@dataclass(frozen=True)
class ClaimedAttempt:
    """What a worker needs to run an attempt it has claimed."""

    subtask_id: int
    task_id: int
    attempt: int
    name: str
    node_type: str
    operation: str
    action: dict
    rollback_action: dict | None
    run_time: int
    timeout: int
    parameters: dict

    @property
    def is_rollback(self) -> bool:
        return self.operation == SubtaskOperation.ROLLBACK


def attempt_claim(*, subtask_id: int, attempt: int, executor: str) -> ClaimedAttempt | None:
    """READY -> RUNNING for exactly this attempt; None when it was already claimed or moved on.

    This is what makes a redelivered Celery message harmless. The claim is one
    compare-and-set statement that also returns the task's parameters, committed on its
    own so that the reaper and the pages see RUNNING at once (or with the finish of the
    previous link, when that finish claims it: see attempt_finish).
    """
    now = _db_time(timezone.now())
    task_column = f"(SELECT {{}} FROM {_TASKS} WHERE {_TASKS}.id = {_SUBTASKS}.task_id)"
    rows = _sql(
        f"UPDATE {_SUBTASKS} SET status = %s, executor = %s, start_time = %s,"
        " finish_time = NULL, heartbeat_at = %s"
        " WHERE id = %s AND attempt = %s AND status = %s"
        " RETURNING task_id, name, node_type, operation, action, rollback_action, run_time,"
        f" timeout, prohibit_rollback, {task_column.format('parameters')},"
        f" {task_column.format('executor')}, {task_column.format('prohibit_rollback')}",
        [SubtaskStatus.RUNNING, executor, now, now, subtask_id, attempt, SubtaskStatus.READY],
    )
    if not rows:
        return None
    (
        task_id,
        name,
        node_type,
        operation,
        action,
        rollback,
        run_time,
        timeout,
        prohibit,
        parameters,
        task_executor,
        task_prohibits,
    ) = rows[0]
    claimed = ClaimedAttempt(
        subtask_id=subtask_id,
        task_id=task_id,
        attempt=attempt,
        name=name,
        node_type=node_type,
        operation=operation,
        action=_json(action) or {},
        rollback_action=_json(rollback),
        run_time=run_time,
        timeout=timeout,
        parameters=_json(parameters) or {},
    )
    # Recorded before the action runs: once a prohibit-rollback subtask has started, the
    # task must refuse a rollback even if this worker dies in the middle of the action.
    if prohibit and not claimed.is_rollback and not task_prohibits:
        _sql(f"UPDATE {_TASKS} SET prohibit_rollback = %s WHERE id = %s", [True, task_id])
    if not task_executor:
        _sql(
            f"UPDATE {_TASKS} SET executor = %s WHERE id = %s AND executor = ''",
            [executor, task_id],
        )
    return claimed


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


@dataclass(frozen=True)
class FinishedAttempt:
    """What attempt_finish did: whether it ended the attempt, and what to run next."""

    ended: bool
    # A downstream made READY by this finish and claimed for the caller (claim_next_as).
    next: ClaimedAttempt | None = None


def attempt_finish(
    *,
    subtask_id: int,
    attempt: int,
    task_id: int | None = None,
    succeeded: bool,
    log: bytes = b"",
    result: Any = None,
    claim_next_as: str | None = None,
) -> FinishedAttempt:
    """End a running attempt with its outcome, then let the DAG move on.

    A failed forward attempt is retried automatically while runTime <= retryCount, unless
    it was cancelled. `ended` is False when the attempt had already been ended (by the
    reaper). With `claim_next_as` (an executor name), one of the downstreams this finish
    makes READY is claimed for that executor instead of being sent to the broker (in the
    same transaction, or right after the one-trip finish on PostgreSQL, where a worker
    lost in between leaves a READY subtask that the reaper sends again): a worker runs
    the next link of a chain itself, without a trip through the broker. The others are
    sent as usual.
    """
    if succeeded and task_id and connection.vendor == "postgresql":
        finished = _forward_success_in_one_trip(
            task_id, subtask_id, attempt, log, result, claim_next_as
        )
        if finished is not None:
            return finished
    with transaction.atomic():
        task, subtask = _lock_attempt(task_id or _task_id_of(subtask_id), subtask_id, attempt)
        if task is None or subtask is None:
            return FinishedAttempt(ended=False)
        claimed = _attempt_end(
            task,
            subtask,
            succeeded=succeeded,
            result=result,
            log=log,
            claim_next_as=claim_next_as,
        )
    return FinishedAttempt(ended=True, next=claimed)


def _forward_success_in_one_trip(
    task_id: int,
    subtask_id: int,
    attempt: int,
    log: bytes,
    result: Any,
    claim_next_as: str | None,
) -> FinishedAttempt | None:
    """PostgreSQL: the common finish (a forward attempt succeeded, its last log fits in one
    chunk under the cap) in one round trip; None when it is not that case, and then the
    general path runs and decides.

    The statements go in one simple query, which PostgreSQL runs as one transaction (or
    inside the caller's): lock the task row, then one statement whose data-modifying WITH
    parts end the attempt, store the log chunk at the log's current end and count the
    attempt off its downstreams, then see whether any subtask is still at work. The
    general path needs four round trips (BEGIN, lock and read, writes, COMMIT) with the
    task's row lock held across three: in a wide fan-out every finish waits for that lock,
    so what is held under it is what the whole fan-out takes.
    """
    if len(log) > LOG_CHUNK_MAX:
        return None
    now = _db_time(timezone.now())
    sets = ["status = %s", "finish_time = %s", "heartbeat_at = NULL", "log_size = log_size + %s"]
    set_params: list[Any] = [SubtaskStatus.SUCCESSFUL, now, len(log)]
    if result is not None:
        sets.append("result = %s")
        set_params.append(connection.ops.adapt_json_value(result, None))
    chunk = ""
    chunk_params: list[Any] = []
    if log:
        chunk = (
            f", chunk AS (INSERT INTO {_LOG_CHUNKS} (subtask_id, attempt,"
            f" {connection.ops.quote_name('offset')}, length, data, created_at)"
            " SELECT id, attempt, log_size - %s, %s, %s, %s FROM ended)"
        )
        chunk_params = [len(log), len(log), log, now]
    count_sets, count_params = _count_off_assignments()
    task_rows, rows, active_rows = _sql_batch(
        [
            _lock_task_statement(task_id),
            (
                f"WITH ended AS (UPDATE {_SUBTASKS} SET {', '.join(sets)}"
                " WHERE id = %s AND task_id = %s AND attempt = %s AND status IN (%s, %s)"
                " AND operation <> %s AND NOT log_truncated AND log_size + %s <= %s"
                f" RETURNING id, attempt, log_size, downstream_ids){chunk},"
                f" counted AS (UPDATE {_SUBTASKS} SET {count_sets} WHERE id IN"
                " (SELECT jsonb_array_elements_text(downstream_ids)::bigint FROM ended)"
                " RETURNING id, attempt, status, upstreams_left)"
                " SELECT 0, NULL, NULL, NULL FROM ended UNION ALL"
                " SELECT 1, id, attempt, CASE WHEN status = %s AND upstreams_left <= 0"
                " THEN 1 ELSE 0 END FROM counted",
                [
                    *set_params,
                    subtask_id,
                    task_id,
                    attempt,
                    SubtaskStatus.RUNNING,
                    SubtaskStatus.CANCELING,
                    SubtaskOperation.ROLLBACK,
                    len(log),
                    settings.TASKCENTER_LOG_CAP_BYTES,
                    *chunk_params,
                    *count_params,
                    SubtaskStatus.READY,
                ],
            ),
            _any_active_subtask(task_id),
        ]
    )
    if not task_rows or not any(kind == 0 for kind, *_ in rows):
        return None  # not this case (or already ended): the general path sorts it out
    started = sorted((pk, attempt) for kind, pk, attempt, ready in rows if kind == 1 and ready)
    claimed = _claim_one_send_others(started, claim_next_as)
    still_running = task_rows[0][0] == TaskStatus.RUNNING and active_rows
    if not (started or still_running):
        # Its own transaction: should this process stop just before it, the reaper
        # settles the task the same way (selectors.running_tasks_without_work).
        task_settle(task_id=task_id)
    return FinishedAttempt(ended=True, next=claimed)


def attempt_fail_lost(*, subtask_id: int, attempt: int, why: str) -> bool:
    """The reaper's verdict on an attempt whose worker stopped answering."""
    with transaction.atomic():
        task, subtask = _lock_attempt(_task_id_of(subtask_id), subtask_id, attempt)
        if task is None or subtask is None:
            return False
        _log_line(subtask, f"worker lost: {why}; the attempt is marked FAILED")
        _audit(
            None, "WORKER_LOST", task, subtask.status, SubtaskStatus.FAILED, why, subtask=subtask
        )
        _attempt_end(task, subtask, succeeded=False, result=None)
        return True


def task_settle(*, task_id: int) -> bool:
    """Derive a task's status from its subtasks and record its end if it has ended; True
    when the status changed. The finish of an attempt does this; the reaper does it for
    a RUNNING task with no subtask left at work."""
    with transaction.atomic():
        task = _lock_task_state(task_id)
        before = task.status
        _task_refresh_status(task)
        return task.status != before


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
        _log_append(subtask_id, attempt, data)


# --- Internals ---------------------------------------------------------------------------------

_TASKS = TaskInstance._meta.db_table
_SUBTASKS = SubtaskInstance._meta.db_table
_LOG_CHUNKS = LogChunk._meta.db_table


@dataclass
class _TaskState:
    """The locked task row, as far as ending an attempt needs it."""

    pk: int
    status: str
    operation: str


@dataclass
class _AttemptState:
    """A subtask whose attempt is being ended, as far as ending it needs."""

    pk: int
    name: str
    attempt: int
    status: str
    operation: str
    run_time: int
    retry_count: int
    downstream_ids: list[int]
    log_size: int
    log_truncated: bool


def _sql(query: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _sql_batch(statements: list[tuple[str, list[Any]]]) -> list[list[tuple]]:
    """Run statements in order and return each one's rows.

    On PostgreSQL they travel in one round trip (Django's psycopg cursor binds parameters
    on the client, so one execute may hold several statements): the finish of an attempt
    holds the task's row lock, and round trips under the lock were most of its time. On
    SQLite, in the same process, there is no round trip to save.
    """
    results: list[list[tuple]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "; ".join(query for query, _ in statements),
                [param for _, params in statements for param in params],
            )
            while True:
                results.append(cursor.fetchall() if cursor.description else [])
                if not cursor.nextset():
                    return results
        for query, params in statements:
            cursor.execute(query, params)
            results.append(cursor.fetchall() if cursor.description else [])
    return results


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _json(value: Any) -> Any:
    """A JSON column read by plain SQL: text on SQLite (and for Django's psycopg loaders)."""
    return json.loads(value) if isinstance(value, str) else value


def _db_time(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _lock_task(task_id: int) -> TaskInstance:
    try:
        # Parameters are only needed by actions; not decoding them keeps the lock cheap.
        return TaskInstance.objects.select_for_update().defer("parameters").get(pk=task_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def _lock_task_statement(task_id: int) -> tuple[str, list[Any]]:
    """Lock the task row (as _lock_task does), reading only what deriving its status
    needs: status, operation."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT status, operation FROM {_TASKS} WHERE id = %s{lock}", [task_id]


def _lock_task_state(task_id: int) -> _TaskState:
    rows = _sql(*_lock_task_statement(task_id))
    if not rows:
        raise TaskNotFound(f"The {task_id} task does not exist.")
    return _TaskState(task_id, *rows[0])


def _lock_attempt(
    task_id: int, subtask_id: int, attempt: int
) -> tuple[_TaskState | None, _AttemptState | None]:
    """Lock the task row (as _lock_task does) and read the subtask if `attempt` is its
    current one and still RUNNING or CANCELING.

    Two statements in one round trip: the second one's snapshot is taken after the first
    has the lock, so it sees every change committed by the lock's previous holder.
    """
    task_rows, subtask_rows = _sql_batch(
        [
            _lock_task_statement(task_id),
            (
                f"SELECT name, status, operation, run_time, retry_count, downstream_ids,"
                f" log_size, log_truncated FROM {_SUBTASKS}"
                " WHERE id = %s AND task_id = %s AND attempt = %s AND status IN (%s, %s)",
                [subtask_id, task_id, attempt, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING],
            ),
        ]
    )
    if not task_rows or not subtask_rows:
        return None, None
    name, status, operation, run_time, retries, downs, size, truncated = subtask_rows[0]
    return _TaskState(task_id, *task_rows[0]), _AttemptState(
        pk=subtask_id,
        name=name,
        attempt=attempt,
        status=status,
        operation=operation,
        run_time=run_time,
        retry_count=retries,
        downstream_ids=_json(downs) or [],
        log_size=size,
        log_truncated=bool(truncated),
    )


def _store_edges(edges: list[tuple[list[int], list[int], int]]) -> None:
    """Write each new subtask's (upstream ids, downstream ids) once the ids are known.

    bulk_update's CASE expression per row took most of the start of a 1,000-subtask task
    in Python. On PostgreSQL one UPDATE joins a VALUES list (a statement per row was a
    round trip per row); SQLite, in-process, runs one prepared UPDATE per row.
    """
    rows = [(json.dumps(ups), json.dumps(downs), pk) for ups, downs, pk in edges if ups or downs]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {_SUBTASKS} AS s SET upstream_ids = v.ups::jsonb,"
                " downstream_ids = v.downs::jsonb"
                f" FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(rows))}) AS v(ups, downs, id)"
                " WHERE s.id = v.id",
                [value for row in rows for value in row],
            )
        else:
            cursor.executemany(
                f"UPDATE {_SUBTASKS} SET upstream_ids = %s, downstream_ids = %s WHERE id = %s",
                rows,
            )


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
    task: TaskInstance | _TaskState,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    subtask: SubtaskInstance | _AttemptState | None = None,
) -> None:
    target = f"task {task.pk}" + (f" / subtask {subtask.pk} {subtask.name}" if subtask else "")
    Operation.objects.create(
        actor=actor,
        actor_name=_actor_name(actor),
        action=action,
        task_id=task.pk,
        subtask_id=subtask.pk if subtask else None,
        target=target,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        trace_id=current_trace_id(),
    )


def _set_task(task: TaskInstance | _TaskState, **fields: Any) -> None:
    TaskInstance.objects.filter(pk=task.pk).update(**fields)
    for key, value in fields.items():
        setattr(task, key, value)


def _make_ready(
    ids: list[int],
    from_statuses: list[str],
    operation: str,
    count_run: bool = True,
    unblocked_only: bool = False,
) -> list[int]:
    """Compare-and-set these subtasks to READY with a new attempt; enqueue them on commit.

    Only those still in one of `from_statuses` (and, with `unblocked_only`, with no
    upstream left to wait for) change; their new attempt numbers come back from the same
    statement. Returns the ids made READY.
    """
    if not ids:
        return []
    assignments = _ready_assignments(operation, count_run)
    sets = [f"{column} = {value}" for column, value, _ in assignments]
    params = [param for _, _, values in assignments for param in values]
    where = f"id IN ({_placeholders(ids)}) AND status IN ({_placeholders(from_statuses)})"
    if unblocked_only:
        where += " AND upstreams_left <= 0"
    rows = sorted(
        _sql(
            f"UPDATE {_SUBTASKS} SET {', '.join(sets)} WHERE {where} RETURNING id, attempt",
            [*params, *ids, *from_statuses],
        )
    )
    enqueue_attempts(rows)
    return [pk for pk, _ in rows]


def _ready_assignments(operation: str, count_run: bool) -> list[tuple[str, str, list[Any]]]:
    """What making a subtask READY sets, as (column, SQL value, its parameters)."""
    assignments: list[tuple[str, str, list[Any]]] = [
        ("status", "%s", [SubtaskStatus.READY]),
        ("operation", "%s", [operation]),
        ("attempt", "attempt + 1", []),
        ("ready_at", "%s", [_db_time(timezone.now())]),
        ("finish_time", "NULL", []),
    ]
    if count_run:
        assignments.append(("run_time", "run_time + 1", []))
    if operation == SubtaskOperation.ROLLBACK:
        assignments.append(("rollback_pending", "%s", [False]))
    return assignments


def _count_off_assignments() -> tuple[str, list[Any]]:
    """The SET list that counts a succeeded subtask off a downstream, and makes READY in
    the same statement one that waited for it alone (SET expressions all see the row as
    it was)."""
    last_one = "upstreams_left <= 1 AND status = %s"
    sets = ["upstreams_left = upstreams_left - 1"]
    params: list[Any] = []
    for column, value, values in _ready_assignments(SubtaskOperation.EXECUTE, count_run=True):
        sets.append(f"{column} = CASE WHEN {last_one} THEN {value} ELSE {column} END")
        params += [SubtaskStatus.PENDING, *values]
    return ", ".join(sets), params


def _count_off_statement(downstream_ids: list[int]) -> tuple[str, list[Any]]:
    sets, params = _count_off_assignments()
    return (
        f"UPDATE {_SUBTASKS} SET {sets} WHERE id IN ({_placeholders(downstream_ids)})"
        " RETURNING id, attempt, status, upstreams_left",
        [*params, *downstream_ids],
    )


def _start_unblocked(candidate_ids: list[int]) -> list[int]:
    return _make_ready(
        candidate_ids,
        [SubtaskStatus.PENDING],
        operation=SubtaskOperation.EXECUTE,
        unblocked_only=True,
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


def _ready_rollback(task: TaskInstance | _TaskState) -> None:
    """Make READY every subtask waiting for rollback whose downstreams are all PENDING."""
    rows = list(
        SubtaskInstance.objects.filter(task_id=task.pk).values_list(
            "pk", "status", "rollback_pending", "downstream_ids"
        )
    )
    status_of = {pk: status for pk, status, _, _ in rows}
    ready = [
        pk
        for pk, status, pending, downs in rows
        if pending
        and status in (SubtaskStatus.SUCCESSFUL, SubtaskStatus.FAILED)
        and all(status_of[d] == SubtaskStatus.PENDING for d in downs)
    ]
    _make_ready(
        ready,
        [SubtaskStatus.SUCCESSFUL, SubtaskStatus.FAILED],
        operation=SubtaskOperation.ROLLBACK,
        count_run=False,
    )


def _task_refresh_status(task: TaskInstance | _TaskState) -> None:
    """Derive the task status from its subtasks (OCP's rules) and record a finish."""
    if task.status == TaskStatus.RUNNING and _sql(*_any_active_subtask(task.pk)):
        return  # the common case while work goes on: one indexed EXISTS, no aggregate
    subtasks = SubtaskInstance.objects.filter(task_id=task.pk)
    counts = dict(subtasks.values_list("status").annotate(n=Count("pk")).order_by())
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
        rolled_back = (
            new_status == TaskStatus.SUCCESSFUL and task.operation == TaskOperation.ROLLBACK
        )
        label = "rolled back" if rolled_back else new_status
        _audit(None, "FINISH", task, previous, new_status, f"task ended {label}")


def _attempt_end(
    task: _TaskState,
    subtask: _AttemptState,
    succeeded: bool,
    result: Any,
    log: bytes = b"",
    claim_next_as: str | None = None,
) -> ClaimedAttempt | None:
    """Record the attempt's outcome and its last log, and move the DAG and the task on.

    The caller holds the task lock and has just read the subtask at this attempt, so the
    compare-and-set below cannot miss. The writes and the first follow-up reads go in one
    round trip (see _sql_batch). Returns the downstream claimed for `claim_next_as`.
    """
    rollback = subtask.operation == SubtaskOperation.ROLLBACK
    canceled = subtask.status == SubtaskStatus.CANCELING
    fields: dict[str, Any] = {"finish_time": _db_time(timezone.now()), "heartbeat_at": None}
    statements = []
    log_insert, log_fields = _log_chunks_insert(
        subtask.pk, subtask.attempt, log, subtask.log_size, subtask.log_truncated
    )
    if log_insert:
        statements.append(log_insert)
        fields.update(log_fields)
    if result is not None:
        fields["result"] = connection.ops.adapt_json_value(result, None)
    if succeeded:
        fields["status"] = SubtaskStatus.PENDING if rollback else SubtaskStatus.SUCCESSFUL
    else:
        fields["status"] = SubtaskStatus.FAILED
        if canceled:
            fields["operation"] = SubtaskOperation.CANCEL
    statements.append(
        (
            f"UPDATE {_SUBTASKS} SET {', '.join(f'{name} = %s' for name in fields)}"
            " WHERE id = %s AND attempt = %s AND status IN (%s, %s) RETURNING id",
            [
                *fields.values(),
                subtask.pk,
                subtask.attempt,
                SubtaskStatus.RUNNING,
                SubtaskStatus.CANCELING,
            ],
        )
    )
    forward_success = succeeded and not rollback
    if forward_success:
        if subtask.downstream_ids:
            statements.append(_count_off_statement(subtask.downstream_ids))
        statements.append(_any_active_subtask(task.pk))
    results = _sql_batch(statements)
    if not results[1 if log_insert else 0]:
        raise RuntimeError(f"subtask {subtask.pk} changed under its task's lock")
    if forward_success:
        counted = results[-2] if subtask.downstream_ids else []
        started = sorted(
            (pk, attempt)
            for pk, attempt, status, left in counted
            if status == SubtaskStatus.READY and left <= 0
        )
        if started:  # work was just started, so the task is still RUNNING
            return _claim_one_send_others(started, claim_next_as)
        if task.status == TaskStatus.RUNNING and results[-1]:
            return None  # other subtasks are still at work
    elif succeeded:
        _ready_rollback(task)
    elif not rollback and not canceled and subtask.run_time <= subtask.retry_count:
        _log_line(
            subtask,
            f"attempt failed; retrying automatically (run {subtask.run_time + 1} of "
            f"{subtask.retry_count + 1})",
        )
        _audit(None, "AUTO_RETRY", task, SubtaskStatus.FAILED, SubtaskStatus.READY, subtask=subtask)
        _make_ready([subtask.pk], [SubtaskStatus.FAILED], operation=SubtaskOperation.RETRY)
    _task_refresh_status(task)
    return None


def _claim_one_send_others(
    started: list[tuple[int, int]], claim_next_as: str | None
) -> ClaimedAttempt | None:
    """Claim the first of the (subtask id, attempt) just made READY for `claim_next_as`,
    if given, and enqueue the others."""
    claimed = None
    if started and claim_next_as:
        subtask_id, attempt = started[0]
        claimed = attempt_claim(subtask_id=subtask_id, attempt=attempt, executor=claim_next_as)
        started = started[1:]
    enqueue_attempts(started)
    return claimed


def _any_active_subtask(task_id: int) -> tuple[str, list[Any]]:
    """A statement whose one row says that some subtask of the task is still at work."""
    active = list(ACTIVE_SUBTASK_STATUSES)
    return (
        f"SELECT 1 FROM {_SUBTASKS} WHERE task_id = %s AND status IN ({_placeholders(active)})"
        " LIMIT 1",
        [task_id, *active],
    )


def _log_line(subtask: SubtaskInstance | _AttemptState, message: str) -> None:
    _log_append(subtask.pk, subtask.attempt, format_log_line(message))


_HOSTNAME = socket.gethostname()


def format_log_line(message: str) -> bytes:
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{stamp} [{_HOSTNAME}] {message}\n".encode()


def _log_append(subtask_id: int, attempt: int, data: bytes) -> None:
    """Append `data` to the log at its current end.

    The subtask row is locked for the read: the worker's watcher appends under that row
    lock, not the task's, and two appends must not both write at the same offset.
    """
    row = (
        SubtaskInstance.objects.select_for_update()
        .filter(pk=subtask_id)
        .values("log_size", "log_truncated")
        .get()
    )
    fields = _write_log_chunks(subtask_id, attempt, data, row["log_size"], row["log_truncated"])
    if fields:
        SubtaskInstance.objects.filter(pk=subtask_id).update(**fields)


def _write_log_chunks(
    subtask_id: int, attempt: int, data: bytes, size: int, truncated: bool
) -> dict[str, Any]:
    """Insert `data` as chunks from byte `size` on, respecting the cap.

    Returns the log_size/log_truncated fields for the caller's UPDATE of the subtask.
    """
    insert, fields = _log_chunks_insert(subtask_id, attempt, data, size, truncated)
    if insert:
        _sql(*insert)
    return fields


def _log_chunks_insert(
    subtask_id: int, attempt: int, data: bytes, size: int, truncated: bool
) -> tuple[tuple[str, list[Any]] | None, dict[str, Any]]:
    """The INSERT of `data` as chunks from byte `size` on, respecting the cap, and the
    log_size/log_truncated fields for the caller's UPDATE of the subtask."""
    if truncated or not data:
        return None, {}
    cap = settings.TASKCENTER_LOG_CAP_BYTES
    if size + len(data) > cap:
        marker = (
            f"\n[log truncated: reached the limit of {cap} bytes; "
            "later output of this subtask is not kept]\n"
        ).encode()
        data = data[: max(0, cap - size)] + marker
        truncated = True
    now = _db_time(timezone.now())
    rows: list[Any] = []
    for start in range(0, len(data), LOG_CHUNK_MAX):
        piece = data[start : start + LOG_CHUNK_MAX]
        rows.append((subtask_id, attempt, size, len(piece), piece, now))
        size += len(piece)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    insert = (
        f"INSERT INTO {_LOG_CHUNKS} (subtask_id, attempt, {connection.ops.quote_name('offset')},"
        f" length, data, created_at) VALUES {values}",
        [value for row in rows for value in row],
    )
    return insert, {"log_size": size, "log_truncated": truncated}
