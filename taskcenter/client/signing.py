"""OCP's access-key signature (AK/SK): the one definition of the string to sign, used by
the client to sign and by the server (taskcenter.api.authentication) to verify.

    Authorization: OCP-ACCESS-KEY-HMACSHA1 <AccessKeyId>:<Signature>
    Date: <RFC 1123 date, within 15 minutes of the server's clock>

    Signature    = base64(HMAC-SHA1(AccessKeySecret, StringToSign))
    StringToSign = Method "\\n" Md5Payload "\\n" ContentType "\\n" Date "\\n" Host "\\n"
                   OcpHeaders "\\n" PathAndQuery

Md5Payload is the upper-case hex MD5 of the body (empty without a body), ContentType and
Host the headers as sent, OcpHeaders every x-ocp-* header as "name:value" sorted and
joined by "\\n", PathAndQuery the path plus "?" and the query string exactly as sent.

This module imports nothing of Django.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from email.utils import formatdate

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"


def md5_payload(body: bytes) -> str:
    return hashlib.md5(body).hexdigest().upper() if body else ""


def ocp_headers(headers: Mapping[str, str]) -> str:
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


def signed_headers(
    *,
    key_id: str,
    secret: str,
    method: str,
    host: str,
    path_and_query: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    date: str | None = None,
) -> dict[str, str]:
    """The Date and Authorization headers that sign a request with these parts (`headers`:
    the others it carries, of which Content-Type and any x-ocp-* are signed)."""
    headers = dict(headers or {})
    date = date or formatdate(usegmt=True)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    text = string_to_sign(
        method=method,
        body=body,
        content_type=content_type,
        date=date,
        host=host,
        ocp_header_lines=ocp_headers(headers),
        path_and_query=path_and_query,
    )
    return {"Date": date, "Authorization": f"{SCHEME} {key_id}:{sign(secret, text)}"}
