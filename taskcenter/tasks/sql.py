"""The hand-built SQL of the state machine and of log storage, in one place.

The claim and the finish run once per subtask attempt; with Celery's own message they are
the whole cost of the engine (benchmarks/engine_overhead.py). They use a few plain SQL
statements instead of ORM queries: building querysets and model instances took more
Python time than the database took to answer. The SQL is portable: UPDATE ... RETURNING
works on SQLite (3.35 and later) and PostgreSQL, and FOR UPDATE is added where supported.

A statement is a (query, parameters) pair, so that callers can run it alone (`run`) or
send several in one round trip (`run_batch`).
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.utils import timezone
from psycopg.pq import ExecStatus
from psycopg.types.json import Jsonb

from taskcenter.tasks.models import (
    ACTIVE_SUBTASK_STATUSES,
    LogChunk,
    NodeType,
    SubtaskAttempt,
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
)

Statement = tuple[str, list[Any]]

TASKS = TaskInstance._meta.db_table
SUBTASKS = SubtaskInstance._meta.db_table
LOG_CHUNKS = LogChunk._meta.db_table
ATTEMPTS = SubtaskAttempt._meta.db_table

# A log is stored as chunks of at most this many bytes; a tail read relies on the bound to
# find the first chunk it needs through the (subtask, offset) index.
LOG_CHUNK_MAX = 64 * 1024


def run(query: str, params: list[Any]) -> list[tuple]:
    if query.startswith(_PREPARED_PREFIX):
        return run_batch([(query, params)])[0]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def run_batch(statements: list[Statement]) -> list[list[tuple]]:
    """Run statements in order and return each one's rows.

    On PostgreSQL they travel in one round trip (Django's psycopg cursor binds parameters
    on the client, so one execute may hold several statements): the finish of an attempt
    holds the task's row lock, and round trips under the lock were most of its time. On
    SQLite, in the same process, there is no round trip to save. A statement made by
    `prepared` is prepared first, in the same round trip, if this connection has not
    prepared it yet.
    """
    results: list[list[tuple]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            preparing = _to_prepare(statements)
            query = "; ".join([*preparing.values(), *(query for query, _ in statements)])
            try:
                cursor.execute(query, [param for _, params in statements for param in params])
            except Exception:
                # Which PREPAREs ran is not known (one outlives a failure after it in the
                # same batch): the next batch starts again from none.
                _prepared_by_connection[connection.connection] = None
                raise
            _prepared_on_this_connection().update(preparing)
            raw = cursor.cursor  # psycopg's own: Django's wrapper adds a lookup per call
            for _ in preparing:  # a PREPARE (or DEALLOCATE) answers nothing
                raw.nextset()
            while True:
                answered = raw.pgresult is not None and raw.pgresult.status == TUPLES_OK
                results.append(raw.fetchall() if answered else [])
                if not raw.nextset():
                    return results
        for query, params in statements:
            cursor.execute(query, params)
            results.append(cursor.fetchall() if cursor.description else [])
    return results


# --- Prepared statements (PostgreSQL) ------------------------------------------------------------
#
# The statements run once per attempt are long (the finish's is 3 kB of SQL): PostgreSQL
# spent more time parsing and planning them than running them (0.49 ms against 0.14 ms
# for the finish, 0.25 against 0.07 for the claim). `prepared` turns such a statement into
# an EXECUTE of a statement that each connection prepares once (its PREPARE goes in the
# same round trip the first time), so parameters are still bound on the client and
# statements still go several to a round trip. A prepared statement lives as long as its
# connection: a connection pooler in front of PostgreSQL must keep sessions (PgBouncer's
# session mode).

_PREPARED_PREFIX = "EXECUTE tc_"
TUPLES_OK = ExecStatus.TUPLES_OK
_prepared_shapes: dict[str, str] = {}  # name -> its PREPARE statement
_executes: dict[tuple[str, tuple[type, ...]], str] = {}  # (SQL, Python types) -> EXECUTE
# The names each connection has prepared; None when unknown after a failed batch.
_prepared_by_connection: weakref.WeakKeyDictionary[Any, set[str] | None] = (
    weakref.WeakKeyDictionary()
)


def prepared(query: str, params: list[Any]) -> Statement:
    """The statement as an EXECUTE of a prepared statement on PostgreSQL (unchanged on
    SQLite), named after its SQL and its parameters' types, so that each shape is prepared
    once per connection."""
    if connection.vendor != "postgresql":
        return (query, params)
    # Keyed by the parameters' Python types, which decide their SQL types: cheaper than
    # working out the SQL types on every call.
    key = (query, tuple(map(type, params)))
    execute = _executes.get(key)
    if execute is None:
        types = tuple(_parameter_type(param) for param in params)
        parts = query.split("%s")
        numbered = "".join(f"{part}${index}" for index, part in enumerate(parts[:-1], 1))
        digest = hashlib.blake2b(f"{types}{query}".encode(), digest_size=8).hexdigest()
        _prepared_shapes[f"tc_{digest}"] = (
            f"PREPARE tc_{digest} ({', '.join(types)}) AS {numbered}{parts[-1]}"
        )
        arguments = f"({placeholders(list(params))})" if params else ""
        execute = _executes[key] = f"{_PREPARED_PREFIX}{digest}{arguments}"
    return (execute, params)


def _parameter_type(value: Any) -> str:
    if value is None:
        return "unknown"  # the type its place in the statement gives it
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "timestamptz"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytea"
    if isinstance(value, Jsonb):
        return "jsonb"
    raise TypeError(f"no prepared-statement type for {type(value).__name__}")


def _prepared_on_this_connection() -> set[str]:
    done = _prepared_by_connection.get(connection.connection)
    if done is None:
        done = _prepared_by_connection[connection.connection] = set()
    return done


def _to_prepare(statements: list[Statement]) -> dict[str, str]:
    """The PREPARE statements that the EXECUTEs among `statements` need on this connection
    (after a DEALLOCATE ALL when what it holds is not known)."""
    needed: dict[str, str] = {}
    if connection.connection in _prepared_by_connection and (
        _prepared_by_connection[connection.connection] is None
    ):
        needed["*"] = "DEALLOCATE ALL"
    done = _prepared_on_this_connection()
    for query, _ in statements:
        if query.startswith(_PREPARED_PREFIX):
            name = "tc_" + query[len(_PREPARED_PREFIX) :].split("(", 1)[0]
            if name not in done:
                needed[name] = _prepared_shapes[name]
    return needed


def literal(value: str) -> str:
    """One of the code's own constants (a status, an operation, a node type: capital
    letters and underscores, never input) written into the SQL text.

    The statements run once per attempt bind only what changes between calls: each bound
    value is converted and quoted by the client on every call, and binding the constants
    too was a twelfth of a worker's time in a wide fan-out."""
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"not a constant of the code: {value!r}")
    return f"'{value}'"


