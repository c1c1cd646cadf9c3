"""The API's JSON: DRF's JSONRenderer's bytes, written by orjson.

A task's detail of 1,000 subtasks is 480 kB of JSON, and a list page of 2,000 tasks
2.4 MB: the standard library's encoder spent 6 ms on the first (a quarter of the answer)
and tens of ms on the second, orjson a tenth of that. The bytes must stay DRF's (clients
parse them, tests compare them): compact, UTF-8, U+2028 and U+2029 escaped, and whatever
orjson does not write the same way (datetimes, Decimals, lazy texts, sets) goes through
DRF's own encoder. Floats are the same numbers, spelled alike except in exponent notation
(1e-7 where the standard library writes 1e-07). NaN, which DRF refuses, would be null, but
no value the API sends can be NaN (PostgreSQL's JSON has none). A published orjson
renderer package writes datetimes orjson's way, so this is one small subclass instead.
"""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer

# Non-text keys written as json does (str(key)); datetimes handed to DRF's encoder, which
# writes them with milliseconds and "Z" where orjson would write microseconds.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_LINE_SEPARATORS = (("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if indent is not None or self.ensure_ascii or not self.compact:
            # Pretty-printed or ASCII-only JSON, as asked: DRF's own, rarely.
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # What orjson refuses (an integer past 64 bits, say): DRF's answer, or its error.
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in rendered:
                rendered = rendered.replace(raw, escaped)
        return rendered
