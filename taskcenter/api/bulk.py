"""Bulk operations in OCP's v2 facade: one task verb asked of many tasks, with a dry run.

POST /api/v2/tasks/instances/bulk/{retry|rollback|cancel} judges the selection (by ids or
by the list's filter) and, unless it is a dry run, starts doing the verb on every
accepted task in the background; GET .../bulk/{bulkId} follows it and POST
.../bulk/{bulkId}/stop stops it. The judgement and the work are
taskcenter.tasks.verbs.bulk's; who may select what is taskcenter.accounts.access's.
"""

from __future__ import annotations

from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes

from taskcenter.accounts import access
from taskcenter.api import serializers as s
from taskcenter.api.envelope import iso, ok
from taskcenter.api.parsers import BoundedJSONParser
from taskcenter.api.views import _errors, operation_reason
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter
from taskcenter.tasks import verbs
from taskcenter.tasks.filters import TaskInstanceFilter
from taskcenter.tasks.models import BulkOperation

BODY_FIELDS = ("ids", "filter", "dryRun", "reason")
# The filter's values: what the list endpoint takes as query parameters.
FILTER_VALUE = (str, int)


_SELECTED_IDS = {
    "type": "array",
    "minItems": 1,
    "maxItems": verbs.BULK_MAX,
    "items": {"type": "integer", "format": "int64", "minimum": 1, "maximum": parse.INT64_MAX},
    "description": "Task ids (at least one).",
}
_FILTER_VALUE = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
_FILTER = {
    "type": "object",
    "additionalProperties": {"anyOf": [_FILTER_VALUE, {"type": "array", "items": _FILTER_VALUE}]},
    "description": 'The list\'s query parameters, e.g. {"status": "FAILED", "clusterId": 3}; '
    "a value may be a list (status: [FAILED, RUNNING]). page, size and sort are ignored; "
    "another name is refused.",
}
_COMMON = {
    "dryRun": {
        "type": "boolean",
        "description": "Only say what would be done and refused (default false).",
    },
    "reason": {
        "type": "string",
        "maxLength": 2000,
        "description": "Required by rollback and cancel; kept in every audit entry.",
    },
}
# Which tasks: `ids`, or `filter` (the list endpoint's query parameters), never both; at
# most 10,000 tasks either way; no other field (_body).
BULK_REQUEST = {
    "application/json": {
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["ids"],
                "properties": {"ids": _SELECTED_IDS, **_COMMON},
            },
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["filter"],
                "properties": {"filter": _FILTER, **_COMMON},
            },
        ]
    }
}


class BulkRefusedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.IntegerField(help_text="20000 not found, 30014 not permitted, 20003/20004.")
    message = serializers.CharField()


class BulkAnswerSerializer(serializers.Serializer):
    bulkId = serializers.UUIDField(allow_null=True, help_text="null for a dry run.")
    dryRun = serializers.BooleanField()
    operation = serializers.CharField()
    matched = serializers.IntegerField()
    accepted = serializers.ListField(child=serializers.IntegerField())
    refused = BulkRefusedSerializer(many=True)


class BulkProgressSerializer(serializers.Serializer):
    bulkId = serializers.UUIDField()
    operation = serializers.CharField()
    state = serializers.ChoiceField(choices=BulkOperation.State.values)
    actor = serializers.CharField()
    reason = serializers.CharField()
    matched = serializers.IntegerField()
    total = serializers.IntegerField(help_text="The tasks accepted.")
    done = serializers.IntegerField()
    refused = serializers.IntegerField(help_text="Refused when their turn came (state changed).")
    failed = serializers.IntegerField()
    stopped = serializers.IntegerField(help_text="Left as they were: the operation was stopped.")
    finished = serializers.BooleanField(help_text="True once nothing is left to do.")
    createdAt = serializers.CharField()
    finishedAt = serializers.CharField(allow_null=True)


BulkAnswerResponse = s.enveloped("BulkAnswerResponse", BulkAnswerSerializer())
BulkProgressResponse = s.enveloped("BulkProgressResponse", BulkProgressSerializer())
BULK_ID = OpenApiParameter(
    "bulkId",
    {"type": "string", "format": "uuid"},
    OpenApiParameter.PATH,
    description="The bulk id.",
)


def _body(request) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise InvalidParameter.because("body", "expected a JSON object.")
    unknown = sorted(set(data) - set(BODY_FIELDS))
    if unknown:
        raise InvalidParameter.because(
            str(unknown[0])[:100],
            "is not a field of a bulk operation (ids, filter, dryRun, reason).",
        )
    if ("ids" in data) == ("filter" in data):
        raise InvalidParameter.because("ids", "give either ids or filter (one of them).")
    return data


def _ids(data: dict) -> list[int]:
    ids = data["ids"]
    if not isinstance(ids, list):
        raise InvalidParameter.because("ids", "must be a list of task ids.")
    if len(ids) > verbs.BULK_MAX:
        raise InvalidParameter.because(
            "ids",
            f"holds {len(ids):,} ids; a bulk operation takes at most {verbs.BULK_MAX:,}.",
        )
    if not ids:
        raise InvalidParameter.because("ids", "give at least one task id.")
    if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in ids):
        raise InvalidParameter.because("ids", "must be a list of task ids (integers).")
    return [parse.identifier(pk, "ids") for pk in ids]


