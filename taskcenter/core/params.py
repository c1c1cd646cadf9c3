"""Reading request parameters: ids, integers, id lists, pages and choices.

The API, the pages and the list filters all parse through here, so that one input is
accepted or refused the same way everywhere, with the same words. Every refusal is an
InvalidParameter that names the parameter (`.parameter`), which the API reports as its
error's `target` and the pages show as a clear 400.

An integer is an optional minus sign and 1 to 19 ASCII digits (what a 64-bit column
holds), nothing around them: " 5", "+5", "1_000", "1.0", "1e3" and the full-width "１" are
refused. (Python's `\\d`, `int()` and `str.strip()` all accept more than that: Unicode digits
and blanks, so the pattern spells [0-9] and nothing is stripped.) A date-time is ISO 8601
within the years 1 to 9999 in every time zone; a text is at most TEXT_MAX characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import overload

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from taskcenter.core.errors import InvalidParameter
from taskcenter.core.terminal import Style

INT64_MAX = 2**63 - 1
PAGE_MAX = 10**9
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 2000

# Longest text a filter accepts: names and keywords are far shorter, and a 60,000-character
# LIKE pattern is more than SQLite's pattern limit (a 500).
TEXT_MAX = 1000

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_ID = re.compile(r"[0-9]{1,19}")


def integer_value(raw, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`raw` (a parameter's text) as an integer within [minimum, maximum]."""
    text = str(raw)
    if not _INTEGER.fullmatch(text):
        raise InvalidParameter.because(name, f"'{raw}' is not an integer.")
    value = int(text)
    if maximum is not None:
        low = minimum if minimum is not None else -INT64_MAX - 1
        if not low <= value <= maximum:
            raise InvalidParameter.because(name, f"{value} is out of range ({low} to {maximum}).")
    elif minimum is not None and value < minimum:
        raise InvalidParameter.because(name, f"{value} is below {minimum}.")
    return value


@overload
def integer(
    params: Mapping,
    name: str,
    *,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int: ...


@overload
def integer(
    params: Mapping,
    name: str,
    *,
    default: None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None: ...


def integer(
    params: Mapping,
    name: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """The integer parameter `name` of `params` (a QueryDict), or `default` when absent or
    empty; given twice (offset=1&offset=2) it is refused, not read as its last value."""
    getlist = getattr(params, "getlist", None)
    if getlist is not None and len(getlist(name)) > 1:
        raise InvalidParameter.because(name, "is given more than once; give it once.")
    raw = params.get(name)
    if raw in (None, ""):
        return default
    return integer_value(raw, name, minimum=minimum, maximum=maximum)


def looks_like_identifier(text: str) -> bool:
    """Whether `text` is a row id: ASCII digits only (str.isdigit() also takes "１" and
    "٣", which int() reads as 1 and 3), within a 64-bit column's range."""
    return bool(_ID.fullmatch(text)) and 1 <= int(text) <= INT64_MAX


def identifier(value, name: str) -> int:
    """A row id (from a URL path or a parameter): a positive integer of at most 64 bits."""
    text = str(value)
    if not _ID.fullmatch(text) or not 1 <= int(text) <= INT64_MAX:
        raise InvalidParameter.because(name, f"'{value}' is not a positive 64-bit integer id.")
    return int(text)


def text(value, name: str, *, maximum: int = TEXT_MAX) -> str:
    """A text parameter of at most `maximum` characters."""
    value = str(value)
    if len(value) > maximum:
        raise InvalidParameter.because(
            name, f"is {len(value)} characters long; at most {maximum} are accepted."
        )
    return value


def date_time(value, name: str) -> datetime:
    """An ISO 8601 date-time (a date alone is its midnight), in the current time zone when it
    names none; refused when it, or it in UTC, is outside the years 1 to 9999."""
    try:
        parsed = parse_datetime(str(value))
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidParameter.because(
            name, f"'{value}' is not an ISO 8601 date-time (e.g. 2024-05-01T10:00:00+08:00)."
        )
    try:
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        # In UTC, what the database compares: it must exist too, and PostgreSQL refuses an
        # offset beyond 15:59 that ISO 8601 (and Python) allow, such as -20:04.
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidParameter.because(name, f"'{value}' is out of range.") from None


def integer_list(params: Mapping, name: str, *, limit: int) -> list[int]:
    """A comma-separated list of ids (empty parts and spaces around commas are skipped); the
    first `limit` of them."""
    raw = params.get(name) or ""
    parts = [part.strip(" ") for part in raw.split(",") if part.strip(" ")]
    if not all(_ID.fullmatch(part) and 1 <= int(part) <= INT64_MAX for part in parts):
        raise InvalidParameter.because(
            name, f"'{raw[:100]}' is not a list of positive 64-bit integer ids."
        )
    return [int(part) for part in parts][:limit]


def choice(params: Mapping, name: str, choices: Iterable[str], *, default: str) -> str:
    """One of `choices`; `default` when absent or empty."""
    value = params.get(name) or default
    options = tuple(choices)
    if value not in options:
        raise InvalidParameter.because(name, f"'{value}' (use {' or '.join(options)}).")
    return value


def terminal_style(params: Mapping, name: str) -> Style:
    """The colour in force at a log reader's cursor, as SGR parameters (core.terminal)."""
    raw = params.get(name) or ""
    try:
        return Style.decode(raw)
    except ValueError as exc:
        raise InvalidParameter.because(name, f"'{raw[:100]}': {exc}.") from None


def page(params: Mapping, *, default_size: int = DEFAULT_PAGE_SIZE) -> tuple[int, int]:
    """OCP paging: `page` is 1-based, `size` defaults to `default_size`, at most 2000."""
    number = integer(params, "page", default=1, minimum=1, maximum=PAGE_MAX)
    size = integer(params, "size", default=default_size, minimum=1, maximum=MAX_PAGE_SIZE)
    return number, size


def page_or_first(params: Mapping) -> int:
    """The page number of a page that never refuses one (the account audit): a number it
    cannot read counts as the first page."""
    try:
        number = integer(params, "page", default=1)
    except InvalidParameter:
        return 1
    return max(1, number)


def without_nul(params):
    """`params`, refused whole when a name or value holds a NUL (no database takes it): for
    a query string carried inside a request (a form field, a JSON body), which
    core.text_input saw only encoded."""
    for name, values in params.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise InvalidParameter.because(name, "contains a NUL character.")
    return params


def single_valued(params, *, repeatable: Iterable[str] = ()):
    """`params`, refused whole when a parameter that takes one value is given more than
    once (limit=1&limit=2): read as its last value it would accept what the API's schema
    does not. `repeatable`: those that take several (status=A&status=B). (A NUL was refused
    before the view, by core.text_input.)"""
    several = set(repeatable)
    for name, values in params.lists():
        if len(values) > 1 and name not in several:
            raise InvalidParameter.because(name, "is given more than once; give it once.")
    return params
