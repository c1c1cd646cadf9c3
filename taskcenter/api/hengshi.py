"""HENGSHI's response envelope, around every answer of /api/schedules and /api/contexts.

Success: {code: 0, msg: "success", data, version} (lists add totalHits and offset).
Failure: {code (non-zero), msg (naming the bad field), data: null, version, field}, with
the HTTP status of the OCP API for the same error (400, 401, 403, 404, 405).
"""

from __future__ import annotations

import functools
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from django.utils import timezone
from rest_framework import exceptions as drf
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.views import set_rollback

from taskcenter.api.exceptions import _classify, logger


@functools.cache
def version() -> str:
    try:
        return f"taskcenter-{package_version('taskcenter')}"
    except PackageNotFoundError:
        return "taskcenter"


def when(value: datetime | None) -> str | None:
    """HENGSHI's "2020-03-05 15:01:02", in the server's time zone."""
    if value is None:
        return None
    return value.astimezone(timezone.get_default_timezone()).strftime("%Y-%m-%d %H:%M:%S")


def ok(data=None, status: int = 200, **extra) -> Response:
    body = {"code": 0, "msg": "success", "data": data, "version": version(), **extra}
    return Response(body, status=status)


def exception_handler(exc, context):
    status, code, message, target = _classify(exc)
    headers = {}
    if status == 500 and not isinstance(exc, drf.APIException):
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        message = "An unexpected error occurred; quote the traceId when reporting it."
    auth_header = getattr(exc, "auth_header", None)  # set by the authentication classes
    if isinstance(exc, drf.APIException) and auth_header:
        headers["WWW-Authenticate"] = auth_header
    set_rollback()
    return Response(
        error_body(code=code, message=message, target=target), status=status, headers=headers
    )


def error_body(*, code: int, message: str, target: str | None) -> dict:
    return {"code": code, "msg": message, "data": None, "version": version(), "field": target}


def hengshi_view(methods: list[str]):
    """@api_view whose failures are answered in HENGSHI's envelope."""

    def decorator(func):
        view = api_view(methods)(func)
        # api_view builds the view class itself; this is its one hook for the handler.
        view.cls.get_exception_handler = lambda self: exception_handler  # type: ignore[method-assign]
        return view

    return decorator


def user_data(user) -> dict:
    """A user as HENGSHI lists one (its password salt is never sent)."""
    email = user.email or ""
    name = user.get_full_name() or user.get_username()

    def entry(value, kind: str = "string") -> dict:
        data = {"source": "SYSTEM_DEFINED", "type": kind}
        if value not in (None, ""):
            data["value"] = value
        return data

    return {
        "id": user.pk,
        "name": name,
        "email": email,
        "description": "",
        "avatar": "",
        "enable": user.is_active,
        "userType": "internal",
        "loginName": user.get_username(),
        "config": {
            "sys.email": entry(email),
            "sys.login_name": entry(user.get_username()),
            "sys.mobile": entry(None),
            "sys.id": entry(user.pk, "number"),
            "sys.loginName": entry(user.get_username()),
            "sys.name": entry(name),
        },
        "options": {},
        "roles": [
            {"id": group.pk, "name": group.name, "description": group.name}
            for group in user.groups.all()
        ],
        "organizations": [],
    }


# --- The two OpenAPI schemas (drf-spectacular preprocessing hooks) -----------------------------

HENGSHI_PREFIXES = ("/api/schedules", "/api/contexts")


def ocp_endpoints(endpoints, **kwargs):
    """/api/schema: OCP's v2 API only."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(HENGSHI_PREFIXES)]


def hengshi_endpoints(endpoints, **kwargs):
    """/api/schedules-schema: the schedules and contexts API only."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(HENGSHI_PREFIXES)]
