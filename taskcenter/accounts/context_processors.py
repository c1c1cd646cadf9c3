"""What every page needs to know of the signed-in user's own settings."""

from __future__ import annotations


def preferences(request) -> dict:
    """The zone the user chose ("" = the browser's), read by the time zone middleware."""
    return {"user_time_zone": getattr(request, "chosen_time_zone", "")}
