"""The API's JSON parser: DRF's, with the body's size and nesting depth bounded.

Python's json module recurses once per nesting level: a body of 100,000 nested arrays
(200 KB) ends in a RecursionError, a 500. Bodies here are small flat objects (a reason, a
plan), so anything deeper than MAX_DEPTH or larger than DATA_UPLOAD_MAX_MEMORY_SIZE is
refused as a 400 (a 413 for size) before it is decoded.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32

# A JSON string (with its escapes), and a bracket outside one.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (brackets inside strings not counted);
    a loop, not recursion, so any depth is measured safely."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            body = b""
        else:
            body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"The JSON body is not valid {encoding}.") from None
        if nesting_depth(text) > MAX_DEPTH:
            raise ParseError(f"The JSON body nests deeper than {MAX_DEPTH} levels.")
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str):
    # NaN and Infinity are not JSON (DRF's strict mode refuses them too).
    raise ValueError(f"{name} is not valid JSON.")
