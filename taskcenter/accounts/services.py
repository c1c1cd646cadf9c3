"""Writes on accounts: creating and revoking access keys, each with its audit row."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from taskcenter.accounts import crypto
from taskcenter.accounts.models import AccessKey
from taskcenter.core.trace import current_trace_id
from taskcenter.tasks.errors import NotPermitted, TaskCenterError
from taskcenter.tasks.models import Operation

PERM_MANAGE_ALL_KEYS = "accounts.manage_all_accesskeys"
# last_used_at is a hint for people, not an audit trail: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccessKeyNotFound(TaskCenterError):
    code = 10002
    http_status = 404


def can_manage_keys_of(actor, owner) -> bool:
    if actor is None:  # the command line, run by whoever holds the server
        return True
    if not (actor.is_authenticated and actor.is_active):
        return False
    return actor.pk == owner.pk or actor.is_superuser or actor.has_perm(PERM_MANAGE_ALL_KEYS)


def access_key_create(*, owner, actor=None, description: str = "") -> tuple[AccessKey, str]:
    """A new key for `owner`; returns the row and the plain secret, which is not kept."""
    if not can_manage_keys_of(actor, owner):
        raise NotPermitted("You may only create access keys for yourself.")
    secret = secrets.token_urlsafe(30)
    with transaction.atomic():
        key = AccessKey.objects.create(
            owner=owner,
            key_id="AK" + secrets.token_hex(10).upper(),
            secret_encrypted=crypto.encrypt(secret),
            description=description,
        )
        _audit(actor, "ACCESS_KEY_CREATE", key)
    return key, secret


def access_key_revoke(*, key_id: str, actor=None) -> AccessKey:
    """Revoke a key at once; signed requests with it are refused from now on."""
    with transaction.atomic():
        key = (
            AccessKey.objects.select_for_update()
            .select_related("owner")
            .filter(key_id=key_id)
            .first()
        )
        if key is None or not can_manage_keys_of(actor, key.owner):
            # Someone else's key id is not confirmed to exist.
            raise AccessKeyNotFound(f"The access key {key_id} does not exist.")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            _audit(actor, "ACCESS_KEY_REVOKE", key)
    return key


def access_key_mark_used(*, key: AccessKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        AccessKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def _audit(actor, action: str, key: AccessKey) -> None:
    Operation.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "system",
        action=action,
        target=f"access key {key.key_id} of {key.owner.get_username()}",
        trace_id=current_trace_id(),
    )
