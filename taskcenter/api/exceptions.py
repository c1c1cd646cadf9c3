"""Every failure under /api/ as OCP's error envelope: DRF's handler and the HTML guard.

Codes are OCP's: the domain errors carry their own (taskcenter.core.errors); protocol
failures use OCP's common and IAM codes below.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from taskcenter.api.envelope import error_body
from taskcenter.core.errors import InvalidParameter, TaskCenterError
from taskcenter.core.middleware import DATABASE_DOWN_MESSAGE, is_database_unavailable
from taskcenter.tasks.parameters import InvalidParameters

logger = logging.getLogger("taskcenter.api")

COMMON_ILLEGAL_ARGUMENT = 10001
COMMON_NOT_FOUND = 10002
COMMON_UNEXPECTED = 10010
IAM_USER_NOT_AUTHENTICATED = 30000
IAM_BAD_CREDENTIALS = 30004
IAM_OPERATION_NOT_PERMITTED = 30014


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def _classify(exc) -> tuple[int, int, str, str | None]:
    """(http status, OCP code, message, target) for an exception raised in a view."""
    if isinstance(exc, TaskCenterError):
        target = exc.parameter if isinstance(exc, InvalidParameter) else None
        return exc.http_status, exc.code, exc.message, target
    if isinstance(exc, Http404):
        return 404, COMMON_NOT_FOUND, str(exc) or "Not found.", None
    if is_database_unavailable(exc):
        return 503, COMMON_UNEXPECTED, DATABASE_DOWN_MESSAGE, None
    if isinstance(exc, RequestDataTooBig):
        return 413, COMMON_ILLEGAL_ARGUMENT, "The request body is too large.", "body"
    if isinstance(exc, SuspiciousOperation):
        return 400, COMMON_ILLEGAL_ARGUMENT, "The request was refused as malformed.", None
    if isinstance(exc, DjangoPermissionDenied):
        return 403, IAM_OPERATION_NOT_PERMITTED, str(exc) or "Permission denied.", None
    if isinstance(exc, drf.APIException):
        return _classify_drf(exc)
    return 500, COMMON_UNEXPECTED, "", None


def _classify_drf(exc: drf.APIException) -> tuple[int, int, str, str | None]:
    if isinstance(exc, drf.NotAuthenticated):
        return (
            exc.status_code,
            IAM_USER_NOT_AUTHENTICATED,
            "Authentication is required: use HTTP Basic, an OCP access key signature "
            "or a browser session.",
            None,
        )
    if isinstance(exc, drf.AuthenticationFailed):
        return exc.status_code, IAM_BAD_CREDENTIALS, _flatten(exc.detail), None
    if isinstance(exc, drf.PermissionDenied):
        return exc.status_code, IAM_OPERATION_NOT_PERMITTED, _flatten(exc.detail), None
    if isinstance(exc, drf.NotFound):
        return 404, COMMON_NOT_FOUND, _flatten(exc.detail), None
    if isinstance(exc, drf.MethodNotAllowed):
        return 405, COMMON_ILLEGAL_ARGUMENT, _flatten(exc.detail), None
    if isinstance(exc, drf.ParseError):
        return (
            400,
            COMMON_ILLEGAL_ARGUMENT,
            f"Malformed request body: {_flatten(exc.detail)}",
            "body",
        )
    code = COMMON_ILLEGAL_ARGUMENT if exc.status_code < 500 else COMMON_UNEXPECTED
    return exc.status_code, code, _flatten(exc.detail), None


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: the envelope for everything, a logged 500 for the unknown."""
    request = context.get("request")
    status, code, message, target = _classify(exc)
    headers = {}
    if status == 500 and not isinstance(exc, drf.APIException):
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        message = "An unexpected error occurred; quote the traceId when reporting it."
    if isinstance(exc, drf.APIException):
        # Set on some exceptions only: DRF's views add auth_header, throttles carry wait.
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
    set_rollback()
    body = error_body(
        request,
        status=status,
        code=code,
        message=message,
        target=target,
        sub_errors=_sub_errors(exc),
    )
    return Response(body, status=status, headers=headers)


def _sub_errors(exc) -> list[dict]:
    """Each invalid parameter of a refused run, when there are several at once."""
    if not isinstance(exc, InvalidParameters):
        return []
    return [{"target": target, "message": why} for target, why in exc.targets()]


# --- The guard: no HTML error page under /api/ ---------------------------------------------------

_GENERIC = {
    400: (COMMON_ILLEGAL_ARGUMENT, "Bad request."),
    401: (IAM_USER_NOT_AUTHENTICATED, "Authentication is required."),
    403: (IAM_OPERATION_NOT_PERMITTED, "Forbidden."),
    404: (COMMON_NOT_FOUND, "Not found."),
    405: (COMMON_ILLEGAL_ARGUMENT, "Method not allowed."),
    503: (COMMON_UNEXPECTED, DATABASE_DOWN_MESSAGE),
}


def _refusal(request, target: str, message: str) -> JsonResponse:
    """A request refused before any view (core.text_input) in its API's envelope."""
    from taskcenter.api import hengshi  # it builds on this module's classification

    text = f"{InvalidParameter.PREFIX}{target}': {message}"
    if request.path_info.startswith(hengshi.HENGSHI_PREFIXES):
        body = hengshi.error_body(code=COMMON_ILLEGAL_ARGUMENT, message=text, target=target)
    else:
        body = error_body(
            request, status=400, code=COMMON_ILLEGAL_ARGUMENT, message=text, target=target
        )
    return JsonResponse(body, status=400)


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


class ApiErrorMiddleware:
    """Under /api/, turn Django's own error pages (middleware 400s, CSRF, 500s) into envelopes.

    DRF's handler covers the views; this covers what happens around them, e.g. a
    DisallowedHost from CommonMiddleware or an error in another middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not _is_api(request) or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return response
        refused = getattr(response, "refused_parameter", None)
        if refused is not None:  # taskcenter.core.text_input
            return _refusal(request, *refused)
        code, message = _GENERIC.get(
            response.status_code,
            (
                COMMON_UNEXPECTED,
                "An unexpected error occurred; quote the traceId when reporting it.",
            )
            if response.status_code >= 500
            else (COMMON_ILLEGAL_ARGUMENT, "The request was refused."),
        )
        body = error_body(request, status=response.status_code, code=code, message=message)
        return JsonResponse(body, status=response.status_code)

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        logger.exception("unhandled error on %s %s", request.method, request.path)
        body = error_body(
            request,
            status=500,
            code=COMMON_UNEXPECTED,
            message="An unexpected error occurred; quote the traceId when reporting it.",
        )
        return JsonResponse(body, status=500, json_dumps_params={"default": str})
