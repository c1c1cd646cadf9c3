"""Bulk: one task verb (retry, roll back, cancel task) asked of many tasks at once.

Every bulk operation is the single verb run many times under the same rules:

- **Judging** (`bulk_judge`, the dry run): for each selected task, whether it would be
  done or refused and why: not visible to the caller (20000), outside the clusters
  where the caller holds the verb's permission (30014), or the verb's own refusal
  predicate (its code and words). The caller's access (what they see, where they may
  operate) comes from taskcenter.accounts.access.bulk_selection; nothing here decides
  who may do what.
- **Starting** (`bulk_start`): the same judgement, then one BulkOperation with one item
  per accepted task and its own audit entry, in one transaction; its background runs
  are sent on commit (taskcenter.tasks.enqueue.enqueue_bulk).
- **Working** (`bulk_work`, a thin Celery task's body): claims pending items a batch
  at a time (FOR UPDATE SKIP LOCKED on PostgreSQL: several runs share the work, a
  redelivered message takes what is left) and does the single verb on each inside the
  same transaction as the item's outcome, so an item is DONE exactly when its verb
  committed. The verb locks the task and asks its refusal predicate under that lock,
  as a single press does: a bulk retry racing an operator's retry runs the task once,
  and the later of the two is refused. Each task's audit entry carries the bulk id.
- **Stopping** (`bulk_stop`): the items not yet claimed end STOPPED; those claimed
  finish their batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from taskcenter.core.errors import (
    InvalidParameter,
    InvalidState,
    NotPermitted,
    TaskCenterError,
    TaskNotFound,
)
from taskcenter.tasks import enqueue
from taskcenter.tasks.audit import Action, actor_name, audit_record, in_bulk
from taskcenter.tasks.models import BulkItem, BulkOperation, TaskInstance

logger = logging.getLogger(__name__)

# The verbs a bulk operation may ask, by the name its URL gives: each a task verb's key
# (taskcenter.tasks.verbs.VERBS).
BULK_VERBS = {"retry": "retry", "rollback": "rollback", "cancel": "cancel_task"}
BULK_AUDIT_ACTIONS = {
    "retry": Action.BULK_RETRY,
    "rollback": Action.BULK_ROLLBACK,
    "cancel_task": Action.BULK_CANCEL,
}
# At most this many tasks per request: a wider selection is refused whole, with its count.
BULK_MAX = 10_000
# Items one background run claims and does per transaction.
BULK_BATCH = 100
# Background runs started per bulk operation: one per this many tasks, at most BULK_RUNS.
BULK_TASKS_PER_RUN = 1_000
BULK_RUNS = 4


@dataclass(frozen=True)
class BulkSelection:
    """What a caller selected, as their access shapes it
    (taskcenter.accounts.access.bulk_selection)."""

    verb_key: str  # a key of VERBS
    tasks: QuerySet[TaskInstance]  # the visible tasks selected
    unseen: list[int]  # ids given that the caller cannot see (or that do not exist)
    operable: frozenset[int] | None  # clusters where the caller may do the verb; None: all
    described: dict[str, Any]  # the selection as asked: {"ids": [...]} or {"filter": {...}}
    refusal_words: str  # "You do not have permission to retry tasks" (for 30014)


@dataclass(frozen=True)
class Refused:
    task_id: int
    code: int
    message: str  # the API's words (the error's message)
    why: str  # the pages' words


@dataclass
class Judgement:
    """The dry run's answer: every selected task accepted or refused, with why."""

    matched: int
    accepted: list[int] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    def counts(self) -> list[tuple[str, int]]:
        """How many tasks each reason covers, most first (the pages' summary)."""
        by_why: dict[str, int] = {}
        for refused in self.refused:
            by_why[refused.why] = by_why.get(refused.why, 0) + 1
        return sorted(by_why.items(), key=lambda pair: (-pair[1], pair[0]))


def _verb(key: str):
    from taskcenter.tasks.verbs import VERBS  # the registry imports this module

    return VERBS[key]


