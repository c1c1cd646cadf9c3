"""core.terminal: program output made safe for a page and for a terminal."""

from __future__ import annotations

import pytest

from taskcenter.core import terminal
from taskcenter.core.terminal import Style


def test_colours_become_spans_and_everything_else_is_escaped():
    html, style = terminal.render_html("\x1b[1;31mred <b>\x1b[0m & plain\n")
    assert html == '<span class="sgr-31 sgr-bold">red &lt;b&gt;</span> &amp; plain\n'
    assert style == Style()


def test_the_style_at_the_end_carries_into_the_next_piece():
    _, style = terminal.render_html("\x1b[33;44mfirst\n")
    assert style.encode() == "33;44"
    html, after = terminal.render_html("second\x1b[39m third\n", Style.decode(style.encode()))
    assert html == '<span class="sgr-33 sgr-44">second</span><span class="sgr-44"> third\n</span>'
    assert after == Style(bg=44)


def test_other_sequences_are_dropped_and_control_characters_shown():
    text = "\x1b]0;my window\x07\x1b[2J\x1b[Hbell\x07\x1b(B done\r\n\x9b"
    html, _ = terminal.render_html(text)
    assert "my window" not in html and "[2J" not in html and "\x1b" not in html
    assert html.startswith('bell<span class="ctl" title="control character 0x07">\\x07</span>')
    assert " done\n" in html and "\\x9b" in html
    assert terminal.plain(text) == "bell\\x07 done\n\\x9b"


def test_256_and_true_colour_arguments_are_skipped_not_read_as_codes():
    assert Style().apply([38, 5, 31, 1]) == Style(bold=True)
    assert Style().apply([48, 2, 31, 32, 33, 4]) == Style(underline=True)


@pytest.mark.parametrize(
    ("text", "held"),
    [("done\n", 0), ("a\x1b", 1), ("a\x1b[3", 3), ("a\x1b]0;tit", 7), ("a\r", 1), ("a\x1b[31m", 0)],
)
def test_an_unfinished_sequence_at_the_end_is_held_back(text, held):
    assert terminal.incomplete_tail(text) == held


@pytest.mark.parametrize("raw", ["x", "31;", ";", "1" * 50, "31m"])
def test_styles_from_a_cursor_are_checked(raw):
    with pytest.raises(ValueError):
        Style.decode(raw)
