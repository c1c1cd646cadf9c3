"""The trace id of the current request or job, for audit rows and log lines; beside it the
caller's own trace id and the access key a signed request was made with."""

import contextvars
import logging
import secrets

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")
# The id the caller sent (checked by taskcenter.core.text_input), "" when none.
_caller_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "caller_trace_id", default=""
)
# The access key id of a signed request, set by its authentication; "" otherwise.
_access_key_id: contextvars.ContextVar[str] = contextvars.ContextVar("access_key_id", default="")


def new_trace_id() -> str:
    return secrets.token_hex(8)


def current_trace_id() -> str:
    return _trace_id.get()


def set_trace_id(value: str) -> contextvars.Token:
    return _trace_id.set(value)


def reset_trace_id(token: contextvars.Token) -> None:
    _trace_id.reset(token)


def current_caller_trace_id() -> str:
    return _caller_trace_id.get()


def set_caller_trace_id(value: str) -> contextvars.Token:
    return _caller_trace_id.set(value)


def reset_caller_trace_id(token: contextvars.Token) -> None:
    _caller_trace_id.reset(token)


def current_access_key_id() -> str:
    return _access_key_id.get()


def set_access_key_id(value: str) -> contextvars.Token:
    """Name the access key the current request acts with (audit rows record it)."""
    return _access_key_id.set(value)


def reset_access_key_id(token: contextvars.Token) -> None:
    _access_key_id.reset(token)


class TraceIdFilter(logging.Filter):
    """Adds %(trace_id)s to every log record so a request's lines can be found."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = _trace_id.get()
        return True