_CONSTANT = re.compile(r"[A-Z][A-Z_]*")
# A subtask still at work in its task; an attempt still at work (its end may be recorded).
_ACTIVE = ", ".join(literal(status) for status in ACTIVE_SUBTASK_STATUSES)
_AT_WORK = f"{literal(SubtaskStatus.RUNNING)}, {literal(SubtaskStatus.CANCELING)}"


def placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def json_value(value: Any) -> Any:
    """A JSON column read by plain SQL: text on SQLite (and for Django's psycopg loaders)."""
    return json.loads(value) if isinstance(value, str) else value


def db_time(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def json_param(value: Any) -> Any:
    """A value for a JSON column written by plain SQL."""
    return connection.ops.adapt_json_value(value, None)


# --- Tasks ---------------------------------------------------------------------------------------


def lock_task_statement(task_id: int) -> Statement:
    """Lock the task row, reading only what deriving its status needs: status, operation.

    The engine locks a task to end an attempt, and every finish of a wide fan-out locks
    the same row, so the lock writes nothing: on PostgreSQL, SELECT ... FOR UPDATE.
    Stamping updated_at here (the live pages' change cursor, which is indexed) made every
    finish a new version of the task row with a new entry in each of its indexes; the
    finishes of one task then walked all the earlier versions to find the row (554 heap
    blocks per finish at 1,000 subtasks, against 7). The pages see a running task's
    progress without the stamp (selectors.running_progress, the detail page's digest); a
    change of the task's own columns stamps it (progress.set_task). SQLite has no row
    locks: a no-op UPDATE takes its database write lock at once, as the lock must.
    """
    if connection.vendor == "postgresql":
        return prepared(
            f"SELECT status, operation FROM {TASKS} WHERE id = %s FOR UPDATE", [task_id]
        )
    return (
        f"UPDATE {TASKS} SET status = status WHERE id = %s RETURNING status, operation",
        [task_id],
    )


def any_active_subtask(task_id: int) -> Statement:
    """A statement whose one row says that some subtask of the task is still at work."""
    return prepared(
        f"SELECT 1 FROM {SUBTASKS} WHERE task_id = %s AND status IN ({_ACTIVE}) LIMIT 1",
        [task_id],
    )


def task_mark_prohibits_rollback(task_id: int) -> Statement:
    return (
        f"UPDATE {TASKS} SET prohibit_rollback = %s, updated_at = %s WHERE id = %s",
        [True, db_time(timezone.now()), task_id],
    )


def task_set_first_executor(task_id: int, executor: str) -> Statement:
    return (
        f"UPDATE {TASKS} SET executor = %s, updated_at = %s WHERE id = %s AND executor = ''",
        [executor, db_time(timezone.now()), task_id],
    )


# --- Attempts ------------------------------------------------------------------------------------


_CLAIM_RETURNS = (
    "task_id, name, node_type, operation, action, rollback_action, run_time, timeout,"
    " prohibit_rollback"
)


def _claim_parts(executor: str) -> tuple[str, list[Any]]:
    """The SET list of a claim and its parameters.

    The attempt does not start before it became READY: the time is read here, before the
    statement runs, and a sibling claim may take a subtask that another worker's finish
    made READY in between (its ready_at is that finish's time, so its start stays after
    its upstreams' ends)."""
    now = db_time(timezone.now())
    claim = (
        f"SET status = {literal(SubtaskStatus.RUNNING)}, executor = %s,"
        " start_time = CASE WHEN ready_at > %s THEN ready_at ELSE %s END,"
        " finish_time = NULL, heartbeat_at = %s"
    )
    return claim, [executor, now, now, now]


def _task_columns_of_claim() -> str:
    """SQLite: the task's columns a claim returns, each read by a subquery (its RETURNING
    cannot name a joined table)."""
    task_column = f"(SELECT {{}} FROM {TASKS} WHERE {TASKS}.id = {SUBTASKS}.task_id)"
    return ", ".join(
        task_column.format(column) for column in ("parameters", "executor", "prohibit_rollback")
    )


def claim_statement(subtask_id: int, attempt: int, executor: str) -> Statement:
    """READY -> RUNNING for exactly this attempt, returning what running it needs (with the
    task's parameters, executor and prohibit_rollback).

    PostgreSQL joins the task row once; SQLite, whose RETURNING cannot name a joined
    table, reads each of the task's columns with a subquery."""
    claim, params = _claim_parts(executor)
    params += [subtask_id, attempt]
    if connection.vendor == "postgresql":
        return prepared(
            f"UPDATE {SUBTASKS} AS s {claim} FROM {TASKS} AS t WHERE s.id = %s"
            f" AND s.attempt = %s AND s.status = {literal(SubtaskStatus.READY)}"
            " AND t.id = s.task_id RETURNING "
            + ", ".join(f"s.{column}" for column in _CLAIM_RETURNS.split(", "))
            + ", t.parameters, t.executor, t.prohibit_rollback",
            params,
        )
    return (
        f"UPDATE {SUBTASKS} {claim}"
        f" WHERE id = %s AND attempt = %s AND status = {literal(SubtaskStatus.READY)}"
        f" RETURNING {_CLAIM_RETURNS}, {_task_columns_of_claim()}",
        params,
    )


# READY subtasks of the same task and node type as the one whose id is bound twice; the
# task and node type are read first (scalar subqueries), so that the rows are looked up in
# the (task, status) index whatever the planner thinks of a join.
_SIBLINGS = (
    f"task_id = (SELECT task_id FROM {SUBTASKS} WHERE id = %s)"
    f" AND status = {literal(SubtaskStatus.READY)}"
    f" AND node_type = (SELECT node_type FROM {SUBTASKS} WHERE id = %s)"
)


def claim_sibling_statement(subtask_id: int, executor: str) -> Statement:
    """READY -> RUNNING for one READY subtask of the same task and node type as
    `subtask_id` (its siblings in a fan-out): the (id, attempt) claimed, then what
    claim_statement returns; no row when there is none.

    Same task and node type means same queue, whatever the routes (they match on the node
    type and the task's cluster). On PostgreSQL the row is picked from an index that
    holds it by status, skipping rows that another claim has locked, so that workers
    draining one fan-out do not queue behind each other.

    The pick is the compare-and-set: FOR UPDATE re-reads the newest version of the row
    it locks and keeps it only if it is still READY, and the lock holds it so until this
    transaction ends. The update then finds the row by its primary key alone: it used to
    join the pick and test the status again, and with statistics that saw few READY
    subtasks (a history of finished tasks) the planner answered that test by reading
    every READY subtask and its task row, then kept the picked one: 500 task rows a claim
    on average in a fan-out of 1,000, the fan-out's claims growing with its width."""
    claim, params = _claim_parts(executor)
    ready = literal(SubtaskStatus.READY)
    if connection.vendor == "postgresql":  # the WITH part comes first
        return prepared(
            f"WITH pick AS (SELECT id FROM {SUBTASKS} WHERE {_SIBLINGS}"
            " LIMIT 1 FOR UPDATE SKIP LOCKED)"
            f" UPDATE {SUBTASKS} AS s {claim} FROM {TASKS} AS t"
            " WHERE s.id = (SELECT id FROM pick) AND t.id = s.task_id RETURNING"
            " s.id, s.attempt, "
            + ", ".join(f"s.{column}" for column in _CLAIM_RETURNS.split(", "))
            + ", t.parameters, t.executor, t.prohibit_rollback",
            [subtask_id, subtask_id, *params],
        )
    return (
        f"UPDATE {SUBTASKS} {claim} WHERE id = (SELECT id FROM {SUBTASKS} WHERE {_SIBLINGS}"
        f" ORDER BY id LIMIT 1) AND status = {ready}"
        f" RETURNING id, attempt, {_CLAIM_RETURNS}, {_task_columns_of_claim()}",
        [*params, subtask_id, subtask_id],
    )


def ready_sibling_statement(subtask_id: int) -> Statement:
    """Whether a subtask of the same task and node type as `subtask_id` is READY."""
    return prepared(
        f"SELECT EXISTS (SELECT 1 FROM {SUBTASKS} WHERE {_SIBLINGS})", [subtask_id, subtask_id]
    )


# The subtask columns that ending an attempt reads (attempt_read_statement).
ATTEMPT_COLUMNS = (
    "name, status, operation, run_time, retry_count, downstream_ids, log_size, log_truncated"
)


def attempt_read_statement(task_id: int, subtask_id: int, attempt: int) -> Statement:
    """The subtask's ATTEMPT_COLUMNS if `attempt` is its current one and still at work."""
    return prepared(
        f"SELECT {ATTEMPT_COLUMNS} FROM {SUBTASKS}"
        f" WHERE id = %s AND task_id = %s AND attempt = %s AND status IN ({_AT_WORK})",
        [subtask_id, task_id, attempt],
    )


def attempt_end_statement(subtask_id: int, attempt: int, fields: dict[str, Any]) -> Statement:
    """Compare-and-set the end of a running attempt: one row back when it was ended."""
    return (
        f"UPDATE {SUBTASKS} SET {', '.join(f'{name} = %s' for name in fields)}"
        f" WHERE id = %s AND attempt = %s AND status IN ({_AT_WORK}) RETURNING id",
        [*fields.values(), subtask_id, attempt],
    )


def forward_end_in_one_statement(
    task_id: int, subtask_id: int, attempt: int, fields: dict[str, Any], log: bytes
) -> Statement:
    """PostgreSQL: end a forward attempt, store its last log (one chunk, at the log's
    current end) and count it off its downstreams, in one statement of data-modifying WITH
    parts. Returns (0, NULL..., whether another subtask of the task is at work) when it
    ended the attempt, then (1, COUNTED_COLUMNS, NULL) per downstream. Nothing changes for
    a rollback, or a log that is truncated or would reach the cap: those take the general
    path.

    "Another subtask at work" is read in the statement's snapshot, which the statement's
    own changes are not part of: this subtask is left out by its id, and a downstream it
    makes READY does not need counting (a finish that releases one does not settle).
    The caller has locked the task in an earlier statement, so the snapshot holds every
    change of the finishes before it.

    The downstreams are matched as `id = ANY (ARRAY (...))`, an array computed first and
    looked up in the primary key. As `id IN (SELECT ...)` the planner guessed 100 ids and,
    on a table of a few thousand rows, hash-joined them against a scan of the whole table:
    519 of a finish's 537 buffers in a 1,000-wide fan-out."""
    chunk = ""
    chunk_params: list[Any] = []
    if log:
        chunk = (
            f", chunk AS (INSERT INTO {LOG_CHUNKS} ({log_chunk_columns()})"
            " SELECT id, attempt, log_size - %s, %s, %s, %s FROM ended)"
        )
        chunk_params = [len(log), len(log), log, fields["finish_time"]]
    count_sets, count_params = count_off_assignments()
    return prepared(
        f"WITH ended AS (UPDATE {SUBTASKS} SET"
        f" {''.join(f'{name} = %s, ' for name in fields)}log_size = log_size + %s"
        f" WHERE id = %s AND task_id = %s AND attempt = %s AND status IN ({_AT_WORK})"
        f" AND operation <> {literal(SubtaskRunMode.ROLLBACK)} AND NOT log_truncated"
        " AND log_size + %s <= %s"
        f" RETURNING id, attempt, log_size, downstream_ids){chunk},"
        f" counted AS (UPDATE {SUBTASKS} SET {count_sets} WHERE id = ANY (ARRAY"
        " (SELECT jsonb_array_elements_text(downstream_ids)::bigint FROM ended))"
        f" RETURNING {COUNTED_COLUMNS})"
        " SELECT 0, NULL, NULL, NULL, NULL, EXISTS (SELECT 1 FROM"
        f" {SUBTASKS} WHERE task_id = %s AND status IN ({_ACTIVE}) AND id <> %s) FROM ended"
        f" UNION ALL SELECT 1, {COUNTED_COLUMNS}, NULL FROM counted",
        [
            *fields.values(),
            len(log),
            subtask_id,
            task_id,
            attempt,
            len(log),
            settings.TASKCENTER_LOG_CAP_BYTES,
            *chunk_params,
            *count_params,
            task_id,
            subtask_id,
        ],
    )


# --- Making subtasks READY and counting them off ---------------------------------------------------


def ready_assignments(operation: str, count_run: bool) -> list[tuple[str, str, list[Any]]]:
    """What making a subtask READY sets, as (column, SQL value, its parameters).

    An approval gate (NodeType.APPROVAL_TASK) run forward is not sent to a worker: the
    same statement opens it, RUNNING at once with no executor and no heartbeat, waiting
    for a person's decision (verbs.approval) or its timeout (services.approvals). Callers
    send only the rows that came back READY. A gate's rollback has nothing to undo and
    goes to a worker like any other, which ends it at once.
    """
    now = db_time(timezone.now())
    if operation == SubtaskRunMode.ROLLBACK:
        status: tuple[str, str, list[Any]] = ("status", literal(SubtaskStatus.READY), [])
        gate: list[tuple[str, str, list[Any]]] = []
    else:
        running, ready = literal(SubtaskStatus.RUNNING), literal(SubtaskStatus.READY)
        status = ("status", _GATE_CASE.format(running, ready), [])
        gate = [
            ("start_time", _GATE_CASE.format("%s", "start_time"), [now]),
            ("executor", _GATE_CASE.format("''", "executor"), []),
            ("heartbeat_at", _GATE_CASE.format("NULL", "heartbeat_at"), []),
            ("result", _GATE_CASE.format("NULL", "result"), []),
        ]
    assignments: list[tuple[str, str, list[Any]]] = [
        status,
        ("operation", literal(operation), []),
        ("attempt", "attempt + 1", []),
        ("ready_at", "%s", [now]),
        ("finish_time", "NULL", []),
        *gate,
    ]
    if count_run:
        assignments.append(("run_time", "run_time + 1", []))
    if operation == SubtaskRunMode.ROLLBACK:
        assignments.append(("rollback_pending", "%s", [False]))
    return assignments


# The attempt history (SubtaskAttempt): a database trigger (migration 0013) copies the
# attempt that making a subtask READY replaces, whatever statement does it. Two changes
# keep the attempt number and are copied by their verbs: a skip, and a rollback's marking
# (it sets every subtask's operation to ROLLBACK long before each one is made READY; the
# trigger leaves a marked subtask alone).


def archive_attempts_statement(ids: list[int], from_statuses: list[str]) -> Statement:
    """Copy the current attempt of these subtasks, if in `from_statuses`, to the history."""
    where = f"id IN ({placeholders(ids)}) AND status IN ({placeholders(from_statuses)})"
    return _archive(where, [*ids, *from_statuses])


def archive_before_rollback_statement(task_id: int) -> Statement:
    """Copy the current attempt of every subtask a rollback is about to mark for undoing."""
    return _archive("task_id = %s AND status <> %s", [task_id, SubtaskStatus.PENDING])


def _archive(where: str, params: list[Any]) -> Statement:
    """INSERT the attempts of the subtasks matching `where` (one already copied stays as
    it was). A start time older than the attempt's READY time belongs to an earlier
    attempt: this one never started."""
    return (
        f"INSERT INTO {ATTEMPTS} ({ATTEMPT_HISTORY_COLUMNS})"
        f" SELECT {ATTEMPT_HISTORY_VALUES.format(row=SUBTASKS)} FROM {SUBTASKS}"
        f" WHERE {where} AND attempt > 0 AND NOT rollback_pending ON CONFLICT DO NOTHING",
        params,
    )


ATTEMPT_HISTORY_COLUMNS = (
    "task_id, subtask_id, attempt, operation, status, executor, ready_at, start_time, finish_time"
)
# The values of a subtask row `row` (a table name, or OLD in a trigger).
ATTEMPT_HISTORY_VALUES = (
    "{row}.task_id, {row}.id, {row}.attempt, {row}.operation, {row}.status, {row}.executor,"
    " {row}.ready_at, CASE WHEN {row}.ready_at IS NULL OR {row}.start_time >= {row}.ready_at"
    " THEN {row}.start_time END, {row}.finish_time"
)


# An approval gate's value, else another: for a subtask a worker runs, a status of its
# own or the column as it is.
_GATE_CASE = f"CASE WHEN node_type = {literal(NodeType.APPROVAL_TASK)} THEN {{}} ELSE {{}} END"


def make_ready_statement(
    ids: list[int], from_statuses: list[str], operation: str, count_run: bool, unblocked_only: bool
) -> Statement:
    """Compare-and-set these subtasks to READY with a new attempt, returning (id, attempt,
    status) of those still in one of `from_statuses` (status: READY, or RUNNING for an
    approval gate opened at once) (and, with `unblocked_only`, with no upstream
    left to wait for)."""
    assignments = ready_assignments(operation, count_run)
    sets = [f"{column} = {value}" for column, value, _ in assignments]
    params = [param for _, _, values in assignments for param in values]
    where = f"id IN ({placeholders(ids)}) AND status IN ({placeholders(from_statuses)})"
    if unblocked_only:
        where += " AND upstreams_left <= 0"
    return (
        f"UPDATE {SUBTASKS} SET {', '.join(sets)} WHERE {where} RETURNING id, attempt, status",
        [*params, *ids, *from_statuses],
    )


def count_off_assignments() -> tuple[str, list[Any]]:
    """The SET list that counts a succeeded subtask off a downstream, and makes READY in
    the same statement one that waited for it alone (SET expressions all see the row as
    it was)."""
    last_one = f"upstreams_left <= 1 AND status = {literal(SubtaskStatus.PENDING)}"
    sets = ["upstreams_left = upstreams_left - 1"]
    params: list[Any] = []
    for column, value, values in ready_assignments(SubtaskRunMode.EXECUTE, count_run=True):
        sets.append(f"{column} = CASE WHEN {last_one} THEN {value} ELSE {column} END")
        params += values
    return ", ".join(sets), params


# What a count-off returns for each downstream; `released` reads it.
COUNTED_COLUMNS = "id, attempt, status, upstreams_left"


def count_off_statement(downstream_ids: list[int]) -> Statement:
    sets, params = count_off_assignments()
    return (
        f"UPDATE {SUBTASKS} SET {sets} WHERE id IN ({placeholders(downstream_ids)})"
        f" RETURNING {COUNTED_COLUMNS}",
        [*params, *downstream_ids],
    )


def released(counted: list[tuple]) -> list[tuple[int, int]]:
    """The (subtask id, attempt) that a count-off made READY, from its COUNTED_COLUMNS rows."""
    return sorted(
        (pk, attempt)
        for pk, attempt, status, left in counted
        if status == SubtaskStatus.READY and left <= 0
    )


def opened_gates(counted: list[tuple]) -> list[int]:
    """The approval gates a count-off opened (RUNNING at once, waiting for a person)."""
    return sorted(
        pk
        for pk, _attempt, status, left in counted
        if status == SubtaskStatus.RUNNING and left <= 0
    )


# --- Reading a task's subtasks --------------------------------------------------------------------


def _micros(column: str) -> str:
    """A timestamp column as integer microseconds since the epoch (PostgreSQL)."""
    return f"(extract(epoch from {column}) * 1000000)::bigint"


class EpochMicros(models.Func):
    """_micros as an ORM expression (PostgreSQL): a list page's times read as integers, not
    parsed from text by Django's loader (6,000 of them on a page of 2,000 tasks)."""

    template = _micros("%(expressions)s")
    output_field = models.BigIntegerField()


def subtask_rows_statement(task_id: int) -> Statement:
    """PostgreSQL: every subtask of a task in series order, with the columns of
    selectors.SubtaskRow, shaped so that reading them costs Python little: the DAG's edges
    as integer arrays, the times as integer microseconds (Django's psycopg loader parsed
    each timestamp's text with a regular expression: three per subtask were a third of a
    1,000-subtask detail), and the action only for approval gates, the one kind whose
    answer shows it."""
    return (
        "SELECT id, name, series_id, description, timeout, status, operation, executor,"
        " run_time, retry_count, node_type, parallel_idx,"
        " ARRAY(SELECT jsonb_array_elements_text(upstream_ids)::bigint),"
        " ARRAY(SELECT jsonb_array_elements_text(downstream_ids)::bigint), prohibit_rollback,"
        f" {_micros('create_time')}, {_micros('start_time')}, {_micros('finish_time')},"
        " result, CASE WHEN node_type = %s THEN action END"
        f" FROM {SUBTASKS} WHERE task_id = %s ORDER BY series_id, id",
        [NodeType.APPROVAL_TASK, task_id],
    )


# --- Starting a task ------------------------------------------------------------------------------


Edges = Callable[[list[int]], list[tuple[list[int], list[int]]]]


def insert_subtasks(rows: list[dict[str, Any]], edges: Edges) -> list[int]:
    """Insert new subtasks (each a dict of model attribute -> value) with their DAG edges,
    and return their ids in the order of `rows`. An edge names ids, which the insert
    makes: `edges(ids)` gives each row's (upstream ids, downstream ids).

    On PostgreSQL the ids are taken from the table's sequence first, so that the rows go
    in with their edges in one INSERT that reads each column as one array (unnest): the
    model instances, per-value preparation and per-row parameters of bulk_create, and
    the UPDATE that wrote the edges afterwards, took most of the start of a wide task
    (0.63 s for 1,002 subtasks). SQLite, in-process, inserts the rows and then writes
    the edges (write_edges).
    """
    if connection.vendor == "postgresql":
        ids = _reserve_ids(SUBTASKS, len(rows))
        for row, (ups, downs) in zip(rows, edges(ids), strict=True):
            row["upstream_ids"], row["downstream_ids"] = ups, downs
        _insert_columns(SubtaskInstance, ids, rows)
        return ids
    created = SubtaskInstance.objects.bulk_create(SubtaskInstance(**row) for row in rows)
    ids = [row.pk for row in created]
    write_edges(
        [
            (json.dumps(ups), json.dumps(downs), pk)
            for (ups, downs), pk in zip(edges(ids), ids, strict=True)
            if ups or downs
        ]
    )
    return ids


def _reserve_ids(table: str, count: int) -> list[int]:
    """PostgreSQL: `count` new ids from the table's own sequence, as an insert would take."""
    rows = run(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [table, count],
    )
    return [pk for (pk,) in rows]


def _insert_columns(model: type[models.Model], ids: list[int], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: INSERT rows with these ids, one array parameter per column the rows
    give and one value for each other column (its default, or what Django would set on
    insert, such as auto_now_add), prepared by the model's own fields."""
    template = model()
    given = rows[0].keys()
    columns, values, params = ["id"], ["v.c0"], []
    arrays: list[Any] = [_array_literal(ids)]
    casts = [f"%s::{model._meta.pk.db_type(connection)}[]"]
    for field in model._meta.concrete_fields:
        if field.primary_key or (
            field.attname not in given and field.db_default is not models.NOT_PROVIDED
        ):
            continue  # the id is given; a database default is the database's to fill in
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in given:
            column = [row[field.attname] for row in rows]
            kind = field.get_internal_type()
            if kind in _NUMBERS_AND_TRUTHS:
                arrays.append(_array_literal(column))
            elif kind in _TEXTS:
                arrays.append(text_array(column))
            elif isinstance(field, models.JSONField):
                arrays.append(text_array(_json_texts(field, column)))
            else:
                arrays.append([field.get_db_prep_save(value, connection) for value in column])
            casts.append(f"%s::{field.db_type(connection)}[]")
            values.append(f"v.c{len(arrays) - 1}")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(template, True), connection))
    names = ", ".join(f"c{index}" for index in range(len(arrays)))
    run(
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)})"
        f" SELECT {', '.join(values)} FROM unnest({', '.join(casts)}) AS v({names})",
        [*params, *arrays],
    )


