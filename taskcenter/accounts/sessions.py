"""Sessions that end for good: the session auth hash with the user's SessionEpoch in it.

Django signs a session with `user.get_session_auth_hash()` at sign-in and compares it on
every request (django.contrib.auth.get_user). The sign-in backend
(throttle.ThrottledModelBackend) gives each user it returns `with_epoch`'s version of
that method: the same hash as Django's while the epoch is 0 (no session ever ended, and
sessions made by force_login or before this existed stay valid), and a different one
after each deactivation, which bumps the epoch (`end_sessions`).
"""

from __future__ import annotations

from django.db.models import F
from django.utils.crypto import salted_hmac

from taskcenter.accounts.models import SessionEpoch

_KEY_SALT = "taskcenter.accounts.sessions.session_auth_hash"


def current_epoch(user) -> int:
    try:
        return user.session_epoch.epoch
    except SessionEpoch.DoesNotExist:
        return 0


def with_epoch(user):
    """`user`, its session auth hash including its epoch (read when first asked)."""
    if user is None:
        return None
    django_hash = user.get_session_auth_hash

    def get_session_auth_hash() -> str:
        epoch = current_epoch(user)
        if epoch == 0:
            return django_hash()
        return salted_hmac(_KEY_SALT, f"{user.password}\0{epoch}", algorithm="sha256").hexdigest()

    user.get_session_auth_hash = get_session_auth_hash
    return user


def end_sessions(user) -> None:
    """End every session of `user` for good (in the caller's transaction)."""
    SessionEpoch.objects.get_or_create(user=user)
    SessionEpoch.objects.filter(user=user).update(epoch=F("epoch") + 1)
    user.__dict__.pop("get_session_auth_hash", None)
    if hasattr(user, "_state"):
        user._state.fields_cache.pop("session_epoch", None)
