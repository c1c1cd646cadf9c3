"""OCP's access-key signature (AK/SK), next to HTTP Basic and CSRF-checked sessions.

    Authorization: OCP-ACCESS-KEY-HMACSHA1 <AccessKeyId>:<Signature>
    Date: <RFC 1123 date, within 15 minutes of the server's clock>

    Signature    = base64(HMAC-SHA1(AccessKeySecret, StringToSign))
    StringToSign = Method "\n" Md5Payload "\n" ContentType "\n" Date "\n" Host "\n"
                   OcpHeaders "\n" PathAndQuery

Md5Payload is the upper-case hex MD5 of the body (empty without a body), ContentType and
Host the headers as sent, OcpHeaders every x-ocp-* header as "name:value" sorted and
joined by "\n", PathAndQuery the path plus "?" and the query string exactly as sent.
Signed requests are not subject to CSRF: a browser cannot produce them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils.encoding import escape_uri_path
from rest_framework import authentication, exceptions

from taskcenter.accounts import selectors as account_selectors
from taskcenter.accounts import services as account_services

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
MAX_CLOCK_SKEW = timedelta(minutes=15)


def md5_payload(body: bytes) -> str:
    return hashlib.md5(body).hexdigest().upper() if body else ""


def ocp_headers(headers) -> str:
    """Every x-ocp-* header as lower-case name:value, sorted, joined by newlines."""
    pairs = sorted(
        (name.lower(), value.strip())
        for name, value in headers.items()
        if name.lower().startswith("x-ocp-")
    )
    return "\n".join(f"{name}:{value}" for name, value in pairs)


def string_to_sign(
    *,
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    ocp_header_lines: str,
    path_and_query: str,
) -> str:
    return "\n".join(
        [
            method.upper(),
            md5_payload(body),
            content_type,
            date,
            host,
            ocp_header_lines,
            path_and_query,
        ]
    )


def sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


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
        self._check_date(date)
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
        account_services.access_key_mark_used(key=key)
        return key.owner, key

    @staticmethod
    def _check_date(date: str) -> None:
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

    def authenticate_header(self, request):
        return SCHEME
