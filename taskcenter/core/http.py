"""The HTML pages' shared HTTP plumbing: the signed-in guard, full pages with the top bar,
error answers, flash messages for htmx, live polling and downloads.

The dashboard and the account pages both build on this module (neither imports the
other's views); the API uses its diagnosis download too. htmx headers and status codes
come from django-htmx's helpers.

Like the rest of taskcenter.core it imports no other taskcenter package: what the top bar
shows comes from the dashboard's context processor (taskcenter.dashboard.context_processors).
"""

from __future__ import annotations

import math
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import (
    HttpResponseClientRedirect,
    push_url,
    reswap,
    retarget,
)

from taskcenter.core.errors import TaskCenterError

ERROR_TITLES = {
    400: "That request could not be understood",
    403: "You do not have permission",
    404: "Not found",
    405: "Method not allowed",
}


# --- The guard --------------------------------------------------------------------------------


def signed_in_view(require=None):
    """Signed-in users only, and `require(user)` (an access helper) when given; domain
    errors (TaskNotFound, NotPermitted, InvalidParameter, ...) become clear answers."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return _sign_in_first(request)
            try:
                if require is not None:
                    require(request.user)
                return view(request, *args, **kwargs)
            except TaskCenterError as exc:
                return error_response(request, exc.http_status, exc.message)

        return wrapper

    return decorate


def _sign_in_first(request) -> HttpResponse:
    if not request.htmx:
        return redirect_to_login(request.get_full_path())
    # A background request cannot show a sign-in page; send the browser there, back to
    # the page it was on.
    back = request.htmx.current_url_abs_path or request.get_full_path()
    login = f"{reverse('dashboard:login')}?{urlencode({'next': back})}"
    return HttpResponseClientRedirect(login, status=401)


def is_partial(request, target: str | None = None) -> bool:
    """An htmx request that wants a fragment (not a history restore, not a boosted page)."""
    htmx = request.htmx
    if not htmx or htmx.history_restore_request or htmx.boosted:
        return False
    return target is None or htmx.target == target


# --- Pages and errors ---------------------------------------------------------------------------


def page(request, template: str, context: dict, status: int = 200) -> HttpResponse:
    """A full page (the top bar's context comes from the context processors)."""
    # The zone the page's times are in: the reader's when a middleware activated it.
    zone = timezone.get_current_timezone_name()
    return render(request, template, {**context, "time_zone": zone}, status=status)


def error_response(request, status: int, message: str) -> HttpResponse:
    """A refusal: a flash message for htmx, else the error page."""
    if request.htmx and not request.htmx.history_restore_request:
        return flash_fragment(request, {"level": "error", "message": message}, status=status)
    context = {
        "status": status,
        "title": ERROR_TITLES.get(status, "Something went wrong"),
        "message": message,
    }
    return page(request, "dashboard/error.html", context, status=status)


def flash_fragment(request, flash: dict, status: int = 200) -> HttpResponse:
    """The flash message area's new content, whatever element the request targeted."""
    response = render(request, "dashboard/_flash.html", {"flash": flash}, status=status)
    return reswap(retarget(response, "#flash"), "innerHTML")


# --- Lists, live parts and downloads -----------------------------------------------------------


def clean_query(params: QueryDict, drop: tuple[str, ...] = ()) -> str:
    """The query string without empty values: what a shared link should look like."""
    pairs = [
        (key, value)
        for key in params
        if key not in drop
        for value in params.getlist(key)
        if value.strip()
    ]
    return urlencode(pairs)


def results_fragment(request, template: str, context: dict, *, url_name: str, status: int):
    """A filtered list's results, with the address bar showing the clean filtered URL."""
    response = render(request, template, context, status=status)
    query = clean_query(request.GET)
    return push_url(response, reverse(url_name) + (f"?{query}" if query else ""))


def paging(*, page_no: int, size: int, rows: list, total: int) -> dict:
    """The pagination fields that the list and audit templates share."""
    return {
        "page_no": page_no,
        "pages": max(1, math.ceil(total / size)) if total else 1,
        "size": size,
        "first_row": (page_no - 1) * size + 1 if rows else 0,
        "last_row": (page_no - 1) * size + len(rows),
        "past_end": bool(total) and not rows,
    }
