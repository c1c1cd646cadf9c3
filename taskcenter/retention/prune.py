"""Pruning: each kind's rows past their retention, removed in small batches.

Every kind walks its table in key order (a keyset, so each batch is an index range, never
an OFFSET), picks a batch of candidates without locking, then in one short transaction
locks those still eligible (FOR UPDATE SKIP LOCKED on PostgreSQL: a row someone else holds
is left for the next pass), exports them when asked, and deletes them. No lock outlives
its batch, and after each batch the prune waits as long as the batch took times
TASKCENTER_RETENTION_IDLE_RATIO (3; at least TASKCENTER_RETENTION_PAUSE), so that it has
the database a quarter of the time at most and the engine keeps its pace.

A dry run walks the same batches and applies the same rules without deleting, so what it
counts is what a real run would remove at that moment.

What is never pruned: a task that has not ended (RUNNING, or a subtask still active), a
task that is a pending item of a running bulk operation, the last run of each plan that exists, and the fire that started it. An audit entry
outlives its task: its link to the task is cleared (the target text keeps the task's id)
and it is kept for its own retention; an old fire whose run was pruned goes with its own
retention, and a fire that another fire names as its upstream waits until that one goes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import CASCADE, SET_NULL, Exists, Max, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from taskcenter.accounts.models import KnownSignIn, SignInFailureCount
from taskcenter.engine.models import FinishedMinute, PendingDispatch, WorkerPresence
from taskcenter.retention import policy
from taskcenter.retention.export import Exporter
from taskcenter.schedules.models import Fire, Plan
from taskcenter.tasks import selectors as task_selectors
from taskcenter.tasks.models import (
    ACTIVE_SUBTASK_STATUSES,
    AuditEntry,
    BulkItem,
    BulkOperation,
    LogChunk,
    SubtaskInstance,
    TaskInstance,
    TaskStatus,
)

logger = logging.getLogger(__name__)


@dataclass
class KindReport:
    rows: int = 0  # rows of the kind's own table (tasks, fires, ...)
    related: dict[str, int] = field(default_factory=dict)  # what went with them
    export: Path | None = None

    def add(self, name: str, count: int) -> None:
        self.related[name] = self.related.get(name, 0) + count


@dataclass
class Report:
    dry_run: bool
    kinds: dict[str, KindReport] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        done = ", ".join(f"{key} {k.rows}" for key, k in self.kinds.items() if k.rows)
        verb = "would prune" if self.dry_run else "pruned"
        return f"{verb} {done or 'nothing'} in {self.seconds:.1f} s"


@dataclass
class Pass:
    """What one pass knows: its time, its batch size, its export, the protected runs."""

    now: datetime
    batch: int
    dry_run: bool
    exporter: Exporter | None
    pause: float
    idle_ratio: float
    protected_tasks: set[int] = field(default_factory=set)
    # A dry run deletes no task, so its fires stay linked to runs a real pass would have
    # pruned just before: it counts those runs as gone (the tasks rule, as a subquery).
    tasks_gone: QuerySet | None = None


def last_runs_of_plans() -> set[int]:
    """The task of each existing plan's last run: never pruned, whatever its age."""
    last = (
        Fire.objects.filter(plan=OuterRef("pk"), task__isnull=False)
        .order_by("-id")
        .values("task_id")[:1]
    )
    runs = Plan.objects.annotate(last_task=last).values_list("last_task", flat=True)
    return {task_id for task_id in runs if task_id is not None}


def as_dict(row: Model) -> dict[str, Any]:
    """Every column of a row, by column name (`cluster_id`, not `cluster`), as exported."""
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


# --- One kind: candidates, eligibility under lock, deletion --------------------------------


