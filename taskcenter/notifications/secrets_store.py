"""A channel's URL and signing secret at rest: encrypted with a key derived from
SECRET_KEY (taskcenter.accounts.crypto), or `env:NAME`, read from the environment when a
message is sent and never stored at all."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from taskcenter.accounts import crypto

ENV_PREFIX = "env:"


def seal(plain: str) -> str:
    """What is stored for `plain`: an environment reference as it is, else ciphertext."""
    if not plain:
        return ""
    if plain.startswith(ENV_PREFIX):
        return plain
    return crypto.encrypt(plain)


def unseal(stored: str) -> str:
    """The plain value to send with ("" when it cannot be had: a key rotated away, an
    environment variable unset)."""
    if not stored:
        return ""
    if stored.startswith(ENV_PREFIX):
        return os.environ.get(stored[len(ENV_PREFIX) :], "")
    return crypto.decrypt(stored) or ""


def hint(url: str) -> str:
    """What the pages may show of a URL: its scheme and host, never its path or tokens."""
    if url.startswith(ENV_PREFIX):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…" if parts.scheme else "…"
