"""OCP's response envelope, around every answer of the /api/v2 facade.

Success: {data, successful: true, timestamp, duration, status, traceId, server}.
Failure: the same without data, successful: false, and
         error: {code, message, debugMessage, target, subErrors}.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_HOUR_US = 60 * _MINUTE_US
# What iso() writes after the minutes: the seconds, then the milliseconds with trailing
# zeros dropped (none for a whole second).
_SECONDS = [f":{second:02d}" for second in range(60)]
_MILLISECONDS = ["." + f"{ms:03d}".rstrip("0") if ms else "" for ms in range(1000)]


class MicrosIso:
    """iso() of times given as integer microseconds since the epoch, for many times at
    once: the same text, without a datetime per time.

    A task's detail formats three times per subtask (3,000 for a task of 1,000
    subtasks): converting each to an aware datetime and then to the local zone and text
    was a third of the answer's CPU. Here the zone's offset is asked once per hour of UTC
    (and the local date and minute once per minute), and the seconds and milliseconds are
    looked up. An hour in which the offset changes (a DST switch) goes through iso() time
    by time. One instance per answer: the configured zone is read when it is made.
    """

    def __init__(self) -> None:
        self.zone = timezone.get_default_timezone()
        # UTC hour -> (offset in microseconds, the offset as iso() writes it), or None
        # when the offset is not the same at the hour's first and last microsecond.
        self._offsets: dict[int, tuple[int, str] | None] = {}
        # Local minute -> "YYYY-MM-DDTHH:MM".
        self._minutes: dict[int, str] = {}
        # Times already formatted: a task's subtasks are created by one statement, at one
        # time.
        self._texts: dict[int, str] = {}

    def __call__(self, micros: int | None) -> str | None:
        if micros is None:
            return None
        text = self._texts.get(micros)
        if text is None:
            text = self._texts[micros] = self._format(micros)
        return text

    def _format(self, micros: int) -> str:
        hour = micros // _HOUR_US
        try:
            offset = self._offsets[hour]
        except KeyError:
            offset = self._offsets[hour] = self._offset(hour)
        if offset is None:
            return iso(_EPOCH + timedelta(microseconds=micros)) or ""
        shift, suffix = offset
        local = micros + shift
        minute, rest = divmod(local, _MINUTE_US)
        head = self._minutes.get(minute)
        if head is None:
            head = self._minutes[minute] = (_NAIVE_EPOCH + timedelta(minutes=minute)).isoformat(
                timespec="minutes"
            )
        second, micro = divmod(rest, 1_000_000)
        return head + _SECONDS[second] + _MILLISECONDS[micro // 1000] + suffix

    def _offset(self, hour: int) -> tuple[int, str] | None:
        first = (_EPOCH + timedelta(microseconds=hour * _HOUR_US)).astimezone(self.zone)
        last = (_EPOCH + timedelta(microseconds=(hour + 1) * _HOUR_US - 1)).astimezone(self.zone)
        offset = first.utcoffset()
        if offset is None or offset != last.utcoffset():
            return None
        # The offset as isoformat writes it, after "YYYY-MM-DDTHH:MM:SS.mmm".
        return offset // _ONE_MICROSECOND, first.isoformat(timespec="milliseconds")[23:]


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