class Pruner:
    """A kind's walk: `candidates` in key order, then per `batch` in one transaction:
    `eligible` (the rule again, locked), `exported` when asked, `delete`."""

    key: str
    order = "pk"

    def __init__(self, run: Pass, cutoff: datetime):
        self.run = run
        self.cutoff = cutoff

    def old(self) -> QuerySet:
        raise NotImplementedError

    def candidates(self, after: Any, size: int) -> list:
        rows = self.old()
        if after is not None:
            rows = rows.filter(**{f"{self.order}__gt": after})
        return list(rows.order_by(self.order).values_list(self.order, flat=True)[:size])

    def eligible(self, keys: list, *, lock: bool) -> list:
        rows = self.old().filter(**{f"{self.order}__in": keys})
        if lock:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        return list(rows.order_by(self.order).values_list(self.order, flat=True))

    def exported(self, keys: list) -> list[dict[str, Any]]:
        model = self.old().model
        return [as_dict(row) for row in model.objects.filter(pk__in=keys).order_by("pk")]

    def delete(self, keys: list, report: KindReport) -> int:
        deleted, _ = self.old().model.objects.filter(pk__in=keys).delete()
        return deleted

    def batch(self, candidates: list, report: KindReport) -> int:
        if self.run.dry_run:
            keys = self.eligible(candidates, lock=False)
            self.count_related(keys, report)
            return len(keys)
        with transaction.atomic():
            keys = self.eligible(candidates, lock=True)
            if not keys:
                return 0
            if self.run.exporter is not None and policy.BY_KEY[self.key].exported:
                self.run.exporter.write(self.key, self.exported(keys))
            self.delete(keys, report)
        return len(keys)

    def count_related(self, keys: list, report: KindReport) -> None:
        """What would go with these rows (dry runs)."""


class Tasks(Pruner):
    key = "tasks"

    def __init__(self, run: Pass, cutoff: datetime):
        super().__init__(run, cutoff)
        # Ids only grow and a task ends after it is made: none made after the cutoff can
        # have ended before it, so the walk stops at the last id made before the cutoff.
        self.last_id = (
            TaskInstance.objects.filter(create_time__lt=cutoff).aggregate(m=Max("pk"))["m"] or 0
        )

    def old(self) -> QuerySet:
        active = SubtaskInstance.objects.filter(
            task=OuterRef("pk"), status__in=ACTIVE_SUBTASK_STATUSES
        )
        # A task a running bulk operation has still to do (its items by `bulkitem_task`).
        awaited = BulkItem.objects.filter(
            task=OuterRef("pk"),
            outcome=BulkItem.Outcome.PENDING,
            bulk__state=BulkOperation.State.RUNNING,
        )
        return (
            TaskInstance.objects.filter(pk__lte=self.last_id, finish_time__lt=self.cutoff)
            .exclude(status=TaskStatus.RUNNING)
            .exclude(pk__in=self.run.protected_tasks)
            .exclude(Exists(active))
            .exclude(Exists(awaited))
        )

    def exported(self, keys: list) -> list[dict[str, Any]]:
        subtasks: dict[int, list[dict[str, Any]]] = {}
        logs: dict[int, list[bytes]] = {}
        for chunk in LogChunk.objects.filter(subtask__task_id__in=keys).order_by(
            "subtask_id", "offset"
        ):
            logs.setdefault(chunk.subtask_id, []).append(bytes(chunk.data))
        for sub in SubtaskInstance.objects.filter(task_id__in=keys).order_by("pk"):
            row = as_dict(sub)
            row["log"] = b"".join(logs.get(sub.pk, [])).decode("utf-8", errors="replace")
            subtasks.setdefault(sub.task_id, []).append(row)
        rows = []
        tasks = TaskInstance.objects.filter(pk__in=keys).select_related("definition")
        for task in tasks.order_by("pk"):
            row = as_dict(task)
            row.update(
                # Secret parameters masked, as every page and answer shows them.
                parameters=task_selectors.shown_parameters(task),
                hosts=list(task.hosts.values_list("address", flat=True)),
                subtasks=subtasks.get(task.pk, []),
            )
            rows.append(row)
        return rows

    def count_related(self, keys: list, report: KindReport) -> None:
        report.add("subtasks", SubtaskInstance.objects.filter(task_id__in=keys).count())
        report.add("log chunks", LogChunk.objects.filter(subtask__task_id__in=keys).count())

    def delete(self, keys: list, report: KindReport) -> int:
        subtasks = SubtaskInstance.objects.filter(task_id__in=keys).values("pk")
        report.add("log chunks", _clear_references(SubtaskInstance, subtasks).get(LogChunk, 0))
        report.add("subtasks", _raw_delete(SubtaskInstance.objects.filter(task_id__in=keys)))
        _clear_references(TaskInstance, keys)
        return _raw_delete(TaskInstance.objects.filter(pk__in=keys))


# The audit keeps its entries for its own retention, no longer tied to the task they name.
_DETACHED = {(AuditEntry, "task"), (AuditEntry, "subtask")}


