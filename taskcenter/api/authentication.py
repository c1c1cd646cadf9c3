"""OCP's access-key signature (AK/SK), next to HTTP Basic and CSRF-checked sessions.

    Authorization: OCP-ACCESS-KEY-HMACSHA1 <AccessKeyId>:<Signature>
    Date: <RFC 1123 date, within 15 minutes of the server's clock>

    Signature    = base64(HMAC-SHA1(AccessKeySecret, StringToSign))
    StringToSign = Method "\n" Md5Payload "\n" ContentType "\n" Date "\n" Host "\n"
                   OcpHeaders "\n" PathAndQuery

Md5Payload is the upper-case hex MD5 of the body (empty without a body), ContentType and
Host the headers as sent, OcpHeaders every x-ocp-* header as "name:value" sorted and
joined by "\n", PathAndQuery the path plus "?" and the query string exactly as sent.
The string to sign is defined once, in taskcenter.client.signing (which the client signs
with). Signed requests are not subject to CSRF: a browser cannot produce them.

A signed unsafe request (POST, PUT, PATCH, DELETE) is accepted once: its signature is
recorded (taskcenter.accounts.replay) and the same one again within the Date window is
refused as a replay.

HTTP Basic (CachedBasicAuthentication) remembers verified credentials for a short time
instead of paying a full password hash on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.contrib.auth import get_user_model
from django.utils.encoding import escape_uri_path
from rest_framework import authentication, exceptions

from taskcenter.accounts import replay, throttle
from taskcenter.accounts import selectors as account_selectors
from taskcenter.accounts import services as account_services
from taskcenter.client.signing import SCHEME, ocp_headers, sign, string_to_sign
from taskcenter.core.trace import set_access_key_id

MAX_CLOCK_SKEW = timedelta(minutes=15)


def request_path_and_query(request) -> str:
    """The path and query string as the client sent them (servers that keep the raw URI
    pass it on; otherwise the WSGI path re-encoded plus the raw QUERY_STRING)."""
    meta = request.META
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = escape_uri_path(request.path)
    query = meta.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


class AccessKeyAuthentication(authentication.BaseAuthentication):
    keyword = SCHEME

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme != SCHEME:
            return None
        key_id, sep, signature = credentials.strip().partition(":")
        if not sep or not key_id or not signature:
            raise exceptions.AuthenticationFailed(
                f"Malformed Authorization header: expected '{SCHEME} AccessKeyId:Signature'."
            )
        date = request.META.get("HTTP_DATE", "")
        signed_at = self._check_date(date)
        found = account_selectors.access_key_for_signature(key_id=key_id)
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked access key.")
        key, secret = found
        django_request = request._request
        content_type = django_request.META.get("CONTENT_TYPE", "")
        # wsgiref (runserver, the test live server) reports a missing Content-Type as
        # text/plain; the client signed an empty one.
        content_types = [content_type, ""] if content_type == "text/plain" else [content_type]
        matched = False
        for candidate in content_types:
            expected = sign(
                secret,
                string_to_sign(
                    method=django_request.method,
                    body=django_request.body,
                    content_type=candidate,
                    date=date,
                    host=django_request.META.get("HTTP_HOST", ""),
                    ocp_header_lines=ocp_headers(django_request.headers),
                    path_and_query=request_path_and_query(django_request),
                ),
            )
            matched |= hmac.compare_digest(expected.encode(), signature.strip().encode())
        if not matched:
            raise exceptions.AuthenticationFailed(
                "The request signature does not match: check the secret and the string to sign."
            )
        if django_request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
            # After the signature is known good, so a forger cannot use up others' digests.
            if not replay.first_use(
                key_id=key_id, signature=signature.strip(), expires_at=signed_at + MAX_CLOCK_SKEW
            ):
                raise exceptions.AuthenticationFailed(
                    "This signed request was already used: a replay is refused. "
                    "Sign each request anew (a new Date gives a new signature)."
                )
        account_services.access_key_mark_used(key=key)
        # What this request changes is audited with the key's owner and the key's id.
        set_access_key_id(key.key_id)
        return key.owner, key

    @staticmethod
    def _check_date(date: str) -> datetime:
        """The signing time, when within MAX_CLOCK_SKEW of the server's clock."""
        if not date:
            raise exceptions.AuthenticationFailed("A signed request needs a Date header.")
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            raise exceptions.AuthenticationFailed(
                "The Date header is not an RFC 1123 date."
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if abs(datetime.now(UTC) - when) > MAX_CLOCK_SKEW:
            raise exceptions.AuthenticationFailed(
                "The Date header is more than 15 minutes away from the server's clock."
            )
        return when

    def authenticate_header(self, request):
        return SCHEME


class VerifiedCredentials:
    """Basic credentials that passed the full password check, remembered for a while.

    An entry is HMAC-SHA256, under a key drawn at random when the process starts and never
    written anywhere, of the user's id, the user's stored password hash and the password
    given; only that digest and an expiry are kept (in this process's memory), never the
    password. How an entry stops working at once:

    - password change: the stored hash is part of the digest, so after a change the same
      credentials digest to something never remembered (and the old password fails);
    - deactivation: the user row is read on every request and an inactive user is refused
      before the cache is looked at;
    - throttle: a lockout of the user name at this address is checked (one read) on every
      hit, so remembered credentials do not outlive a lockout either.

    Entries expire after `ttl` seconds; at most `capacity` are kept (the oldest go first).
    """

    def __init__(self, *, ttl: float = 60.0, capacity: int = 10_000):
        self.ttl = ttl
        self.capacity = capacity
        self._key = secrets.token_bytes(32)
        self._expiry: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _digest(self, user, password: str) -> bytes:
        message = f"{user.pk}\0{user.password}\0{password}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def holds(self, user, password: str) -> bool:
        digest = self._digest(user, password)
        with self._lock:
            expiry = self._expiry.get(digest)
            if expiry is not None and expiry <= time.monotonic():
                del self._expiry[digest]
                expiry = None
        return expiry is not None

    def remember(self, user, password: str) -> None:
        digest = self._digest(user, password)
        now = time.monotonic()
        with self._lock:
            if len(self._expiry) >= self.capacity:
                for old in [d for d, expiry in self._expiry.items() if expiry <= now]:
                    del self._expiry[old]
                while len(self._expiry) >= self.capacity:  # dicts keep insertion order
                    del self._expiry[next(iter(self._expiry))]
            self._expiry[digest] = now + self.ttl

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()


verified_credentials = VerifiedCredentials()


class CachedBasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP Basic, with verified credentials remembered (VerifiedCredentials): a
    repeated call costs one user read and one throttle read instead of a password hash."""

    def authenticate_credentials(self, userid, password, request=None):
        user = _active_user(userid)
        if user is not None and verified_credentials.holds(user, password):
            wait = throttle.throttled_for(username=userid, address=throttle.client_address(request))
            if wait is not None:
                raise throttle.SignInThrottled(wait)
            return user, None
        user, auth = super().authenticate_credentials(userid, password, request)
        verified_credentials.remember(user, password)
        return user, auth


def _active_user(username: str):
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
    return user if user is not None and user.is_active else None