# Columns whose values go in as an array literal ({1,2,NULL}, {t,f}): psycopg would look
# at every element of a list to choose its integer type, Django would prepare each value.
_NUMBERS_AND_TRUTHS = {
    "BigIntegerField",
    "BooleanField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
}


# Columns whose values go in as a text array literal ({"a","b\\"c",NULL}), JSON ones
# encoded first: psycopg quoted every element of a list in Python, which was most of
# the start of a wide task after the insert itself.
_TEXTS = {"CharField", "TextField"}


def _json_texts(field: models.JSONField, values: list[Any]) -> list[str | None]:
    """Each value as the field would store it (its own encoder); None: SQL NULL."""
    return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]


def text_array(values: Sequence[str | None]) -> str:
    """PostgreSQL's text form of an array of texts: each element quoted, its quotes and
    backslashes escaped (commas, braces, blanks and the word NULL are then plain text);
    None is SQL's NULL."""

    def element(value: str | None) -> str:
        if value is None:
            return "NULL"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(map(element, values)) + "}"


def _array_literal(values: Sequence[int | bool | None]) -> str:
    """PostgreSQL's text form of an array of integers or booleans."""

    def element(value: int | bool | None) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "t" if value else "f"
        return str(int(value))

    return "{" + ",".join(map(element, values)) + "}"