def bulk_judge(selection: BulkSelection) -> Judgement:
    """For each selected task, done or refused and why, without changing anything.

    Refused whole (InvalidParameter) when the selection holds more than BULK_MAX tasks."""
    verb = _verb(selection.verb_key)
    target = "ids" if "ids" in selection.described else "filter"
    tasks = list(selection.tasks.defer("parameters").order_by("pk")[: BULK_MAX + 1])
    matched = len(tasks) + len(selection.unseen)
    if matched > BULK_MAX:
        raise InvalidParameter.because(
            target,
            f"selects more than {BULK_MAX:,} tasks; a bulk operation takes at most "
            f"{BULK_MAX:,}. Narrow the filter or send fewer ids.",
        )
    judgement = Judgement(matched=matched)
    for task_id in selection.unseen:
        missing = TaskNotFound(f"The {task_id} task does not exist.")
        judgement.refused.append(
            Refused(task_id, missing.code, missing.message, "Not found, or not yours to see.")
        )
    for task in tasks:
        if selection.operable is not None and task.cluster_id not in selection.operable:
            denied = NotPermitted(f"{selection.refusal_words} on this cluster.")
            judgement.refused.append(
                Refused(
                    task.pk, denied.code, denied.message, "Outside the clusters your role covers."
                )
            )
            continue
        refusal = verb.refused(task)
        if refusal is None:
            judgement.accepted.append(task.pk)
        else:
            judgement.refused.append(
                Refused(task.pk, refusal.error.code, refusal.error.message, refusal.why)
            )
    judgement.refused.sort(key=lambda refused: refused.task_id)
    return judgement