def _filter(data: dict) -> QueryDict:
    given = data["filter"]
    if not isinstance(given, dict):
        raise InvalidParameter.because("filter", "must be an object of the list's parameters.")
    query = QueryDict(mutable=True)
    for key, value in given.items():
        if key in ("page", "size", "sort"):
            continue
        if key not in TaskInstanceFilter.base_filters:
            # The list ignores a parameter it does not know (OCP does); a bulk operation
            # must not: a misspelt filter would select every task the caller sees.
            raise InvalidParameter.because(
                f"filter.{key}"[:100],
                f"is not a filter of the task list ({', '.join(TaskInstanceFilter.base_filters)}).",
            )
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) or not isinstance(v, FILTER_VALUE) for v in values):
            raise InvalidParameter.because(
                f"filter.{key}"[:100], "must be a text, a number or a list of them."
            )
        query.setlist(key, [str(v) for v in values])
    return parse.without_nul(query)


def _dry_run(data: dict) -> bool:
    value = data.get("dryRun", False)
    if not isinstance(value, bool):
        raise InvalidParameter.because("dryRun", "must be true or false.")
    return value


def _bulk_operation(request, operation: str):
    data = _body(request)
    dry_run = _dry_run(data)
    reason = _reason(data)
    verb_key = verbs.BULK_VERBS[operation]
    if "ids" in data:
        selection = access.bulk_selection(request.user, verb_key, ids=_ids(data))
    else:
        selection = access.bulk_selection(request.user, verb_key, params=_filter(data))
    if dry_run:
        bulk_id, judgement = None, verbs.bulk_judge(selection)
    else:
        bulk, judgement = verbs.bulk_start(selection, actor=request.user, reason=reason)
        bulk_id = str(bulk.pk)
    answer = {
        "bulkId": bulk_id,
        "dryRun": dry_run,
        "operation": operation,
        "matched": judgement.matched,
        "accepted": judgement.accepted,
        "refused": [
            {"id": refused.task_id, "code": refused.code, "message": refused.message}
            for refused in judgement.refused
        ],
    }
    return ok(request, answer, status=200 if dry_run else 202)


def _reason(data: dict) -> str:
    """The reason, checked as a single operation's is; a text (a number is not one)."""
    if not isinstance(data.get("reason", ""), str):
        raise InvalidParameter.because("reason", "must be a text.")
    serializer = s.OperationRequestSerializer(data={"reason": data.get("reason", "")})
    if not serializer.is_valid():
        field, messages = next(iter(serializer.errors.items()))
        raise InvalidParameter.because(field, " ".join(map(str, messages)))
    return serializer.validated_data.get("reason", "")


def _schema(operation: str, summary: str):
    return extend_schema(
        operation_id=f"bulk{operation.capitalize()}Tasks",
        summary=summary,
        description="Judges every selected task (dryRun: true stops there): accepted, or "
        "refused with its code and why (not found or not visible 20000, outside the "
        "clusters of the caller's permission 30014, the state does not allow it 20003, "
        "rollback prohibited 20004). Otherwise answers 202 with the bulkId and does the "
        "single operation on each accepted task in the background, one audit entry each "
        "with the bulkId; follow it at GET .../bulk/{bulkId}. More than 10,000 tasks is "
        "refused whole (10001).",
        request=BULK_REQUEST,
        responses={200: BulkAnswerResponse, 202: BulkAnswerResponse, **_errors(400)},
        tags=["bulk"],
    )


@_schema("retry", "Retry many FAILED tasks (dry run, or in the background)")
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def bulk_retry(request):
    return _bulk_operation(request, "retry")


@_schema("rollback", "Roll back many FAILED tasks (dry run, or in the background)")
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def bulk_rollback(request):
    return _bulk_operation(request, "rollback")


@_schema("cancel", "Cancel many RUNNING tasks (dry run, or in the background)")
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def bulk_cancel(request):
    return _bulk_operation(request, "cancel")


def progress_data(progress: verbs.BulkProgress) -> dict:
    bulk = progress.bulk
    names = {key: name for name, key in verbs.BULK_VERBS.items()}
    return {
        "bulkId": str(bulk.pk),
        "operation": names.get(bulk.verb, bulk.verb),
        "state": bulk.state,
        "actor": bulk.actor_name,
        "reason": bulk.reason,
        "matched": bulk.matched,
        "total": progress.total,
        "done": progress.done,
        "refused": progress.refused,
        "failed": progress.failed,
        "stopped": progress.stopped,
        "finished": progress.finished,
        "createdAt": iso(bulk.created_at),
        "finishedAt": iso(bulk.finished_at),
    }


@extend_schema(
    operation_id="getBulkOperation",
    summary="Follow a bulk operation: its tasks counted by outcome",
    parameters=[BULK_ID],
    responses={200: BulkProgressResponse, **_errors(400, 404)},
    tags=["bulk"],
)
@api_view(["GET"])
def bulk_detail(request, bulkId):
    bulk = access.get_bulk_for_user(request.user, bulkId)
    return ok(request, progress_data(verbs.bulk_progress(bulk=bulk)))


@extend_schema(
    operation_id="stopBulkOperation",
    summary="Stop a running bulk operation: the tasks not reached yet are left as they are",
    parameters=[BULK_ID],
    request=s.OperationRequestSerializer,
    responses={200: BulkProgressResponse, **_errors(400, 404)},
    tags=["bulk"],
)
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def bulk_stop(request, bulkId):
    bulk = access.get_stoppable_bulk_for_user(request.user, bulkId)
    verbs.bulk_stop(bulk=bulk, actor=request.user, reason=operation_reason(request))
    return ok(request, progress_data(verbs.bulk_progress(bulk=bulk)))
