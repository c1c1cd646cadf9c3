"""Where this task center answers HTTP, for what calls it from inside (the demo's health
check): the configured TASKCENTER_BASE_URL, else the address a running `serve` recorded in
the var dir, else http://127.0.0.1:8000.

`serve` gives its own children the variable; the file is for the other processes of the
same var dir, such as `run_task` in a second terminal, which would otherwise guess 8000
whatever port `serve` runs on.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

BASE_URL_VARIABLE = "TASKCENTER_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _address_file() -> Path:
    return Path(settings.VAR_DIR) / "serve-address"


def served_base_url() -> str:
    configured = os.environ.get(BASE_URL_VARIABLE, "").strip()
    if configured:
        return configured.rstrip("/")
    try:
        recorded = _address_file().read_text().strip()
    except OSError:
        recorded = ""
    return recorded.rstrip("/") or DEFAULT_BASE_URL


def on_this_server(url: str) -> str:
    """A path ("/healthz") on this task center; a whole URL as it is."""
    return served_base_url() + url if url.startswith("/") else url


def record(base_url: str) -> None:
    """Called by `serve` once it listens."""
    _address_file().write_text(base_url + "\n")


def forget(base_url: str) -> None:
    """Called by `serve` as it stops: the address is no longer served (unless another
    `serve` of this var dir has recorded its own since)."""
    try:
        if _address_file().read_text().strip() == base_url:
            _address_file().unlink()
    except OSError:
        pass
