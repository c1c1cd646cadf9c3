"""Reads on accounts."""

from __future__ import annotations

from taskcenter.accounts import crypto
from taskcenter.accounts.models import AccessKey


def access_key_for_signature(*, key_id: str) -> tuple[AccessKey, str] | None:
    """An active key with an active owner, and its plain secret; None otherwise."""
    key = (
        AccessKey.objects.select_related("owner")
        .filter(key_id=key_id, revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if key is None:
        return None
    secret = crypto.decrypt(key.secret_encrypted)
    if secret is None:  # SECRET_KEY changed without a fallback: the key cannot verify
        return None
    return key, secret


def access_keys_of(*, owner) -> list[AccessKey]:
    return list(AccessKey.objects.filter(owner=owner).order_by("-id"))
