"""The log panel's poll, and its shortcut for a session already let in to that log.

Every open log panel asks `/tasks/<id>/subtasks/<id>/log/?offset=N` every second, so with
a few hundred open tails this one request is most of the web server's work. Through the
whole stack it costs several milliseconds of CPU (the session, the user, the grants and
the subtask: four statements through the ORM, plus every middleware), while the answer
itself, the new text rendered, costs well under one.

So the view (`views.subtask_log`) remembers, in each web process, that a session was let
in to a subtask's log, together with what that decision rested on: the user, their
session epoch, and the access counter (`access.access_version`, read before the
decision), which any change to a user (a new password included) or to anyone's grants
moves. The middleware below answers that session's next polls of that log after one
statement (accounts.selectors.subtask_if_still_let_in) that reads the subtask and checks, in the database, that all of it still
holds: the session exists and has not expired, the user is active with the same epoch,
and the counter has not moved. When any of it fails (signed
out, deactivated, a role changed, the database down, a parameter refused), the request
goes through the whole view, which checks everything again and answers as always. Both
paths answer with the same function, `answer`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, ResolverMatch, resolve
from django_htmx.http import HttpResponseStopPolling

from taskcenter.accounts import selectors as account_selectors
from taskcenter.accounts.sessions import current_epoch
from taskcenter.core import params as parse
from taskcenter.core.errors import TaskCenterError
from taskcenter.dashboard import detail, presenters
from taskcenter.tasks import selectors
from taskcenter.tasks.models import SubtaskInstance

LOG_POLL_BYTES = 512 * 1024  # one poll sends at most this much; older output is skipped
VIEW_NAME = "dashboard:subtask_log"
DATABASE_SESSIONS = "django.contrib.sessions.backends.db"  # the statement reads its table
REMEMBERED_MAX = 20_000  # (session, log) pairs per process; beyond, all are forgotten
# What the answer reads of the subtask; the rest of the row is never loaded.
SUBTASK_FIELDS = ("id", "task_id", "status", "operation", "attempt", "log_size", "log_truncated")


def answer(request, subtask: SubtaskInstance) -> HttpResponse:
    """New log text from `offset` (of one `attempt` when given), appended by the page;
    `sgr` is the colour in force at `offset`. 204 while nothing is new; htmx's stop-polling
    status once the subtask (or that attempt) has finished."""
    offset = parse.integer(request.GET, "offset", minimum=0, default=0)
    attempt = parse.integer(request.GET, "attempt", minimum=0, maximum=subtask.attempt)
    style = parse.terminal_style(request.GET, "sgr")
    skipped = 0
    if subtask.log_size - offset > LOG_POLL_BYTES:
        # Far behind (a burst of output): skip to the last part instead of sending it all.
        skipped = subtask.log_size - LOG_POLL_BYTES - offset
        offset = subtask.log_size - LOG_POLL_BYTES
    piece = selectors.log_read(subtask=subtask, offset=offset, attempt=attempt)
    text = detail.from_next_line(piece.text) if skipped else piece.text
    log = detail.log_piece(text, piece.next_offset, finished=piece.finished, style=style)
    if not log["has_text"] and not piece.finished:
        return HttpResponse(status=204)
    quiet = parse.integer(request.GET, "quiet", minimum=0, maximum=subtask.attempt)
    context = {
        "subtask": subtask,
        "skipped": skipped,
        "log": {**log, "attempt": attempt, "quiet": None if log["has_text"] else quiet},
        "attempt_option": _first_output_option(subtask, quiet) if log["has_text"] else None,
        "subtask_label": presenters.subtask_label(subtask.status, subtask.operation),
    }
    # The piece needs nothing of the request (no CSRF token, no top bar), so it is rendered
    # without the context processors.
    body = render_to_string("dashboard/_log_chunk.html", context)
    return HttpResponseStopPolling(body) if piece.finished else HttpResponse(body)


def _first_output_option(subtask: SubtaskInstance, quiet: int | None) -> dict | None:
    """The picker's option of an attempt whose label said "no output", now that it wrote
    (once per attempt: the next poll no longer names it quiet)."""
    if quiet is None:
        return None
    ranges = selectors.log_attempt_ranges(subtask=subtask)
    chosen = next((r for r in ranges if r.attempt == quiet), None)
    if chosen is None:
        return None
    label = presenters.attempt_label(chosen, latest=chosen is ranges[-1])
    return {"number": chosen.attempt, "label": label, "chosen": True}


# --- Remembered decisions ------------------------------------------------------------------


@dataclass(frozen=True)
class _LetIn:
    """What letting a session in to a log rested on; all of it is checked again per poll."""

    user_id: int
    epoch: int
    access_version: int


_let_in: dict[tuple[str, int, int], _LetIn] = {}


def remember(request, subtask: SubtaskInstance, *, access_version: int) -> None:
    """Called by the view once `request.user` may read `subtask`'s log; `access_version` is
    the counter read before that decision was taken."""
    user, session = request.user, request.session
    if settings.SESSION_ENGINE != DATABASE_SESSIONS or not session.session_key:
        return
    if session.get(SESSION_KEY) != str(user.pk):
        return  # not signed in through this session
    if len(_let_in) >= REMEMBERED_MAX:
        _let_in.clear()
    key = (session.session_key, subtask.task_id, subtask.pk)
    _let_in[key] = _LetIn(user.pk, current_epoch(user), access_version)


def forget_all() -> None:
    """Forget every remembered decision of this process (tests start from none)."""
    _let_in.clear()


def _shortcut(request) -> HttpResponse | None:
    """The answer for a remembered session whose decision still holds, else None."""
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    match = _log_route(request.path_info)
    if match is None:
        return None
    key = (session_key, match.kwargs["task_id"], match.kwargs["subtask_id"])
    let_in = _let_in.get(key)
    if let_in is None:
        return None
    session_key, task_id, subtask_id = key
    # The statement below is the connection's health check: Django's own (a SELECT 1
    # before a request's first statement on a kept connection) would be one round trip
    # more per poll. When the statement fails, the connection is closed, and the view
    # answers on a new one.
    connection.health_check_done = True  # type: ignore[attr-defined]  # not in the stubs
    try:
        subtask = account_selectors.subtask_if_still_let_in(
            subtask_id=subtask_id,
            task_id=task_id,
            session_key=session_key,
            user_id=let_in.user_id,
            epoch=let_in.epoch,
            access_version=let_in.access_version,
            fields=SUBTASK_FIELDS,
        )
        if subtask is None:
            _let_in.pop(key, None)  # the view decides again, and may remember again
            return None
        request.resolver_match = match  # the request metrics name the view
        return answer(request, subtask)
    except DatabaseError:
        if not connection.in_atomic_block:
            connection.close()  # broken, say after a database restart: the view opens another
        return None
    except TaskCenterError:
        return None  # the view says what is wrong, as for any other request


@functools.lru_cache(maxsize=4096)
def _log_route(path: str) -> ResolverMatch | None:
    """The URL's match when `path` is a log poll's, else None. Remembered per path (a tail
    polls the same path every second), so the URL patterns are not walked each time."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match if match.view_name == VIEW_NAME else None


class LogPollShortcutMiddleware:
    """Answers a remembered session's log polls before the session, user and grants are
    loaded (module docstring). Sits after the security headers and static files, before
    the session middleware."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = settings.SESSION_ENGINE == DATABASE_SESSIONS

    def __call__(self, request):
        if self.enabled and request.method == "GET" and request.path_info.endswith("/log/"):
            response = _shortcut(request)
            if response is not None:
                return response
        return self.get_response(request)
