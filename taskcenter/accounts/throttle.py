"""Sign-in throttling: at most N failed sign-ins per user name and address, and M (higher)
per address alone, per window.

Counting the user name with the address, not alone, means that nobody can lock a named user
out from everywhere by failing on purpose from elsewhere, and that one person's typos lock
out only themselves; the separate, higher count per address still stops one address
guessing across many user names (brute force). A user's own failures from one address do
not hinder them at another.

The per-address limit holds back only user names not known at that address: a user name
that signed in successfully from it within TASKCENTER_SIGNIN_KNOWN_DAYS (KnownSignIn) is
checked against its own count alone. So one person at a shared address (an office behind
one NAT) failing on purpose with many names cannot lock out the others' right passwords;
a guesser still gets at most the per-address limit for names never signed in from there.

One mechanism for every way in: ThrottledModelBackend (settings.AUTHENTICATION_BACKENDS)
wraps Django's ModelBackend, so the sign-in page, Django's admin login and the API's HTTP
Basic authentication all go through it.

Each counter row (kind, key, window: kind PAIR keyed by address and user name, ADDRESS
keyed by address) holds `count` (failures) and `pending` (passwords
being checked right now). An attempt is admitted to the password check by one
compare-and-set per counter, in one transaction:

    UPDATE ... SET pending = pending + 1 WHERE ... AND count + pending < N

(M for the address counter) so of 20 simultaneous wrong passwords exactly N are checked, whatever the timing, and the
rest are refused as throttled once those N have failed. An attempt that is not admitted
while the failures are still below N (others are in flight, outcome unknown) waits for
them briefly instead of being refused: 20 simultaneous *right* passwords (an API client
using Basic in parallel) all succeed, at most N checked at a time. A success frees its
slot; it also clears the failures of its user name and address, but never the address's
own count (other users' failures from that address still count).

Windows are fixed (bucket = seconds since the epoch // window); refused attempts learn
how many seconds are left in the window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import exceptions as drf_exceptions

from taskcenter.accounts import access
from taskcenter.accounts.models import KnownSignIn, SignInFailureCount
from taskcenter.accounts.sessions import with_epoch

# The clock the windows are cut from; tests replace it to move time.
clock = time.time


class SignInThrottled(drf_exceptions.AuthenticationFailed, ValidationError):
    """Too many failed sign-ins.

    Both a DRF AuthenticationFailed (the API answers 429 in its envelope, with
    Retry-After, code 30004) and a form ValidationError (the sign-in form shows the
    message): Django's authenticate() lets it through to whichever called it.
    """

    status_code = 429

    def __init__(self, wait: int):
        message = f"Too many failed sign-ins, try again in {wait} seconds."
        drf_exceptions.AuthenticationFailed.__init__(self, detail=message, code="throttled")
        ValidationError.__init__(self, message, code="throttled")
        self.wait = wait


def failure_limit() -> int:
    """Failures allowed per user name and address in a window."""
    return settings.TASKCENTER_SIGNIN_FAILURE_LIMIT


def address_failure_limit() -> int:
    """Failures allowed per address (whatever the user names) in a window."""
    return settings.TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT


def window_seconds() -> float:
    return settings.TASKCENTER_SIGNIN_WINDOW_SECONDS


def user_key(username: str) -> str:
    return str(username).strip().casefold()[:255]


def client_address(request) -> str:
    """The peer address. Behind a proxy, the proxy must set REMOTE_ADDR (e.g. gunicorn's
    --forwarded-allow-ips); a client-supplied X-Forwarded-For is not trusted."""
    meta = getattr(request, "META", None) or {}
    return (meta.get("REMOTE_ADDR") or "unknown")[:255]


# How long an attempt waits for in-flight checks of the same user or address to move on.
ADMISSION_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Slot:
    user: str
    address: str
    bucket: int
    # The user name signed in from this address lately: the address's limit does not apply.
    known: bool = False

    @property
    def pair(self) -> str:
        """The user name and address counter's key (an address holds no blank)."""
        return f"{self.address} {self.user}"[:255]


def _slot(username: str, address: str) -> Slot:
    user = user_key(username)
    return Slot(
        user=user,
        address=address,
        bucket=math.floor(clock() / window_seconds()),
        known=_is_known(f"{address} {user}"[:255]),
    )


def known_days() -> float:
    return settings.TASKCENTER_SIGNIN_KNOWN_DAYS


def _is_known(pair: str) -> bool:
    if known_days() <= 0:
        return False
    since = timezone.now() - timedelta(days=known_days())
    return KnownSignIn.objects.filter(key=pair, last_success_at__gte=since).exists()


def _remember_known(slot: Slot) -> None:
    if known_days() > 0:
        KnownSignIn.objects.update_or_create(
            key=slot.pair, defaults={"last_success_at": timezone.now()}
        )


