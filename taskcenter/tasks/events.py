"""What happened, for whoever listens: the domain's events, recorded with the change.

The verbs, the engine's services and the scheduler call `emit` inside the transaction of
the change, so an event exists exactly when its change does (never from a page, never
twice: each event carries a stable key). What an event becomes (a webhook, a mail, a bell)
is the business of the app that registers the recorder (taskcenter.notifications, from
its `ready`); these packages know only this module, as they know `enqueue` for the
engine. Without a recorder, emitting costs nothing.

An event costs the change one INSERT; the recorder never sends anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Kind:
    """The event kinds: stable names used by rules, the API and the webhook body's type."""

    TASK_FAILED = "task.failed"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_WAITING = "task.waiting"
    SUBTASK_RETRIES_EXHAUSTED = "subtask.retries_exhausted"
    APPROVAL_REQUESTED = "approval.requested"
    PLAN_FIRE_MISSED = "plan.fire_missed"
    PLAN_FIRE_SKIPPED = "plan.fire_skipped"
    PLAN_DISABLED = "plan.disabled"
    FLEET_NO_WORKER = "fleet.no_worker"
    QUEUE_LAGGING = "queue.lagging"


KINDS = (
    Kind.TASK_FAILED,
    Kind.TASK_SUCCEEDED,
    Kind.TASK_WAITING,
    Kind.SUBTASK_RETRIES_EXHAUSTED,
    Kind.APPROVAL_REQUESTED,
    Kind.PLAN_FIRE_MISSED,
    Kind.PLAN_FIRE_SKIPPED,
    Kind.PLAN_DISABLED,
    Kind.FLEET_NO_WORKER,
    Kind.QUEUE_LAGGING,
)


@dataclass(frozen=True)
class DomainEvent:
    """One event: its kind, the object it concerns and where that object lives.

    `key` makes it stable: the same change reported twice (a finish retried, two
    schedulers) is one event. `object_type` is "task", "subtask", "plan", "fleet" or
    "queue"; `task_id` is the task a task or subtask event concerns (what a rule on a task
    or a job matches); `job` the task's definition name; `plan_id` the plan.
    """

    kind: str
    key: str
    object_type: str
    object_id: int | None
    name: str
    status: str = ""
    cluster_id: int | None = None
    task_id: int | None = None
    plan_id: int | None = None
    job: str = ""
    occurred_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Recorder = Callable[[list[DomainEvent]], None]

_recorder: Recorder | None = None


def register_recorder(recorder: Recorder | None) -> Recorder | None:
    """Make `recorder` the one that stores events; returns the one it replaces."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous


def listening() -> bool:
    """Whether events are recorded at all (an emitter skips building one otherwise)."""
    return _recorder is not None


def emit(*events: DomainEvent) -> None:
    """Record events inside the caller's transaction (nothing without a recorder)."""
    if _recorder is not None and events:
        _recorder(list(events))
