"""Subtask logs: append-only chunks with byte offsets, capped per subtask."""

from __future__ import annotations

import socket
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from taskcenter.tasks import sql
from taskcenter.tasks.models import SubtaskInstance

_HOSTNAME = socket.gethostname()


class AttemptRef(Protocol):
    """A subtask at one attempt: a row, or the state the end of an attempt reads."""

    pk: int
    attempt: int


def format_log_line(message: str) -> bytes:
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{stamp} [{_HOSTNAME}] {message}\n".encode()


def log_append(*, subtask_id: int, attempt: int, data: bytes) -> None:
    """Append to a subtask's log (the worker streams output through this)."""
    if not data:
        return
    with transaction.atomic():
        append(subtask_id, attempt, data)


def log_line(subtask: AttemptRef, message: str) -> None:
    """Append one stamped line to the log of the subtask's current attempt."""
    append(subtask.pk, subtask.attempt, format_log_line(message))


def append(subtask_id: int, attempt: int, data: bytes) -> None:
    """Append `data` to the log at its current end, inside the caller's transaction.

    The subtask row is locked for the read: the worker's watcher appends under that row
    lock, not the task's, and two appends must not both write at the same offset.
    """
    row = (
        SubtaskInstance.objects.select_for_update()
        .filter(pk=subtask_id)
        .values("log_size", "log_truncated")
        .get()
    )
    insert, fields = chunks_insert(subtask_id, attempt, data, row["log_size"], row["log_truncated"])
    if insert:
        sql.run(*insert)
    if fields:
        SubtaskInstance.objects.filter(pk=subtask_id).update(**fields)


def chunks_insert(
    subtask_id: int, attempt: int, data: bytes, size: int, truncated: bool
) -> tuple[sql.Statement | None, dict[str, Any]]:
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
    now = sql.db_time(timezone.now())
    rows = []
    for start in range(0, len(data), sql.LOG_CHUNK_MAX):
        piece = data[start : start + sql.LOG_CHUNK_MAX]
        rows.append((subtask_id, attempt, size, len(piece), piece, now))
        size += len(piece)
    return sql.log_chunks_insert(rows), {"log_size": size, "log_truncated": truncated}