def write_edges(rows: list[tuple[str, str, int]]) -> None:
    """Write (upstream ids JSON, downstream ids JSON, id) onto new subtasks.

    bulk_update's CASE expression per row took most of the start of a 1,000-subtask task
    in Python. On PostgreSQL one UPDATE joins a VALUES list (a statement per row was a
    round trip per row); SQLite, in-process, runs one prepared UPDATE per row.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {SUBTASKS} AS s SET upstream_ids = v.ups::jsonb,"
                " downstream_ids = v.downs::jsonb"
                f" FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(rows))}) AS v(ups, downs, id)"
                " WHERE s.id = v.id",
                [value for row in rows for value in row],
            )
        else:
            cursor.executemany(
                f"UPDATE {SUBTASKS} SET upstream_ids = %s, downstream_ids = %s WHERE id = %s",
                rows,
            )


# --- Logs ----------------------------------------------------------------------------------------


def log_chunk_columns() -> str:
    return f"subtask_id, attempt, {connection.ops.quote_name('offset')}, length, data, created_at"


def log_read_statement(subtask_id: int, start: int, end: int, attempt: int | None) -> Statement:
    """(offset, data) of the subtask's chunks that hold bytes [start, end) (of one attempt
    when given), in order, through the (subtask, offset) index: chunks are contiguous and
    at most LOG_CHUNK_MAX bytes, so the first one needed starts after start - LOG_CHUNK_MAX.

    Hand-built and prepared: every open log panel reads through it every second
    (taskcenter.dashboard.log_poll), and building it through the ORM cost more CPU than
    the rest of the poll's answer."""
    offset = connection.ops.quote_name("offset")
    query = (
        f"SELECT {offset}, data FROM {LOG_CHUNKS} WHERE subtask_id = %s"
        f" AND {offset} > %s AND {offset} < %s"
    )
    params: list[Any] = [subtask_id, start - LOG_CHUNK_MAX, end]
    if attempt is not None:
        query += " AND attempt = %s"
        params.append(attempt)
    return prepared(f"{query} ORDER BY {offset}", params)


