"""Program output made safe to show on a page: the HTML renderer of the one parser of
escape sequences (taskcenter.client.terminal, Django-free and shared with the command-line
client). Colours become styles on the page; nothing here ever lets a log's bytes reach a
browser as markup.
"""

from __future__ import annotations

import html

from django.utils.safestring import SafeString, mark_safe

from taskcenter.client.terminal import (  # noqa: F401 - the parser's names, re-exported
    _TOKEN,
    INCOMPLETE_MAX,
    PLAIN,
    Style,
    _codes,
    _visible,
    incomplete_tail,
    plain,
    render_ansi,
)


def render_html(text: str, style: Style = PLAIN) -> tuple[SafeString, Style]:
    """`text` as escaped HTML with its colours as styled spans, and the style at its end."""
    out: list[str] = []

    def emit(segment: str) -> None:
        if not segment:
            return
        escaped = html.escape(segment, quote=False)
        classes = style.classes()
        out.append(f'<span class="{classes}">{escaped}</span>' if classes else escaped)

    position = 0
    for match in _TOKEN.finditer(text):
        emit(text[position : match.start()])
        position = match.end()
        if match["csi"] is not None:
            if match["final"] == "m":
                style = style.apply(_codes(match["params"]))
        elif match["crlf"] is not None:
            emit("\n")
        elif match["ctl"] is not None:
            char = match["ctl"]
            out.append(
                f'<span class="ctl" title="control character {ord(char):#04x}">'
                f"{_visible(char)}</span>"
            )
    emit(text[position:])
    return mark_safe("".join(out)), style  # noqa: S308 - every segment is escaped above
