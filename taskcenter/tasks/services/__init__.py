"""Every change of a task or subtask status happens here, one function per operation.

Rules: each operation runs in one transaction that first locks the task
row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction is IMMEDIATE, which
serialises writers), then changes rows with compare-and-set updates whose row count says
whether the transition was allowed. Celery work is enqueued only on commit
(taskcenter.tasks.dispatch), and every operation writes its audit row in the same
transaction (taskcenter.tasks.audit).

The modules, by job:
    definitions   stored task definitions: mirror, add from data
    start         task_start, and task_start_many for a batch (a scheduler's tick)
    operations    the operator's operations (retry, rollback, cancel, subtask retry/skip/cancel)
    attempts      the engine's protocol: claim, heartbeat, finish, and the reaper's verdicts
    finish        how an attempt ends: one plan, the general path and PostgreSQL's one trip
    progress      how work moves on: READY subtasks, counters, rollback walk, task status
    logs          subtask log storage

Callers use this package (`services.task_retry(...)`), never its modules.
"""

from taskcenter.tasks.services.attempts import (
    ClaimedAttempt,
    FinishedAttempt,
    attempt_claim,
    attempt_fail_lost,
    attempt_finish,
    attempt_heartbeat,
    attempt_redispatch,
    task_settle,
)
from taskcenter.tasks.services.definitions import (
    definition_create_from_data,
    definition_sync,
)
from taskcenter.tasks.services.logs import format_log_line, log_append
from taskcenter.tasks.services.operations import (
    Refusal,
    subtask_cancel,
    subtask_cancel_refusal,
    subtask_retry,
    subtask_retry_refusal,
    subtask_skip,
    subtask_skip_refusal,
    task_cancel,
    task_cancel_refusal,
    task_retry,
    task_retry_refusal,
    task_rollback,
    task_rollback_refusal,
)
from taskcenter.tasks.services.start import TaskStart, task_start, task_start_many
from taskcenter.tasks.sql import LOG_CHUNK_MAX

__all__ = [
    "LOG_CHUNK_MAX",
    "ClaimedAttempt",
    "FinishedAttempt",
    "Refusal",
    "TaskStart",
    "attempt_claim",
    "attempt_fail_lost",
    "attempt_finish",
    "attempt_heartbeat",
    "attempt_redispatch",
    "definition_create_from_data",
    "definition_sync",
    "format_log_line",
    "log_append",
    "subtask_cancel",
    "subtask_cancel_refusal",
    "subtask_retry",
    "subtask_retry_refusal",
    "subtask_skip",
    "subtask_skip_refusal",
    "task_cancel",
    "task_cancel_refusal",
    "task_retry",
    "task_retry_refusal",
    "task_rollback",
    "task_rollback_refusal",
    "task_settle",
    "task_start",
    "task_start_many",
]
