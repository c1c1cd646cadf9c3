"""Program output made safe for a terminal: the one parser of escape sequences, shared by
the server (taskcenter.core.terminal renders it as HTML) and the command-line client.

Subtask logs are what programs printed, so they hold terminal escape sequences. ANSI
colours (SGR: ESC [ ... m) are kept as styles; every other escape sequence (cursor moves,
screen clears, window titles, OSC 52 clipboard writes) is dropped, since it is an
instruction to a terminal, not text; any other control character but tab and newline is
shown as a visible \\xNN escape. CR LF counts as a newline.

A log is read piece by piece, so a colour set in one piece goes on in the next: the
renderers take the style in force at their start and return the one in force at their
end, and `incomplete_tail` tells a reader how much of a piece's end is the beginning of a
sequence whose rest has not been written yet (to be read again with the next piece).

This module imports nothing of Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_TOKEN = re.compile(
    r"(?P<csi>\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~]))"
    r"|(?P<osc>\x1b\][^\x07\x1b]*(?:\x07|\x1b\\))"
    # Other escape sequences: ESC, intermediates, a final byte other than [ and ].
    r"|(?P<esc>\x1b[ -/]*[0-Z\\^-~])"
    r"|(?P<crlf>\r\n)"
    r"|(?P<ctl>[\x00-\x08\x0b-\x1f\x7f-\x9f])"
)
# The start of a sequence at the very end of a piece: its rest may come with the next one.
_INCOMPLETE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)\Z|\r\Z")
INCOMPLETE_MAX = 256  # longer than this, an unfinished sequence is shown as it is

# SGR codes: 30-37 and 90-97 set the foreground, 40-47 and 100-107 the background.
_FOREGROUND = frozenset(range(30, 38)) | frozenset(range(90, 98))
_BACKGROUND = frozenset(range(40, 48)) | frozenset(range(100, 108))
_STYLE_MAX = 40  # characters of an encoded style (poll cursors)


@dataclass(frozen=True)
class Style:
    """The SGR attributes in force: colours by their SGR code, and the flags."""

    fg: int | None = None
    bg: int | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def apply(self, codes: list[int]) -> Style:
        """This style after the SGR parameters `codes` (empty = reset)."""
        style = self
        i = 0
        codes = codes or [0]
        while i < len(codes):
            code = codes[i]
            if code == 0:
                style = Style()
            elif code == 1:
                style = replace(style, bold=True)
            elif code == 2:
                style = replace(style, dim=True)
            elif code == 3:
                style = replace(style, italic=True)
            elif code == 4:
                style = replace(style, underline=True)
            elif code == 22:
                style = replace(style, bold=False, dim=False)
            elif code == 23:
                style = replace(style, italic=False)
            elif code == 24:
                style = replace(style, underline=False)
            elif code in _FOREGROUND:
                style = replace(style, fg=code)
            elif code == 39:
                style = replace(style, fg=None)
            elif code in _BACKGROUND:
                style = replace(style, bg=code)
            elif code == 49:
                style = replace(style, bg=None)
            elif code in (38, 48):
                # 256-colour and true-colour forms are not drawn: skip their arguments.
                kind = codes[i + 1] if i + 1 < len(codes) else None
                i += 2 if kind == 5 else 4 if kind == 2 else 1
            i += 1
        return style

    def classes(self) -> str:
        """The page's CSS classes of this style ("" for plain text)."""
        names = []
        if self.fg is not None:
            names.append(f"sgr-{self.fg}")
        if self.bg is not None:
            names.append(f"sgr-{self.bg}")
        names += [
            name
            for name, on in (
                ("sgr-bold", self.bold),
                ("sgr-dim", self.dim),
                ("sgr-italic", self.italic),
                ("sgr-underline", self.underline),
            )
            if on
        ]
        return " ".join(names)

    def encode(self) -> str:
        """This style as SGR parameters ("" for plain): a reader's cursor carries it."""
        codes = [
            code
            for code, on in ((1, self.bold), (2, self.dim), (3, self.italic), (4, self.underline))
            if on
        ]
        codes += [c for c in (self.fg, self.bg) if c is not None]
        return ";".join(str(c) for c in codes)

    @classmethod
    def decode(cls, value: str) -> Style:
        """The style that `encode` wrote; ValueError for anything else."""
        if not value:
            return cls()
        if len(value) > _STYLE_MAX or not re.fullmatch(r"\d{1,3}(;\d{1,3})*", value):
            raise ValueError("expected SGR parameters such as 1;31")
        return cls().apply([int(code) for code in value.split(";")])


PLAIN = Style()


def _codes(params: str) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []


def _visible(char: str) -> str:
    return f"\\x{ord(char):02x}"


def plain(text: str) -> str:
    """`text` for a terminal: colours and other escape sequences removed, any other control
    character but tab and newline shown as a visible \\xNN escape."""

    def one(match: re.Match) -> str:
        if match["crlf"] is not None:
            return "\n"
        if match["ctl"] is not None:
            return _visible(match["ctl"])
        return ""

    return _TOKEN.sub(one, text)


def incomplete_tail(text: str) -> int:
    """How many characters at the end of `text` start a sequence not yet complete (an
    escape sequence, or a CR that may be the start of CR LF); 0 when none."""
    match = _INCOMPLETE.search(text[-INCOMPLETE_MAX:])
    return len(match.group()) if match else 0


def render_ansi(text: str, style: Style = PLAIN) -> tuple[str, Style]:
    """`text` for a colour terminal: its colours re-emitted as plain SGR sequences built
    from the parsed style (never the program's own bytes), every other escape sequence
    dropped and other control characters shown as \\xNN. Returns the style at its end."""
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        if match["csi"] is not None:
            if match["final"] == "m":
                style = style.apply(_codes(match["params"]))
                codes = style.encode()
                out.append(f"\x1b[0;{codes}m" if codes else "\x1b[0m")
        elif match["crlf"] is not None:
            out.append("\n")
        elif match["ctl"] is not None:
            out.append(_visible(match["ctl"]))
    out.append(text[position:])
    return "".join(out), style