def bulk_start(
    selection: BulkSelection, *, actor, reason: str = ""
) -> tuple[BulkOperation, Judgement]:
    """Judge the selection and start doing the verb on every accepted task in the
    background: the operation, its items and its audit entry in one transaction, its
    runs sent on commit."""
    verb = _verb(selection.verb_key)
    if verb.reason_required and not reason.strip():
        raise InvalidParameter.because("reason", "is required for this operation.")
    judgement = bulk_judge(selection)
    with transaction.atomic():
        bulk = BulkOperation.objects.create(
            verb=verb.key,
            actor=actor,
            actor_name=actor_name(actor),
            reason=reason,
            selection=selection.described,
            matched=judgement.matched,
            refused_at_start=len(judgement.refused),
            total=len(judgement.accepted),
            state=BulkOperation.State.RUNNING
            if judgement.accepted
            else BulkOperation.State.FINISHED,
            finished_at=None if judgement.accepted else timezone.now(),
        )
        BulkItem.objects.bulk_create(
            (BulkItem(bulk=bulk, task_id=task_id) for task_id in judgement.accepted),
            batch_size=2_000,
        )
        audit_record(
            actor=actor,
            action=BULK_AUDIT_ACTIONS[verb.key],
            target=f"bulk {bulk.pk}: {len(judgement.accepted)} of {judgement.matched} tasks",
            reason=reason,
            bulk_id=bulk.pk,
        )
        if judgement.accepted:
            runs = min(BULK_RUNS, -(-len(judgement.accepted) // BULK_TASKS_PER_RUN))
            enqueue.enqueue_bulk(str(bulk.pk), runs)
    return bulk, judgement


def bulk_work(*, bulk_id: str | uuid.UUID) -> int:
    """Do the verb on the operation's pending tasks, a batch per transaction, until none
    is left or the operation is stopped; returns how many items this run settled."""
    settled = 0
    while True:
        with transaction.atomic():
            bulk = BulkOperation.objects.select_related("actor").filter(pk=bulk_id).first()
            if bulk is None or bulk.state != BulkOperation.State.RUNNING:
                return settled
            items = _claim(bulk)
            if not items:
                _finish_if_done(bulk)
                return settled
            actor = bulk.actor
            if actor is not None and not actor.is_active:
                _stop(bulk, "The user who started it was deactivated.")
                return settled
            _do(bulk, items, actor)
            settled += len(items)
            BulkOperation.objects.filter(pk=bulk.pk).update(updated_at=timezone.now())
        # Out of the batch's transaction: whether the others' batches left anything.
        with transaction.atomic():
            _finish_if_done(bulk)


def _claim(bulk: BulkOperation) -> list[BulkItem]:
    pending = BulkItem.objects.filter(bulk=bulk, outcome=BulkItem.Outcome.PENDING).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        pending = pending.select_for_update(skip_locked=True)
    return list(pending[:BULK_BATCH])


def _do(bulk: BulkOperation, items: Iterable[BulkItem], actor) -> None:
    verb = _verb(bulk.verb)
    with in_bulk(bulk.pk), enqueue.collect_queued():
        for item in items:
            try:
                # Every verb is one transaction.atomic(), here a savepoint of the batch's
                # transaction: a refused or broken verb undoes only itself.
                verb.perform(TaskInstance(pk=item.task_id), actor=actor, reason=bulk.reason)
            except TaskCenterError as exc:
                item.outcome, item.code, item.message = (
                    BulkItem.Outcome.REFUSED,
                    exc.code,
                    exc.message,
                )
            except Exception as exc:  # noqa: BLE001 - recorded on the item, the bulk goes on
                logger.exception("bulk %s: task %s failed", bulk.pk, item.task_id)
                item.outcome, item.code, item.message = (
                    BulkItem.Outcome.FAILED,
                    TaskCenterError.code,
                    f"Unexpected error: {type(exc).__name__}",
                )
            else:
                item.outcome = BulkItem.Outcome.DONE
    BulkItem.objects.bulk_update(list(items), ["outcome", "code", "message"])


def _finish_if_done(bulk: BulkOperation) -> None:
    left = BulkItem.objects.filter(bulk=bulk, outcome=BulkItem.Outcome.PENDING)
    if not left.exists():
        BulkOperation.objects.filter(pk=bulk.pk, state=BulkOperation.State.RUNNING).update(
            state=BulkOperation.State.FINISHED, finished_at=timezone.now()
        )


def _stop(bulk: BulkOperation, why: str) -> int:
    """Compare-and-set RUNNING -> STOPPED; the unclaimed items end STOPPED."""
    if not BulkOperation.objects.filter(pk=bulk.pk, state=BulkOperation.State.RUNNING).update(
        state=BulkOperation.State.STOPPED, finished_at=timezone.now()
    ):
        return 0
    return BulkItem.objects.filter(bulk=bulk, outcome=BulkItem.Outcome.PENDING).update(
        outcome=BulkItem.Outcome.STOPPED, message=why
    )


def bulk_stop(*, bulk: BulkOperation, actor, reason: str = "") -> int:
    """Stop a running bulk operation: the tasks not yet reached are left as they are.
    Returns how many were left; refused when it is no longer running."""
    with transaction.atomic():
        locked = BulkOperation.objects.select_for_update().get(pk=bulk.pk)
        if locked.state != BulkOperation.State.RUNNING:
            raise InvalidState(
                f"The bulk operation {bulk.pk} is {locked.state.lower()}; only a running one "
                "can be stopped."
            )
        left = _stop(locked, f"Stopped by {actor_name(actor)}.")
        audit_record(
            actor=actor,
            action=Action.BULK_STOP,
            target=f"bulk {bulk.pk}: {left} tasks left as they were",
            reason=reason,
            bulk_id=bulk.pk,
        )
    return left


def bulk_stop_refusal(bulk: BulkOperation) -> str | None:
    if bulk.state != BulkOperation.State.RUNNING:
        return "It has ended; there is nothing left to stop."
    return None


def bulks_stalled(*, quiet_for: timedelta) -> list[str]:
    """Running operations that no run has stamped for `quiet_for` (their run was lost);
    stamped now, so that each is started again once per `quiet_for`."""
    before = timezone.now() - quiet_for
    with transaction.atomic():
        ids = list(
            BulkOperation.objects.filter(
                state=BulkOperation.State.RUNNING, updated_at__lt=before
            ).values_list("pk", flat=True)[:100]
        )
        if ids:
            BulkOperation.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return [str(pk) for pk in ids]


# --- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkProgress:
    bulk: BulkOperation
    total: int
    done: int
    refused: int
    failed: int
    stopped: int

    @property
    def pending(self) -> int:
        return self.total - self.done - self.refused - self.failed - self.stopped

    @property
    def finished(self) -> bool:
        """Nothing is left to do (all settled, or stopped)."""
        return self.bulk.state != BulkOperation.State.RUNNING or self.pending <= 0

    def percent(self, count: int) -> float:
        return round(100 * count / self.total, 1) if self.total else 0.0


def bulk_progress(*, bulk: BulkOperation) -> BulkProgress:
    """Where a bulk operation stands: its items counted by outcome (one grouped read)."""
    counts = dict(
        BulkItem.objects.filter(bulk=bulk).values_list("outcome").annotate(n=Count("pk")).order_by()
    )
    bulk.refresh_from_db(fields=["state", "finished_at"])
    return BulkProgress(
        bulk=bulk,
        total=bulk.total,
        done=counts.get(BulkItem.Outcome.DONE, 0),
        refused=counts.get(BulkItem.Outcome.REFUSED, 0),
        failed=counts.get(BulkItem.Outcome.FAILED, 0),
        stopped=counts.get(BulkItem.Outcome.STOPPED, 0),
    )


def bulk_problems(*, bulk: BulkOperation, limit: int = 50) -> list[BulkItem]:
    """The items refused or failed when their turn came, first ones first."""
    return list(
        BulkItem.objects.filter(
            bulk=bulk, outcome__in=[BulkItem.Outcome.REFUSED, BulkItem.Outcome.FAILED]
        ).order_by("pk")[:limit]
    )
