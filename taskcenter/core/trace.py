"""The trace id of the current request or job, for audit rows and log lines."""

import contextvars
import logging
import secrets

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")


def new_trace_id() -> str:
    return secrets.token_hex(8)


def current_trace_id() -> str:
    return _trace_id.get()


def set_trace_id(value: str) -> contextvars.Token:
    return _trace_id.set(value)


def reset_trace_id(token: contextvars.Token) -> None:
    _trace_id.reset(token)


class TraceIdFilter(logging.Filter):
    """Adds %(trace_id)s to every log record so a request's lines can be found."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = _trace_id.get()
        return True
