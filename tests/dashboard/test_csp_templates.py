"""Every template keeps to the Content-Security-Policy: no inline script, no inline event
handler, no <style> element, no htmx trigger filter or hx-on (both compiled with eval)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = sorted((Path(__file__).parents[2] / "templates").rglob("*.html"))
FORBIDDEN = {
    "an inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a <style> element": re.compile(r"<style[\s>]", re.I),
    "an htmx trigger filter (eval)": re.compile(r'hx-trigger="[^"]*\['),
    "hx-on (eval)": re.compile(r"\bhx-on"),
}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_the_template_needs_no_inline_script_or_style(template):
    text = re.sub(r"{% comment %}.*?{% endcomment %}", "", template.read_text(), flags=re.S)
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{template.name}: {', '.join(found)}"
