"""The OCP v2 task API: parse -> access helper -> service or selector -> serializer.

Function-based DRF views. Every answer is OCP's envelope (taskcenter.api.envelope);
every failure goes through taskcenter.api.exceptions.exception_handler.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny

from taskcenter.accounts import access
from taskcenter.api import serializers as s
from taskcenter.api.envelope import SERVER, iso, ok, paged
from taskcenter.api.parsers import BoundedJSONParser
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter
from taskcenter.core.params import INT64_MAX, TEXT_MAX
from taskcenter.tasks import diagnosis, enqueue, selectors
from taskcenter.tasks.filters import SORT_PATTERN
from taskcenter.tasks.models import TaskStatus, TaskType
from taskcenter.tasks.verbs import VERBS, Verb

# Operations take an optional {"reason"} as JSON or a form; clients that POST with no body
# often still send a form content type.
OPERATION_PARSERS = [BoundedJSONParser, FormParser, MultiPartParser]
LOG_READ_MAX = 16 * 1024 * 1024
API_VERSION = "v2"

# --- Parsing ---------------------------------------------------------------------------------------


# The list's parameters that may be repeated (status=A&status=B); any other given twice is
# refused, as the schema says (core.params.single_valued).
REPEATABLE = ("status", "creator", "sort")


def clean_params(request):
    """The query parameters, refused whole when one that takes a single value is repeated."""
    return parse.single_valued(request.query_params, repeatable=REPEATABLE)


def operation_reason(request) -> str:
    """The optional {"reason": "..."} body of an operation (malformed JSON is refused)."""
    data = request.data
    if not data:
        return ""
    if hasattr(data, "dict"):  # a form's QueryDict
        data = data.dict()
    if not isinstance(data, dict):
        raise InvalidParameter.because("body", "expected a JSON object or no body.")
    serializer = s.OperationRequestSerializer(data=data)
    if not serializer.is_valid():
        field, messages = next(iter(serializer.errors.items()))
        raise InvalidParameter.because(field, " ".join(map(str, messages)))
    return serializer.validated_data.get("reason", "")


# --- Schema pieces ----------------------------------------------------------------------------------

_ERROR = OpenApiResponse(s.ErrorResponseSerializer, description="OCP's error envelope.")


def _errors(*codes: int) -> dict:
    base = {401: _ERROR, 403: _ERROR, 405: _ERROR, 406: _ERROR, 415: _ERROR, 500: _ERROR}
    base.update({code: _ERROR for code in codes})
    return base


# Ids are ASCII digits from 1 to 2**63-1 (core.params.identifier); the schema says so.
_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
_TEXT = {"type": "string", "maxLength": TEXT_MAX}
TASK_ID = OpenApiParameter(
    "taskInstanceId", _ID, OpenApiParameter.PATH, description="The task instance id."
)
SUBTASK_ID = OpenApiParameter(
    "subtaskInstanceId", _ID, OpenApiParameter.PATH, description="The subtask instance id."
)
# An empty value is no filter, as the list's form reads it.
_DATE_TIME = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]
}
_STATUS_LIST = {"type": "array", "items": {"type": "string", "enum": list(TaskStatus.values)}}
LIST_PARAMETERS = [
    OpenApiParameter("name", _TEXT, description="Name contains (case-insensitive)."),
    OpenApiParameter(
        "status",
        _STATUS_LIST,
        description="Repeated (status=RUNNING&status=FAILED) or comma-separated.",
        explode=True,
    ),
    OpenApiParameter("type", str, enum=list(TaskType.values)),
    OpenApiParameter("clusterName", _TEXT, description="Cluster name contains."),
    OpenApiParameter("clusterId", _ID),
    OpenApiParameter("tenantName", _TEXT, description="Tenant name contains (use with clusterId)."),
    OpenApiParameter("tenantId", _ID),
    OpenApiParameter("hostId", _ID),
    OpenApiParameter(
        "creator",
        {"type": "array", "items": {"type": "string"}},
        description="Creator user names, repeated or comma-separated.",
        explode=True,
    ),
    OpenApiParameter("keyword", _TEXT, description="Matches name, cluster, tenant, creator or id."),
    OpenApiParameter(
        "createdFrom",
        _DATE_TIME,
        description="Created at or after this ISO 8601 time (e.g. 2024-05-01T10:00:00+08:00).",
    ),
    OpenApiParameter("createdTo", _DATE_TIME, description="Created before this ISO 8601 time."),
    OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": 10**9}),
    OpenApiParameter(
        "size", {"type": "integer", "minimum": 1, "maximum": 2000}, description="Default 10."
    ),
    OpenApiParameter(
        "sort",
        {"type": "array", "items": {"type": "string", "pattern": SORT_PATTERN}},
        description="field,asc|desc (repeatable); fields: id, name, status, type, createTime, "
        "startTime, finishTime, duration (finish - start, or now - start while running).",
        explode=True,
    ),
]


# --- Tasks ------------------------------------------------------------------------------------------


@extend_schema(
    operation_id="listTaskInstances",
    summary="Query the task list",
    parameters=LIST_PARAMETERS,
    responses={200: s.TaskPageResponse, **_errors(400)},
    tags=["tasks"],
)
@api_view(["GET"])
def task_list(request):
    access.require_view(request.user)
    params = clean_params(request)
    page, size = parse.page(params)
    queryset, tally = selectors.task_list_with_tally(
        visible=access.visible_tasks(request.user),
        clusters=access.visible_clusters(request.user),
        params=params,
    )
    rows, total = selectors.task_list_page(queryset=queryset, page=page, size=size, tally=tally)
    contents = s.BasicTaskInstanceSerializer.represent_rows(rows)
    return ok(request, paged(contents, total=total, page=page, size=size))


@extend_schema(
    operation_id="listTaskCreators",
    summary="The users who created tasks (for the list's creator filter)",
    responses={200: s.CreatorListResponse, **_errors()},
    tags=["tasks"],
)
@api_view(["GET"])
def task_creators(request):
    access.require_view(request.user)
    creators = selectors.task_creators(visible=access.visible_tasks(request.user))
    return ok(request, {"contents": [{"id": pk, "name": name} for pk, name in creators]})


@extend_schema(
    operation_id="listTaskFilterOptions",
    summary="The task list's filter options: clusters, hosts and creators the caller may see",
    responses={200: s.TaskFilterOptionsResponse, **_errors()},
    tags=["tasks"],
)
@api_view(["GET"])
def task_filter_options(request):
    access.require_view(request.user)
    choices = selectors.task_filter_choices(clusters=access.visible_clusters(request.user))
    creators = selectors.task_creators(visible=access.visible_tasks(request.user))
    return ok(
        request,
        {
            "clusters": [{"id": pk, "name": name} for pk, name in choices["clusters"]],
            "hosts": [{"id": pk, "name": address} for pk, address in choices["hosts"]],
            "creators": [{"id": pk, "name": name} for pk, name in creators],
        },
    )


def _wrapped(task_id: int) -> dict:
    task = selectors.task_get(task_id=task_id)
    return s.WrappedTaskInstanceSerializer.represent(
        task, selectors.task_subtask_rows(task_id=task.pk)
    )


@extend_schema(
    operation_id="getTaskInstance",
    summary="Query details about a task",
    parameters=[TASK_ID],
    responses={200: s.WrappedTaskInstanceResponse, **_errors(400, 404)},
    tags=["tasks"],
)
@api_view(["GET"])
def task_detail(request, taskInstanceId):
    return _detail(request, taskInstanceId)


def _detail(request, raw_id):
    task = access.get_task_for_user(request.user, parse.identifier(raw_id, "taskInstanceId"))
    return ok(
        request,
        s.WrappedTaskInstanceSerializer.represent(
            task, selectors.task_subtask_rows(task_id=task.pk)
        ),
    )


@extend_schema(
    operation_id="getTask",
    summary="Query details about a task (alias of /api/v2/tasks/instances/{taskInstanceId})",
    parameters=[TASK_ID],
    responses={200: s.WrappedTaskInstanceResponse, **_errors(400, 404)},
    tags=["tasks"],
)
@api_view(["GET"])
def task_detail_alias(request, taskInstanceId):
    return _detail(request, taskInstanceId)


def _task_schema(operation_id: str, summary: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        parameters=[TASK_ID],
        request=s.OperationRequestSerializer,
        responses={200: s.WrappedTaskInstanceResponse, **_errors(400, 404)},
        tags=["tasks"],
    )


def _task_operation(request, taskInstanceId, verb: Verb):
    task_id = parse.identifier(taskInstanceId, "taskInstanceId")
    task = access.get_operable_task_for_user(request.user, task_id, verb.key)
    with enqueue.collect_queued() as queued:
        verb.perform(task, actor=request.user, reason=operation_reason(request))
    return ok(request, _wrapped(task_id), notice=_queued_notice(queued))


def _queued_notice(queued: list[tuple[int, int]]) -> str | None:
    """The operation is committed; when its sends only reached the outbox, say so."""
    return enqueue.queued_notice(queued) if queued else None


CANCEL_TASK_DESCRIPTION = (
    "An extension of OCP's state machine (OCP has no task-level cancel). Stops every "
    "subtask of a RUNNING task that is at work or queued: a RUNNING subtask becomes "
    "CANCELING and its worker ends it FAILED with operation CANCEL; a READY one (queued, "
    "waiting for a worker) ends FAILED with operation CANCEL at once, and a worker that "
    "takes its message later runs nothing. One audit row per subtask, with the reason. "
    "Subtasks waiting for an upstream stay PENDING. Needs the tasks.cancel_taskinstance "
    "permission. Refused with 20003 when the task is not RUNNING or has no RUNNING or "
    "READY subtask."
)


@_task_schema("retryTask", "Retry every failed subtask of a FAILED task")
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def task_retry(request, taskInstanceId):
    return _task_operation(request, taskInstanceId, VERBS["retry"])


@_task_schema("rollbackTask", "Roll back a FAILED task (give up), walking its subtasks in reverse")
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def task_rollback(request, taskInstanceId):
    return _task_operation(request, taskInstanceId, VERBS["rollback"])


@_task_schema("cancelTask", "Stop every RUNNING and READY subtask of a RUNNING task (extension)")
@extend_schema(description=CANCEL_TASK_DESCRIPTION)
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def task_cancel(request, taskInstanceId):
    return _task_operation(request, taskInstanceId, VERBS["cancel_task"])


# --- Subtasks ---------------------------------------------------------------------------------------


def _subtask_operation(request, taskInstanceId, subtaskInstanceId, verb: Verb, **options):
    task_id = parse.identifier(taskInstanceId, "taskInstanceId")
    subtask_id = parse.identifier(subtaskInstanceId, "subtaskInstanceId")
    task = access.get_operable_task_for_user(request.user, task_id, verb.key)
    with enqueue.collect_queued() as queued:
        subtask = verb.perform(
            task,
            subtask_id,
            actor=request.user,
            reason=operation_reason(request),
            **options,
        )
    return ok(
        request, s.SubtaskInstanceSerializer.represent(subtask), notice=_queued_notice(queued)
    )


def _subtask_schema(operation_id: str, summary: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        parameters=[TASK_ID, SUBTASK_ID],
        request=s.OperationRequestSerializer,
        responses={200: s.SubtaskInstanceResponse, **_errors(400, 404)},
        tags=["subtasks"],
    )


@_subtask_schema("retrySubtask", "Run a FAILED subtask again")
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def subtask_retry(request, taskInstanceId, subtaskInstanceId):
    return _subtask_operation(request, taskInstanceId, subtaskInstanceId, VERBS["subtask_retry"])


@_subtask_schema("skipSubtask", "Set a FAILED subtask to success (skip it)")
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def subtask_skip(request, taskInstanceId, subtaskInstanceId):
    return _subtask_operation(request, taskInstanceId, subtaskInstanceId, VERBS["skip"])


QUEUED = OpenApiParameter(
    "queued",
    str,
    enum=["true", "false"],
    description="Extension of OCP's state machine. false (the default): OCP's rule, only a "
    "RUNNING subtask can be canceled and a READY one is refused with 20003. true: a READY "
    "subtask (queued, waiting for a worker) can be canceled too; it ends FAILED with "
    "operation CANCEL at once, without a worker, and a worker that takes its message later "
    "runs nothing.",
)


@_subtask_schema("cancelSubtask", "Stop a RUNNING subtask; it ends FAILED with operation CANCEL")
@extend_schema(parameters=[TASK_ID, SUBTASK_ID, QUEUED])
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def subtask_cancel(request, taskInstanceId, subtaskInstanceId):
    # OCP's clients know cancel as RUNNING-only and may rely on its refusal of a READY
    # subtask; the queued case is asked for explicitly (the pages always ask for it).
    queued = parse.choice(clean_params(request), "queued", ("true", "false"), default="false")
    return _subtask_operation(
        request,
        taskInstanceId,
        subtaskInstanceId,
        VERBS["cancel"],
        queued=queued == "true",
    )


APPROVAL_DESCRIPTION = (
    "An extension of OCP's state machine. An approval gate (nodeType APPROVAL_TASK) waits "
    "RUNNING, holding no worker, with its `approval` object beside it. {what} Needs the "
    "tasks.approve_subtaskinstance permission in the task's cluster, the gate's own "
    "permission and role when it names them, and a reason; whoever started the task is "
    "refused (30014) unless the gate allows it. Refused with 20003 when the subtask is "
    "not a waiting approval gate."
)


@_subtask_schema("approveSubtask", "Approve a waiting approval gate (extension)")
@extend_schema(
    description=APPROVAL_DESCRIPTION.format(
        what="Approving ends it SUCCESSFUL and the steps after it run."
    )
)
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def subtask_approve(request, taskInstanceId, subtaskInstanceId):
    return _subtask_operation(request, taskInstanceId, subtaskInstanceId, VERBS["approve"])


@_subtask_schema("rejectSubtask", "Reject a waiting approval gate (extension)")
@extend_schema(
    description=APPROVAL_DESCRIPTION.format(
        what="Rejecting ends it FAILED, and the task fails as after any failed step."
    )
)
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def subtask_reject(request, taskInstanceId, subtaskInstanceId):
    return _subtask_operation(request, taskInstanceId, subtaskInstanceId, VERBS["reject"])


@extend_schema(
    operation_id="getSubtaskLog",
    summary="Read a subtask's log, whole or incrementally",
    description=(
        "Without parameters: the whole log, {log}. To tail, pass offset (bytes already read) "
        "and optionally limit; read again from nextOffset until finished is true and "
        "nextOffset equals size. tail=N reads the last N bytes; with offset, the last N "
        "bytes at or after offset. attempt=N reads only what attempt N wrote (offsets stay "
        "positions in the whole log; finished: that attempt has ended)."
    ),
    parameters=[
        TASK_ID,
        SUBTASK_ID,
        OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": INT64_MAX}),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": LOG_READ_MAX}),
        OpenApiParameter("tail", {"type": "integer", "minimum": 1, "maximum": LOG_READ_MAX}),
        OpenApiParameter(
            "attempt",
            {"type": "integer", "minimum": 1},
            description="One attempt's log (1 is the first run; at most the latest).",
        ),
    ],
    responses={200: s.SubtaskLogResponse, **_errors(400, 404)},
    tags=["subtasks"],
)
@api_view(["GET"])
def subtask_log(request, taskInstanceId, subtaskInstanceId):
    task_id = parse.identifier(taskInstanceId, "taskInstanceId")
    subtask_id = parse.identifier(subtaskInstanceId, "subtaskInstanceId")
    params = clean_params(request)
    offset = parse.integer(params, "offset", default=0, minimum=0, maximum=INT64_MAX)
    limit = parse.integer(params, "limit", minimum=1, maximum=LOG_READ_MAX)
    tail = parse.integer(params, "tail", minimum=1, maximum=LOG_READ_MAX)
    task = access.get_task_for_user(request.user, task_id)
    subtask = selectors.subtask_get(task_id=task.pk, subtask_id=subtask_id)
    attempt = parse.integer(params, "attempt", minimum=1, maximum=max(1, subtask.attempt))
    if tail is not None:
        # The last `tail` bytes; with an offset, none before it (what was read already).
        start = max(offset, subtask.log_size - tail)
        piece = selectors.log_read(subtask=subtask, offset=start, limit=tail, attempt=attempt)
    else:
        piece = selectors.log_read(subtask=subtask, offset=offset, limit=limit, attempt=attempt)
    return ok(
        request,
        {
            "log": piece.text,
            "offset": piece.offset,
            "nextOffset": piece.next_offset,
            "size": piece.size,
            "finished": piece.finished,
            "truncated": piece.truncated,
        },
    )


# --- Diagnosis download ------------------------------------------------------------------------------


@extend_schema(
    operation_id="downloadDiagnosis",
    summary="Download a zip: the task summary and one log file per subtask attempt",
    parameters=[TASK_ID],
    request=None,
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="A zip file."),
        **_errors(400, 404),
    },
    tags=["tasks"],
)
@api_view(["POST"])
@parser_classes(OPERATION_PARSERS)
def task_download_diagnosis(request, taskInstanceId):
    task = access.get_task_for_user(
        request.user, parse.identifier(taskInstanceId, "taskInstanceId")
    )
    return diagnosis.diagnosis_response(task)


# --- Info and the catch-all -----------------------------------------------------------------------


@functools.cache
def _version() -> str:
    """The installed package's version, or pyproject's when running from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("taskcenter")
    except PackageNotFoundError:
        pyproject = Path(settings.BASE_DIR) / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0.0.0"


@extend_schema(
    operation_id="getInfo",
    summary="Build and version information (a health check; no authentication needed)",
    responses={200: s.InfoResponse, **_errors()},
    auth=[],
    tags=["system"],
)
@api_view(["GET"])
@permission_classes([AllowAny])
def info(request):
    build = _version()
    return ok(
        request,
        {
            "name": "taskcenter",
            "version": build,
            "buildVersion": build,
            "buildTime": getattr(settings, "TASKCENTER_BUILD_TIME", None),
            "apiVersion": API_VERSION,
            "time": iso(timezone.now()),
            "timeZone": settings.TIME_ZONE,
            "server": SERVER,
        },
    )


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def not_found(request, *args, **kwargs):
    raise drf.NotFound(f"There is no API endpoint at {request.method} {request.path}.")
