"""What every page needs to know of the signed-in user's own settings."""

from __future__ import annotations

from taskcenter.accounts import selectors


def preferences(request) -> dict:
    """The user's chosen time zone ("" = the browser's). Read only when a template asks
    (base.html does; the htmx fragments, polled every second or two, do not)."""
    user = getattr(request, "user", None)
    return {"user_time_zone": lambda: selectors.time_zone_of(user=user)}
