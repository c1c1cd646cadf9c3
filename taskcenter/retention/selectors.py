"""What each kind of data holds now: rows, size on disk and oldest row (the Admin page).

Row counts are exact, except on PostgreSQL for a table the statistics put above
ESTIMATE_ABOVE rows, where the planner's estimate answers at once instead of a count that
reads the whole table (shown as "about"). Sizes are PostgreSQL's total relation sizes
(table, indexes and TOAST), or on SQLite the pages of SQLite's dbstat table where that is
compiled in (else unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection
from django.db.models import Min, Model

from taskcenter.accounts.models import KnownSignIn, SignInFailureCount
from taskcenter.engine.models import FinishedMinute, PendingDispatch, WorkerPresence
from taskcenter.retention import policy
from taskcenter.schedules.models import Fire
from taskcenter.tasks.models import (
    AuditEntry,
    BulkItem,
    BulkOperation,
    LogChunk,
    SubtaskInstance,
    TaskInstance,
)

ESTIMATE_ABOVE = 200_000

# Each kind's tables, its own first (whose rows are counted), and where its age is read.
TABLES: dict[str, list[type[Model]]] = {
    "tasks": [TaskInstance, SubtaskInstance, LogChunk, TaskInstance.hosts.through],
    "fires": [Fire],
    "audit": [AuditEntry],
    "bulk": [BulkOperation, BulkItem],
    "sessions": [Session],
    "signin": [SignInFailureCount],
    "known_signins": [KnownSignIn],
    "workers": [WorkerPresence],
    "minutes": [FinishedMinute],
    "outbox": [PendingDispatch],
}
AGE_FIELD = {
    "tasks": "create_time",
    "fires": "created_at",
    "audit": "created_at",
    "bulk": "created_at",
    "sessions": "expire_date",
    "known_signins": "last_success_at",
    "workers": "last_seen",
    "minutes": "minute",
    "outbox": "failed_at",
}


@dataclass(frozen=True)
class KindStats:
    kind: policy.Kind
    keep: str
    rule: str
    rows: int
    estimated: bool
    size: int | None
    oldest: datetime | None


def _estimate(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def _rows(model: type[Model]) -> tuple[int, bool]:
    if connection.vendor == "postgresql":
        estimate = _estimate(model._meta.db_table)
        if estimate > ESTIMATE_ABOVE:
            return estimate, True
    return model._default_manager.count(), False


def _size(models: list[type[Model]]) -> int | None:
    tables = [model._meta.db_table for model in models]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT SUM(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
                    [tables],
                )
            else:
                marks = ", ".join(["%s"] * len(tables))
                cursor.execute(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                    f"(SELECT name FROM sqlite_master WHERE tbl_name IN ({marks}))",
                    tables,
                )
            row = cursor.fetchone()
    except DatabaseError:  # SQLite built without dbstat
        return None
    return int(row[0]) if row and row[0] is not None else 0


def _oldest(key: str) -> datetime | None:
    if key == "signin":
        bucket = SignInFailureCount.objects.aggregate(first=Min("bucket"))["first"]
        if bucket is None:
            return None
        start = bucket * settings.TASKCENTER_SIGNIN_WINDOW_SECONDS
        return datetime.fromtimestamp(math.floor(start), tz=UTC)
    model = TABLES[key][0]
    value = model._default_manager.aggregate(first=Min(AGE_FIELD[key]))["first"]
    return value if isinstance(value, datetime) else None


def retention_stats() -> list[KindStats]:
    """Every kind, in the order they are pruned."""
    stats = []
    for kind in policy.KINDS:
        rows, estimated = _rows(TABLES[kind.key][0])
        stats.append(
            KindStats(
                kind=kind,
                keep=policy.describe_keep(policy.keep(kind.key)),
                rule=policy.rule_text(kind),
                rows=rows,
                estimated=estimated,
                size=_size(TABLES[kind.key]),
                oldest=_oldest(kind.key),
            )
        )
    return stats
