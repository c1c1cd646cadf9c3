"""The client's exceptions: every failure a caller may meet, none of them a raw httpx one."""

from __future__ import annotations


class TaskcenterError(Exception):
    """Anything the client could not do."""


class Unreachable(TaskcenterError):
    """The server did not answer (connection refused, DNS, timeout), after any retries."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"Cannot reach {url}: {reason}")


class ApiError(TaskcenterError):
    """The server refused or failed: its code, message and traceId, and the HTTP status.

    OCP's envelope (/api/v2) carries {error: {code, message, target, subErrors}, traceId};
    HENGSHI's (/api/schedules, /api/contexts) {code, msg, field}; both are read here.
    """

    def __init__(
        self,
        *,
        status: int,
        code: int | None,
        message: str,
        trace_id: str = "",
        target: str | None = None,
        sub_errors: list | None = None,
        clock_skew: float | None = None,
    ):
        self.status = status
        self.code = code
        self.message = message
        self.trace_id = trace_id
        self.target = target
        self.sub_errors = sub_errors or []
        # Seconds between the server's clock and this machine's, when a signature was
        # refused and the server said its time (a skew over 15 minutes breaks signing).
        self.clock_skew = clock_skew
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.message} (HTTP {self.status}"
        if self.code is not None:
            text += f", code {self.code}"
        if self.trace_id:
            text += f", traceId {self.trace_id}"
        return text + ")"
