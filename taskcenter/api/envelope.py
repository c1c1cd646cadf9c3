"""OCP's response envelope, around every answer of the /api/v2 facade.

Success: {data, successful: true, timestamp, duration, status, traceId, server}.
Failure: the same without data, successful: false, and
         error: {code, message, debugMessage, target, subErrors}.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from django.utils import timezone
from rest_framework.response import Response

from taskcenter.core.trace import current_trace_id

SERVER = socket.gethostname()


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in the configured time zone, with the offset and at most milliseconds.

    Shaped like OCP's Jackson output: "2021-08-25T15:09:31+08:00",
    "2021-08-25T15:09:31.74+08:00" (trailing zeros of the fraction dropped).
    """
    if value is None:
        return None
    # The API answers in the configured TIME_ZONE (no per-request activation), and
    # get_default_timezone() is cached, unlike localtime()'s per-call context lookup.
    local = value.astimezone(timezone.get_default_timezone())
    text = local.isoformat(timespec="milliseconds")
    # isoformat gives "...:31.740+08:00": trim the fraction the way Jackson does.
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    fraction, offset = rest[:3], rest[3:]
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}{offset}" if fraction else f"{head}{offset}"


def _meta(request, status: int) -> dict:
    started = getattr(request, "started_at", None)
    duration = int((time.monotonic() - started) * 1000) if started is not None else 0
    trace_id = current_trace_id()
    if trace_id == "-":
        trace_id = getattr(request, "trace_id", "") or ""
    return {
        "successful": status < 400,
        "timestamp": iso(timezone.now()),
        "duration": duration,
        "status": status,
        "traceId": trace_id,
        "server": SERVER,
    }


def success_body(request, data, status: int = 200, notice: str | None = None) -> dict:
    body = {"data": data, **_meta(request, status)}
    if notice:
        # Done, with something the caller should know (work queued for a broker away).
        body["notice"] = notice
    return body


def error_body(
    request,
    *,
    status: int,
    code: int,
    message: str,
    debug_message: str | None = None,
    target: str | None = None,
    sub_errors: list | None = None,
) -> dict:
    body = _meta(request, status)
    body["successful"] = False
    body["error"] = {
        "code": code,
        "message": message,
        "debugMessage": debug_message,
        "target": target,
        "subErrors": sub_errors or [],
    }
    return body


def ok(request, data, status: int = 200, notice: str | None = None) -> Response:
    return Response(success_body(request, data, status, notice), status=status)


def paged(contents: list, *, total: int, page: int, size: int) -> dict:
    return {
        "contents": contents,
        "page": {
            "totalElements": total,
            "totalPages": (total + size - 1) // size,
            "number": page,
            "size": size,
        },
    }