def _raw_delete(rows: QuerySet) -> int:
    """One DELETE statement: the rows' references were cleared first (_clear_references),
    so Django's collector, which reads every row and deletes in slices of 100, is not
    needed. Django's own fast path for a model nothing refers to."""
    return rows._raw_delete(rows.db)


def _references(model: type[Model]) -> list:
    """The foreign keys (and one-to-ones) of other models to `model`, hidden ones (a
    related_name of "+", as the outbox's, and many-to-many link tables, as the task's
    hosts) included."""
    return [
        rel
        for rel in model._meta.get_fields(include_hidden=True)
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)
    ]


def _clear_references(model: type[Model], pks) -> dict[type[Model], int]:
    """Everything that refers to the rows `pks` of `model` (a list or a subquery), cleared
    as its foreign key says, one statement per kind of reference: CASCADE deletes, SET_NULL
    and the audit's links set NULL. Read from the models, so a table added later that
    refers to a task or a subtask is handled without a change here. Returns the rows
    deleted per model."""
    deleted: dict[type[Model], int] = {}
    for rel in _references(model):
        related, name = rel.related_model, rel.field.name
        rows = related._base_manager.filter(**{f"{name}__in": pks})
        if (related, name) in _DETACHED or rel.on_delete is SET_NULL:
            rows.update(**{name: None})
        elif rel.on_delete is CASCADE and related is not SubtaskInstance:
            if _references(related):
                count, _ = rows.delete()  # refers on: Django's collector follows it
            else:
                count = _raw_delete(rows)
            deleted[related] = deleted.get(related, 0) + count
    return deleted


class Fires(Pruner):
    key = "fires"

    def old(self) -> QuerySet:
        gone = Q(task__isnull=True)
        if self.run.tasks_gone is not None:
            gone |= Q(task_id__in=self.run.tasks_gone)
        return Fire.objects.filter(gone, created_at__lt=self.cutoff)

    def eligible(self, keys: list, *, lock: bool) -> list:
        keys = super().eligible(keys, lock=lock)
        # A fire named as the upstream of one that stays waits for that one to go.
        named = (
            Fire.objects.filter(upstream_id__in=keys)
            .exclude(pk__in=keys)
            .values_list("upstream_id", flat=True)
        )
        waiting = set(named)
        return [key for key in keys if key not in waiting]

    def delete(self, keys: list, report: KindReport) -> int:
        Fire.objects.filter(upstream_id__in=keys).update(upstream=None)
        deleted, _ = Fire.objects.filter(pk__in=keys).only("pk").delete()
        return deleted


class Audit(Pruner):
    key = "audit"

    def old(self) -> QuerySet:
        return AuditEntry.objects.filter(created_at__lt=self.cutoff)

    def delete(self, keys: list, report: KindReport) -> int:
        deleted, _ = AuditEntry.objects.filter(pk__in=keys).delete()
        return deleted


class Bulk(Pruner):
    """Bulk operations that ended (finished or stopped), with their items. An item whose
    task was pruned already went with it; the audit entries that carry the operation's
    id keep it (a plain id, not a link) for their own retention."""

    key = "bulk"

    def old(self) -> QuerySet:
        return BulkOperation.objects.filter(
            state__in=(BulkOperation.State.FINISHED, BulkOperation.State.STOPPED),
            finished_at__lt=self.cutoff,
        )

    def exported(self, keys: list) -> list[dict[str, Any]]:
        items: dict[Any, list[dict[str, Any]]] = {}
        for item in BulkItem.objects.filter(bulk_id__in=keys).order_by("pk"):
            items.setdefault(item.bulk_id, []).append(as_dict(item))
        rows = []
        for bulk in BulkOperation.objects.filter(pk__in=keys).order_by("pk"):
            row = as_dict(bulk)
            row["items"] = items.get(bulk.pk, [])
            rows.append(row)
        return rows

    def count_related(self, keys: list, report: KindReport) -> None:
        report.add("items", BulkItem.objects.filter(bulk_id__in=keys).count())

    def delete(self, keys: list, report: KindReport) -> int:
        report.add("items", _clear_references(BulkOperation, keys).get(BulkItem, 0))
        return _raw_delete(BulkOperation.objects.filter(pk__in=keys))


class Sessions(Pruner):
    key = "sessions"
    order = "session_key"

    def old(self) -> QuerySet:
        return Session.objects.filter(expire_date__lt=self.cutoff)


