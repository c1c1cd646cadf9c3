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
from django.template.defaultfilters import filesizeformat, urlencode
from django.template.loader import render_to_string
from django.urls import Resolver404, ResolverMatch, resolve, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
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
    log = {**log, "attempt": attempt, "quiet": None if log["has_text"] else quiet}
    option = _first_output_option(subtask, quiet) if log["has_text"] else None
    # Written out here rather than through a template: every open log panel asks for this
    # every second, and the template engine took a quarter of the answer's CPU. The page's
    # panel renders the poller and the state line through these same functions
    # (templatetags/log_panel.py).
    parts = []
    if skipped:
        parts.append(
            format_html(
                '<span class="log-chunk log-skip">[… {} of output skipped here; download the'
                " whole log to read it …]\n</span>",
                filesizeformat(skipped),
            )
        )
    if log["has_text"]:
        parts.append(format_html('<span class="log-chunk">{}</span>', log["html"]))
    parts.append(poller_html(subtask, log, oob=True))
    if option is not None:
        parts.append(
            render_to_string("dashboard/_log_attempt_option.html", {"a": option, "oob": True})
        )
    label = presenters.subtask_label(subtask.status, subtask.operation)
    parts.append(state_html(subtask, log, label, oob=True))
    body = "".join(parts)
    return HttpResponseStopPolling(body) if piece.finished else HttpResponse(body)


def poller_html(subtask: SubtaskInstance, log: dict, *, oob: bool = False) -> SafeString:
    """The hidden element that polls for the log's next piece (nothing once it ended); the
    only element of an answer htmx does not append (hx-select keeps the pieces alone)."""
    swap = ' hx-swap-oob="true"' if oob else ""
    if log["finished"]:
        return mark_safe(f'<div id="log-poller" hidden{swap}></div>')  # noqa: S308 - constant
    url = reverse(VIEW_NAME, args=[subtask.task_id, subtask.pk])
    query = f"?offset={int(log['next_offset'])}"
    if log.get("attempt") is not None:
        query += f"&attempt={int(log['attempt'])}"
    if log.get("quiet") is not None:
        query += f"&quiet={int(log['quiet'])}"
    if log.get("style"):
        query += f"&sgr={urlencode(log['style'])}"
    return format_html(
        '<div id="log-poller" hidden{} hx-get="{}" hx-trigger="every 1s, visibilitychange'
        ' from:document" hx-target="#log-text" hx-swap="beforeend" hx-select=".log-chunk">'
        "</div>",
        mark_safe(swap),  # noqa: S308 - constant
        url + query,
    )


def state_html(subtask: SubtaskInstance, log: dict, label: str, *, oob: bool = False) -> SafeString:
    """The panel's state line: live, an earlier attempt that ended, or the subtask's state."""
    swap = mark_safe(' hx-swap-oob="true"' if oob else "")  # noqa: S308 - constant
    if not log["finished"]:
        return format_html(
            '<span id="log-state" class="log-state is-live"{}><span class="live-dot"'
            ' aria-hidden="true"></span>Live · following</span>',
            swap,
        )
    attempt = log.get("attempt")
    words = (
        "An earlier attempt · ended"
        if attempt is not None and attempt != subtask.attempt
        else f"{label} · not running"
    )
    return format_html('<span id="log-state" class="log-state"{}>{}</span>', swap, words)


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