def log_chunks_insert(rows: list[tuple[int, int, int, int, bytes, Any]]) -> Statement:
    """Insert log chunks given as (subtask id, attempt, offset, length, data, created at)."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    return (
        f"INSERT INTO {LOG_CHUNKS} ({log_chunk_columns()}) VALUES {values}",
        [value for row in rows for value in row],
    )


# TaskCount's signed changes added up into one row per key, in one statement: rows a
# writer inserts meanwhile are not in this statement's snapshot, so they are neither
# deleted nor added here, and a reader sees the rows before or after, never half.
FOLD_TASK_COUNTS = """
    WITH folded AS (
        DELETE FROM tasks_taskcount RETURNING cluster_id, status, type, n
    )
    INSERT INTO tasks_taskcount (cluster_id, status, type, n)
    SELECT cluster_id, status, type, sum(n) FROM folded
    GROUP BY cluster_id, status, type
    HAVING sum(n) <> 0
"""

# TaskNameCount's signed changes added up per key, for the keys that have rows written
# since the last fold (folded is false on those) and those alone: a task given a name of
# its own has a key of its own, and a million of them need not be rewritten every time. A
# row written meanwhile is not in this statement's snapshot: neither deleted nor added
# here, it stays unfolded for the next fold.
FOLD_TASK_NAME_COUNTS = """
    WITH changed AS (
        SELECT DISTINCT name, cluster_id, status, type
        FROM tasks_tasknamecount WHERE NOT folded
    ), gone AS (
        DELETE FROM tasks_tasknamecount AS kept USING changed
        WHERE kept.name = changed.name
          AND kept.cluster_id IS NOT DISTINCT FROM changed.cluster_id
          AND kept.status = changed.status
          AND kept.type = changed.type
        RETURNING kept.name, kept.cluster_id, kept.status, kept.type, kept.n
    )
    INSERT INTO tasks_tasknamecount (name, cluster_id, status, type, n, folded)
    SELECT name, cluster_id, status, type, sum(n), true FROM gone
    GROUP BY name, cluster_id, status, type
    HAVING sum(n) <> 0
"""