def _keys(slot: Slot) -> list[tuple[str, str]]:
    kinds = SignInFailureCount.Kind
    return [(kinds.PAIR, slot.pair), (kinds.ADDRESS, slot.address)]


def _counters(slot: Slot):
    """The user name and address counter, and the address counter (not for a user name
    known at the address), with their limits."""
    rows = SignInFailureCount.objects.filter(bucket=slot.bucket)
    (pair_kind, pair_key), (address_kind, address_key) = _keys(slot)
    counters = [(rows.filter(kind=pair_kind, key=pair_key), failure_limit())]
    if not slot.known:
        counters.append((rows.filter(kind=address_kind, key=address_key), address_failure_limit()))
    return counters


def _admit(slot: Slot) -> bool | int | None:
    """True: admitted (a slot taken on both counters). None: refused, the failures reached
    a limit. Otherwise not now (checks in flight): how many checks have finished so far
    on the two counters, so that the caller can tell whether the queue is moving."""
    counters = _counters(slot)
    with transaction.atomic():
        for rows, limit in counters:
            taken = rows.filter(count__lt=limit - F("pending")).update(pending=F("pending") + 1)
            if not taken:
                seen = [
                    (counter.values_list("count", "checked").first() or (0, 0), most)
                    for counter, most in counters
                ]
                transaction.set_rollback(True)  # give back the slot taken on the first row
                if any(count >= most for (count, _checked), most in seen):
                    return None
                return sum(checked for (_count, checked), _most in seen)
    return True


def throttled_for(*, username: str, address: str) -> int | None:
    """Seconds until this user name may sign in again from this address, or None when it
    may now (a read only: a remembered credential still honours a lockout)."""
    slot = _slot(username, address)
    for rows, limit in _counters(slot):
        if rows.filter(count__gte=limit).exists():
            return _seconds_left(slot)
    return None


def _seconds_left(slot: Slot) -> int:
    return max(1, math.ceil((slot.bucket + 1) * window_seconds() - clock()))


def attempt_begin(*, username: str, address: str) -> Slot:
    """Take a slot for checking one password, or raise SignInThrottled."""
    slot = _slot(username, address)
    with transaction.atomic():
        for kind, key in _keys(slot):
            # Older windows are dead weight; this window's row must exist for the UPDATE.
            SignInFailureCount.objects.filter(kind=kind, key=key, bucket__lt=slot.bucket).delete()
            SignInFailureCount.objects.bulk_create(
                [SignInFailureCount(kind=kind, key=key, bucket=slot.bucket)],
                ignore_conflicts=True,
            )
    # The wait is counted from the last sign of progress, not from the start: on a busy
    # machine 20 parallel right passwords take several rounds of N slow hashes, and each
    # round that ends (a slot freed, a failure counted) shows the queue is moving.
    deadline = time.monotonic() + ADMISSION_WAIT_SECONDS
    checked_before = None
    while True:
        admitted = _admit(slot)
        if admitted is True:
            return slot
        if admitted is not None and admitted != checked_before:
            checked_before = admitted
            deadline = time.monotonic() + ADMISSION_WAIT_SECONDS
        if admitted is None or time.monotonic() > deadline:
            raise SignInThrottled(_seconds_left(slot))
        time.sleep(_POLL_SECONDS)


def attempt_finish(slot: Slot, *, succeeded: bool) -> None:
    (by_pair, _), *by_address = _counters(slot)
    with transaction.atomic():
        done = {"pending": F("pending") - 1, "checked": F("checked") + 1}
        if succeeded:
            by_pair.filter(pending__gt=0).update(**done, count=0)
            for rows, _limit in by_address:
                rows.filter(pending__gt=0).update(**done)
            _remember_known(slot)
        else:
            for rows in (by_pair, *(rows for rows, _limit in by_address)):
                rows.filter(pending__gt=0).update(**done, count=F("count") + 1)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend behind the sign-in throttle (settings.AUTHENTICATION_BACKENDS).

    Inactive users are refused by ModelBackend itself, at sign-in and on every request of
    an existing session (get_user), so deactivation takes effect at once; the users it
    returns carry the session epoch in their session auth hash (accounts.sessions), so a
    deactivation also ends their sessions for good.
    """

    def get_user(self, user_id):
        UserModel = get_user_model()
        try:
            user = UserModel._default_manager.select_related("session_epoch").get(pk=user_id)
        except UserModel.DoesNotExist:
            return None
        return with_epoch(user) if self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        """ModelBackend's answer and its cache on the user, read in one statement
        (access.permission_names) where ModelBackend sends two; a superuser's, every
        permission, as ModelBackend reads it."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = access.permission_names(user_obj.pk)
        return user_obj._perm_cache

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        slot = attempt_begin(username=username, address=client_address(request))
        user = None
        try:
            user = super().authenticate(request, username=username, password=password, **kwargs)
        finally:
            attempt_finish(slot, succeeded=user is not None)
        return with_epoch(user)
