"""Per-request trace id: made here, put on log lines and responses; the caller's own id
(checked by taskcenter.core.text_input) is kept beside it.

The id is what the API envelope reports as `traceId`, what audit rows record, and what
every log line printed while the request runs carries (LOGGING's %(trace_id)s), so one id
finds a request's lines in the server log.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from taskcenter.core.trace import (
    new_trace_id,
    reset_access_key_id,
    reset_trace_id,
    set_access_key_id,
    set_trace_id,
)

logger = logging.getLogger("taskcenter.request")


class TraceIdMiddleware:
    """Outermost middleware: sets the trace id and the start time, logs one line per API call."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Always the server's own: a caller's id (checked by core.text_input) is kept beside
        # it, never in its place, so no caller can make two requests share an id.
        trace_id = new_trace_id()
        token = set_trace_id(trace_id)
        key_token = set_access_key_id("")  # a signed request's authentication names its key
        request.trace_id = trace_id
        request.started_at = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Trace-Id"] = trace_id
            caller = getattr(request, "caller_trace_id", "")
            if caller:
                response["X-Caller-Trace-Id"] = caller
            elapsed_ms = (time.monotonic() - request.started_at) * 1000
            # API calls are what operators trace; pages and static files would be noise.
            level = logging.INFO if request.path.startswith("/api/") else logging.DEBUG
            if response.status_code >= 500:
                level = logging.ERROR
            elif response.status_code >= 400:
                level = logging.WARNING
            # Django would log 4xx/5xx again after the middleware, where the trace id is
            # already gone; this line says the same with the id.
            response._has_been_logged = True
            user = getattr(request, "user", None)
            logger.log(
                level,
                "%s %s -> %s in %.0f ms (user %s, caller trace %s)",
                request.method,
                request.get_full_path(),
                response.status_code,
                elapsed_ms,
                user.get_username() if user is not None and user.is_authenticated else "-",
                caller or "-",
            )
            return response
        finally:
            reset_access_key_id(key_token)
            reset_trace_id(token)


DATABASE_DOWN_MESSAGE = (
    "The database does not answer at the moment, so this page cannot be shown. "
    "Nothing is lost: try again in a few seconds."
)


def database_unavailable_response(request) -> HttpResponse:
    """A plain 503 that needs no database (no template context, no session, no user).

    Under /api/ the envelope middleware (outside this one) turns it into an error envelope.
    """
    response = HttpResponse(
        "<!doctype html><meta charset=utf-8><title>Service unavailable</title>"
        f"<h1>Service unavailable</h1><p>{DATABASE_DOWN_MESSAGE}</p>",
        status=503,
        content_type="text/html; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response


# SQLSTATEs of a server that is not there: connection exceptions (class 08) and a server
# shutting down or starting up (57P01-57P03). A deadlock or a lock timeout is also an
# OperationalError, but the database answered: that is not "unavailable".
_GONE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")


def is_database_unavailable(exception: BaseException | None) -> bool:
    if isinstance(exception, InterfaceError):
        return True
    if not isinstance(exception, OperationalError):
        return False
    sqlstate = getattr(exception.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_GONE_SQLSTATE_PREFIXES)


class DatabaseUnavailableMiddleware:
    """A view that fails because the database is down answers 503, not a 500 traceback.

    Errors raised by other middleware reach `taskcenter.urls.server_error` (handler500),
    which answers the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_unavailable(exception):
            return None
        logger.error("database unavailable on %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response(request)


class ContentSecurityPolicyMiddleware:
    """Every answer carries settings.TASKCENTER_CONTENT_SECURITY_POLICY (unless a view set
    its own): scripts and style sheets from this site only, never inline script, so an
    injected `<script>` or `onclick=` does not run."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.TASKCENTER_CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


class ReleaseApiResponseMiddleware:
    """An API response, and all it holds, freed as soon as the server has sent it.

    DRF ties a response into reference cycles: its view refers to it (`view.response`),
    and rendering puts the response into its own `renderer_context`. So a response
    outlived its request until the garbage collector's next full pass, and so did its
    data: a task of 1,000 subtasks is 3,000 dicts and lists, a page of 2,000 tasks ten
    times that. Each full pass then walked them, 12 to 16 ms landing on whichever request
    was running (the slowest tenth of the detail's answers). The server closes every
    response once sent; cutting both links then lets reference counting free it at once.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(response, "renderer_context", None) is not None:
            # Run by response.close(), which then clears its closers: no cycle is left.
            response._resource_closers.append(lambda: _release(response))
        return response


def _release(response) -> None:
    view = response.renderer_context.get("view")
    if getattr(view, "response", None) is response:
        view.response = None
    response.renderer_context = None
