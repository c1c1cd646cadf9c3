"""Sign-in throttling: at most N failed sign-ins per user name and per address per window.

One mechanism for every way in: ThrottledModelBackend (settings.AUTHENTICATION_BACKENDS)
wraps Django's ModelBackend, so the sign-in page, Django's admin login and the API's HTTP
Basic authentication all go through it.

Each counter row (kind, key, window) holds `count` (failures) and `pending` (passwords
being checked right now). An attempt is admitted to the password check by one
compare-and-set per counter, in one transaction:

    UPDATE ... SET pending = pending + 1 WHERE ... AND count + pending < N

so of 20 simultaneous wrong passwords exactly N are checked, whatever the timing, and the
rest are refused as throttled once those N have failed. An attempt that is not admitted
while the failures are still below N (others are in flight, outcome unknown) waits for
them briefly instead of being refused: 20 simultaneous *right* passwords (an API client
using Basic in parallel) all succeed, at most N checked at a time. A success frees its
slot; it also clears the user name's failures, but never the address's (other users'
failures from that address still count).

Windows are fixed (bucket = seconds since the epoch // window); refused attempts learn
how many seconds are left in the window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from rest_framework import exceptions as drf_exceptions

from taskcenter.accounts.models import SignInFailureCount

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
    return settings.TASKCENTER_SIGNIN_FAILURE_LIMIT


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


def _counters(slot: Slot):
    kinds = SignInFailureCount.Kind
    rows = SignInFailureCount.objects.filter(bucket=slot.bucket)
    return rows.filter(kind=kinds.USER, key=slot.user), rows.filter(
        kind=kinds.ADDRESS, key=slot.address
    )


def _admit(slot: Slot, limit: int) -> bool | int | None:
    """True: admitted (a slot taken on both counters). None: refused, the failures reached
    the limit. Otherwise not now (checks in flight): how many checks have finished so far
    on the two counters, so that the caller can tell whether the queue is moving."""
    by_user, by_address = _counters(slot)
    with transaction.atomic():
        for rows in (by_user, by_address):
            taken = rows.filter(count__lt=limit - F("pending")).update(pending=F("pending") + 1)
            if not taken:
                seen = [
                    counter.values_list("count", "checked").first() or (0, 0)
                    for counter in (by_user, by_address)
                ]
                transaction.set_rollback(True)  # give back the slot taken on the user row
                failures = max(count for count, _checked in seen)
                return None if failures >= limit else sum(checked for _count, checked in seen)
    return True


def attempt_begin(*, username: str, address: str) -> Slot:
    """Take a slot for checking one password, or raise SignInThrottled."""
    now = clock()
    window = window_seconds()
    limit = failure_limit()
    slot = Slot(user=user_key(username), address=address, bucket=math.floor(now / window))
    kinds = SignInFailureCount.Kind
    with transaction.atomic():
        for kind, key in ((kinds.USER, slot.user), (kinds.ADDRESS, slot.address)):
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
        admitted = _admit(slot, limit)
        if admitted is True:
            return slot
        if admitted is not None and admitted != checked_before:
            checked_before = admitted
            deadline = time.monotonic() + ADMISSION_WAIT_SECONDS
        if admitted is None or time.monotonic() > deadline:
            raise SignInThrottled(max(1, math.ceil((slot.bucket + 1) * window - clock())))
        time.sleep(_POLL_SECONDS)


def attempt_finish(slot: Slot, *, succeeded: bool) -> None:
    by_user, by_address = _counters(slot)
    with transaction.atomic():
        done = {"pending": F("pending") - 1, "checked": F("checked") + 1}
        if succeeded:
            by_user.filter(pending__gt=0).update(**done, count=0)
            by_address.filter(pending__gt=0).update(**done)
        else:
            for rows in (by_user, by_address):
                rows.filter(pending__gt=0).update(**done, count=F("count") + 1)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend behind the sign-in throttle (settings.AUTHENTICATION_BACKENDS).

    Inactive users are refused by ModelBackend itself, at sign-in and on every request of
    an existing session (get_user), so deactivation takes effect at once.
    """

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
        return user
