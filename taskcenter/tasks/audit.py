"""The one writer of audit rows, for task changes and account changes alike.

Every operation calls it inside the transaction of its change, so the row exists exactly
when the change does. A row says who did what to which object, the status it moved from
and to, the reason given, the trace id of the request or job that did it (and the caller's own, when it sent one),
and the access key a signed API call was made with (its owner is the actor).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, Protocol

from taskcenter.core.trace import (
    current_access_key_id,
    current_caller_trace_id,
    current_trace_id,
)
from taskcenter.tasks.models import AuditEntry


class Action(StrEnum):
    """The audit actions of task changes (account changes: accounts.selectors.ACCOUNT_ACTIONS).
    The verbs name theirs in taskcenter.tasks.verbs."""

    START = "START"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"
    SUBTASK_RETRY = "SUBTASK_RETRY"
    SKIP = "SKIP"
    CANCEL = "CANCEL"
    FINISH = "FINISH"
    AUTO_RETRY = "AUTO_RETRY"
    WORKER_LOST = "WORKER_LOST"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    APPROVAL_TIMEOUT = "APPROVAL_TIMEOUT"
    # A bulk operation's own entries (its tasks' entries carry the verb's action).
    BULK_RETRY = "BULK_RETRY"
    BULK_ROLLBACK = "BULK_ROLLBACK"
    BULK_CANCEL = "BULK_CANCEL"
    BULK_STOP = "BULK_STOP"


# The bulk operation whose tasks are being changed in this context: every entry written
# meanwhile carries its id (taskcenter.tasks.verbs.bulk sets it around each single verb).
_current_bulk: ContextVar[uuid.UUID | None] = ContextVar("taskcenter_bulk", default=None)


@contextmanager
def in_bulk(bulk_id: uuid.UUID) -> Iterator[None]:
    """Within the block, every audit entry written carries `bulk_id`."""
    token = _current_bulk.set(bulk_id)
    try:
        yield
    finally:
        _current_bulk.reset(token)


# The end of a rollback that completed, as its FINISH row words it: the task row stays
# SUCCESSFUL with operation ROLLBACK, which every page shows as "Rolled back".
ROLLED_BACK = "ROLLED_BACK"

TARGET_MAX = AuditEntry._meta.get_field("target").max_length or 255


class _Row(Protocol):
    pk: int


class _NamedRow(Protocol):
    pk: int
    name: str


def actor_name(actor) -> str:
    """How an actor is named in audit rows and log lines; None is the system itself."""
    return actor.get_username() if actor is not None else "system"


def audit_entry(
    *,
    actor,
    action: str,
    task: _Row | None = None,
    subtask: _NamedRow | None = None,
    target: str = "",
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    cluster_id: int | None = None,
    bulk_id: uuid.UUID | None = None,
) -> AuditEntry:
    """One audit row, not yet written: `audit_record` writes one, `audit_record_many` a
    batch of them in one statement.

    A task change names its `task` (and `subtask`), which also make the target text; an
    account change gives the `target` text itself (cut to the column's length), and a plan
    change its target text and the plan's `cluster_id` (who may see the row).
    """
    if task is not None:
        target = f"task {task.pk}" + (f" / subtask {subtask.pk} {subtask.name}" if subtask else "")
    return AuditEntry(
        actor=actor,
        actor_name=actor_name(actor),
        action=action,
        task_id=task.pk if task is not None else None,
        subtask_id=subtask.pk if subtask is not None else None,
        target=target[:TARGET_MAX],
        cluster_id=cluster_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        trace_id=current_trace_id(),
        bulk_id=bulk_id or _current_bulk.get(),
        caller_trace_id=current_caller_trace_id(),
        access_key_id=current_access_key_id(),
    )


def audit_record(**fields: Any) -> AuditEntry:
    """Write one audit row (the fields of `audit_entry`)."""
    entry = audit_entry(**fields)
    entry.save(force_insert=True)
    return entry


def audit_record_many(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Write the rows of `audit_entry` for a batch of changes (many tasks started at once)."""
    return AuditEntry.objects.bulk_create(entries)
