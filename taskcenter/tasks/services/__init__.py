"""The engine's side of task changes, and the machinery the verbs share.

What operators, clients and the scheduler ask of tasks (start, retry, rollback, skip,
cancel) are the verbs (taskcenter.tasks.verbs). What is here is what the engine does as
attempts run (claim, heartbeat, finish, the reaper's verdicts) and the steps both build
on. Every change runs in one transaction that locks the task row and changes rows with
compare-and-set updates whose row count says whether the transition was allowed; work
is sent to the workers only on commit (taskcenter.tasks.enqueue), and each change writes
its audit entry in the same transaction (taskcenter.tasks.audit).

The modules, by job:
    definitions   stored task definitions: mirror, add from data
    attempts      the engine's protocol: claim, heartbeat, finish, and the reaper's verdicts
    finish        how an attempt ends: one plan, the general path and PostgreSQL's one trip
    progress      how work moves on: READY subtasks, counters, rollback walk, task status
    approvals     approval gates: how one ends, and the reaper's timeout
    logs          subtask log storage

Callers use this package (`services.attempt_claim(...)`), never its modules.
"""

from taskcenter.tasks.services.approvals import gate_end, gate_time_out, gates_due
from taskcenter.tasks.services.attempts import (
    ClaimedAttempt,
    FinishedAttempt,
    attempt_claim,
    attempt_claim_sibling,
    attempt_claim_turn,
    attempt_downstreams_resend,
    attempt_fail_lost,
    attempt_finish,
    attempt_hand_on_turn,
    attempt_heartbeat,
    attempt_redispatch,
    task_settle,
)
from taskcenter.tasks.services.definitions import (
    definition_create_from_data,
    definition_sync,
)
from taskcenter.tasks.services.logs import format_log_line, log_append
from taskcenter.tasks.sql import LOG_CHUNK_MAX

__all__ = [
    "LOG_CHUNK_MAX",
    "ClaimedAttempt",
    "FinishedAttempt",
    "attempt_claim",
    "attempt_claim_sibling",
    "attempt_claim_turn",
    "attempt_downstreams_resend",
    "attempt_fail_lost",
    "attempt_finish",
    "attempt_hand_on_turn",
    "attempt_heartbeat",
    "attempt_redispatch",
    "definition_create_from_data",
    "definition_sync",
    "format_log_line",
    "gate_end",
    "gate_time_out",
    "gates_due",
    "log_append",
    "task_settle",
]
