"""Input is text, not bytes: one check of everything a request carries, before any view.

A NUL character or a lone surrogate (U+D800 to U+DFFF alone, which JSON's "\\ud800" escape
makes) is refused with a 400 that names where it was: the path, a query or form parameter
(its name or value), a header, the user name or password of HTTP Basic credentials, a
cookie, or a field of a JSON body (`jobParams.size`, `dependencies[0].entityGroup`). No
database stores them (PostgreSQL refuses NUL in text, and UTF-8 has no surrogates), so a
value that holds one would otherwise be a 500 wherever it first reaches a query.

TextInputMiddleware runs before the session, the user and every view, so even a sign-in
with such a user name is refused before the database is asked anything. Its refusal is a
plain 400 carrying `refused_parameter` (name, message), which the API's error middleware
turns into the API's envelope naming the parameter.

It also checks the caller's trace id (X-Trace-Id, traceId or X-Request-Id): letters,
digits, `.`, `_` and `-`, at most 64 characters; the one that passes is kept beside the
server's own (`request.caller_trace_id`, audit rows' caller trace id).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterator

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse

from taskcenter.core.trace import reset_caller_trace_id, set_caller_trace_id

# A lone surrogate, or NUL.
_BAD = re.compile("[\x00\ud800-\udfff]")
# In a JSON text: a raw NUL, an escaped NUL or an escaped surrogate. A match only means
# "look closer" (the escape may itself be escaped); the parsed value decides.
_BAD_JSON_ESCAPE = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

CALLER_TRACE_HEADERS = ("X-Trace-Id", "traceId", "X-Request-Id")
CALLER_TRACE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
JSON_FIELD_MAX = 100  # a refused field's name is cut to this many characters


def why_bad(value: str) -> str | None:
    """Why `value` is not text a database can keep, or None when it is."""
    found = _BAD.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character."
    return "contains a lone surrogate (an unpaired \\ud800-\\udfff), which is not text."


class Refused(Exception):
    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def shown(name: str) -> str:
    """A field's name as a refusal shows it: a bad key is part of its own path, so its bad
    characters are written as escapes."""
    return _BAD.sub(lambda found: f"\\u{ord(found.group()):04x}", name)


def _check(value: str, name: str) -> None:
    reason = why_bad(value)
    if reason is not None:
        raise Refused(name, reason)


def _check_pairs(pairs, where: str) -> None:
    for name, values in pairs:
        _check(name, f"{where} parameter name {shown(name)}")
        for value in values:
            _check(value, name)


def _basic_credentials(header: str) -> None:
    """The user name and password inside HTTP Basic credentials (decoded as DRF does)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return  # malformed: the authentication refuses it with its own words
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    username, _, password = text.partition(":")
    _check(username, "Authorization (user name)")
    _check(password, "Authorization (password)")


def json_strings(value, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a parsed JSON value (object keys included) with where it is."""
    if isinstance(value, str):
        yield path or "body", value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key)
            yield from json_strings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_strings(item, f"{path}[{index}]")


def _json_body(body: bytes) -> None:
    if not _BAD_JSON_ESCAPE.search(body):
        return
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return  # not JSON: the parser refuses it with its own words
    for where, value in json_strings(parsed):
        _check(value, shown(where)[:JSON_FIELD_MAX])


def check_request(request) -> None:
    """Raise Refused for the first NUL or lone surrogate anywhere in `request`."""
    _check(request.path_info, "path")
    _check_pairs(request.GET.lists(), "query")
    for name, value in request.headers.items():
        _check(value, name)
    _basic_credentials(request.headers.get("Authorization", ""))
    for name, value in request.COOKIES.items():
        _check(name, f"cookie name {shown(name)}")
        _check(value, f"cookie {shown(name)}")
    content_type = request.content_type or ""
    try:
        if content_type == "application/x-www-form-urlencoded" or (
            content_type == "multipart/form-data" and not request.path_info.startswith("/api/")
        ):
            _check_pairs(request.POST.lists(), "form")
        elif content_type == "application/json" or content_type.endswith("+json"):
            _json_body(request.body)
    except (RequestDataTooBig, SuspiciousOperation):
        return  # too large or too many fields: refused later, where that is answered


def caller_trace_id(request) -> str:
    """The caller's own trace id ("" when none was sent), or Refused when it is not one."""
    for name in CALLER_TRACE_HEADERS:
        value = request.headers.get(name)
        if value is None:
            continue
        if not CALLER_TRACE_ID.fullmatch(value):
            raise Refused(
                name,
                "is not a trace id: use 1 to 64 letters, digits, '.', '_' or '-'.",
            )
        return value
    return ""


def refusal_response(refused: Refused) -> HttpResponse:
    """A plain 400 that needs no database; under /api/ it becomes the API's envelope."""
    name, message = html.escape(refused.parameter), html.escape(refused.message)
    response = HttpResponse(
        "<!doctype html><meta charset=utf-8><title>Bad request</title>"
        f"<h1>That request could not be understood</h1><p>Invalid parameter '{name}': "
        f"{message}</p>",
        status=400,
        content_type="text/html; charset=utf-8",
    )
    response.refused_parameter = (refused.parameter, refused.message)  # type: ignore[attr-defined]
    return response


class TextInputMiddleware:
    """Refuses a request holding a NUL or a lone surrogate, or a malformed caller trace id,
    before the session, the user or any view reads it (module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            check_request(request)
            request.caller_trace_id = caller_trace_id(request)
        except Refused as refused:
            request.caller_trace_id = ""
            return refusal_response(refused)
        token = set_caller_trace_id(request.caller_trace_id)
        try:
            return self.get_response(request)
        finally:
            reset_caller_trace_id(token)