class SignIn(Pruner):
    key = "signin"

    def old(self) -> QuerySet:
        window = settings.TASKCENTER_SIGNIN_WINDOW_SECONDS
        # A window is pruned once it ended before the cutoff: its start is a window earlier.
        bucket = math.floor(self.cutoff.timestamp() / window) - 1
        return SignInFailureCount.objects.filter(bucket__lt=bucket)


class KnownSignIns(Pruner):
    key = "known_signins"

    def old(self) -> QuerySet:
        return KnownSignIn.objects.filter(last_success_at__lt=self.cutoff)


class Workers(Pruner):
    key = "workers"

    def old(self) -> QuerySet:
        return WorkerPresence.objects.filter(last_seen__lt=self.cutoff)


class Minutes(Pruner):
    key = "minutes"

    def old(self) -> QuerySet:
        return FinishedMinute.objects.filter(minute__lt=self.cutoff)


class Outbox(Pruner):
    key = "outbox"

    def old(self) -> QuerySet:
        return PendingDispatch.objects.filter(failed_at__lt=self.cutoff)


PRUNERS: dict[str, Callable[[Pass, datetime], Pruner]] = {
    "tasks": Tasks,
    "fires": Fires,
    "audit": Audit,
    "bulk": Bulk,
    "sessions": Sessions,
    "signin": SignIn,
    "known_signins": KnownSignIns,
    "workers": Workers,
    "minutes": Minutes,
    "outbox": Outbox,
}


def _walk(pruner: Pruner, report: KindReport) -> None:
    after = None
    while True:
        candidates = pruner.candidates(after, pruner.run.batch)
        if not candidates:
            return
        after = candidates[-1]
        started = time.monotonic()
        report.rows += pruner.batch(candidates, report)
        if not pruner.run.dry_run:
            # Yield the database to the others for as long as the batch had it (times
            # the idle ratio), and at least the pause.
            took = time.monotonic() - started
            time.sleep(max(pruner.run.pause, took * pruner.run.idle_ratio))


def prune(
    *,
    kinds: Iterable[str] | None = None,
    dry_run: bool = False,
    export_dir: str | Path | None = None,
    now: datetime | None = None,
    batch: int | None = None,
    pause: float | None = None,
) -> Report:
    """Prune `kinds` (every kind when None) by their retention, as of `now`.

    Tasks go before fires (a fire whose run was just pruned is then old enough to go in
    the same pass). `export_dir` (default TASKCENTER_RETENTION_EXPORT_DIR, empty for
    none) receives what is deleted, first.
    """
    started = time.monotonic()
    now = now or timezone.now()
    wanted = list(kinds) if kinds is not None else list(PRUNERS)
    unknown = [key for key in wanted if key not in PRUNERS]
    if unknown:
        raise ValueError(f"unknown kind(s): {', '.join(unknown)}; known: {', '.join(PRUNERS)}")
    folder = settings.TASKCENTER_RETENTION_EXPORT_DIR if export_dir is None else export_dir
    exporter = Exporter(Path(folder), now) if folder and not dry_run else None
    run = Pass(
        now=now,
        batch=batch or settings.TASKCENTER_RETENTION_BATCH,
        dry_run=dry_run,
        exporter=exporter,
        pause=settings.TASKCENTER_RETENTION_PAUSE if pause is None else pause,
        idle_ratio=settings.TASKCENTER_RETENTION_IDLE_RATIO if pause is None else 0.0,
        protected_tasks=last_runs_of_plans() if "tasks" in wanted else set(),
    )
    report = Report(dry_run=dry_run)
    try:
        for key in PRUNERS:  # in this order, whatever order they were asked in
            if key not in wanted:
                continue
            span = policy.keep(key)
            report.kinds[key] = kind_report = KindReport()
            if span is None:
                continue
            pruner = PRUNERS[key](run, now - span)
            _walk(pruner, kind_report)
            if dry_run and key == "tasks":
                run.tasks_gone = pruner.old().values("pk")
            if exporter is not None:
                kind_report.export = exporter.files.get(key)
    finally:
        if exporter is not None:
            exporter.close()
    report.seconds = time.monotonic() - started
    return report


def prune_scheduled() -> Report:
    """The scheduler's daily pass: every kind, exported when an export folder is set."""
    report = prune()
    logger.info("retention: %s", report)
    return report
