"""The pages in the reader's time zone.

The zone is the one the user chose on the account page, else the browser's (the page's
script keeps it in the `tz` cookie), else the server's TIME_ZONE. Activating it makes the
server write times in that zone and read a time typed without a zone (the list's "Created
from" field) in it, as the page's script shows them. The API is left alone: its answers
and its parameters without a zone stay in the server's TIME_ZONE, whoever calls.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from urllib.parse import unquote

from django.utils import timezone

from taskcenter.accounts import selectors

ZONE_COOKIE = "tz"
API_PREFIX = "/api/"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def reader_zone(request) -> str:
    """The zone name for this request's pages, or "" for the server's."""
    user = getattr(request, "user", None)
    chosen = selectors.time_zone_of(user=user) if user is not None else ""
    request.chosen_time_zone = chosen  # the page tells its script (context_processors)
    if chosen:
        return chosen
    # The script writes the cookie URL-encoded ("Asia%2FShanghai", as browsers keep it);
    # a value written plainly decodes to itself.
    browser = unquote(request.COOKIES.get(ZONE_COOKIE, ""))
    return browser if browser in _known_zones() else ""


class ReaderTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        zone = reader_zone(request)
        if zone:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
