"""The OCP shapes: BasicTaskInstance, WrappedTaskInstance, SubtaskInstance and friends.

The declared fields document the shapes (they make the OpenAPI schema); each
to_representation builds the dict directly, because a page of 2000 tasks with their
subtasks is tens of thousands of objects and DRF's field-by-field path is several times
slower. tests/api/test_contract.py and the schemathesis run keep the two in step.

Where the docs and real servers spell a field differently, both spellings are emitted:
downstream/downstreams, paralleIdx/parallelIdx, tenant/tenantInfo.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from taskcenter.api.envelope import MicrosIso, iso
from taskcenter.tasks import models
from taskcenter.tasks.definitions import approval_settings
from taskcenter.tasks.selectors import SubtaskBrief, SubtaskRow, TaskRow


@extend_schema_field(OpenApiTypes.INT64)
class Int64Field(serializers.IntegerField):
    """A Long in OCP's docs."""


def _int64(**kwargs):
    return Int64Field(**kwargs)


def _time(**kwargs):
    return serializers.DateTimeField(allow_null=True, **kwargs)


class _Fast(serializers.Serializer):
    """A read-only serializer whose output comes from `represent(instance)`."""

    def to_representation(self, instance):
        return self.represent(instance)

    @staticmethod
    def represent(instance):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def represent_optional(cls, instance):
        """`represent(instance)`, and null for a missing one (a nullable relation)."""
        return None if instance is None else cls.represent(instance)


# --- Nested objects ------------------------------------------------------------------------------


class ClusterSerializer(_Fast):
    """The cluster the task works on."""

    id = _int64(help_text="The ID of the OceanBase cluster in this task center.")
    name = serializers.CharField()
    obClusterId = _int64(help_text="The ID of the cluster in OceanBase.")
    type = serializers.ChoiceField(choices=models.Cluster.Type.choices)

    @staticmethod
    def represent(cluster: models.Cluster):
        return {
            "id": cluster.pk,
            "name": cluster.name,
            "obClusterId": cluster.ob_cluster_id,
            "type": cluster.type,
        }


class TenantSerializer(_Fast):
    """The tenant the task works on."""

    id = _int64(help_text="The ID of the tenant in this task center.")
    name = serializers.CharField()
    obTenantId = _int64(help_text="The ID of the tenant in OceanBase.")
    obClusterId = _int64(
        help_text="Same value as obTenantId: the spelling of the Chinese documentation."
    )
    clusterId = _int64(help_text="The task center ID of the tenant's cluster.")
    mode = serializers.ChoiceField(choices=models.Tenant.Mode.choices)

    @staticmethod
    def represent(tenant: models.Tenant):
        return {
            "id": tenant.pk,
            "name": tenant.name,
            "obTenantId": tenant.ob_tenant_id,
            "obClusterId": tenant.ob_tenant_id,
            "clusterId": tenant.cluster_id,
            "mode": tenant.mode,
        }


class CreatorSerializer(_Fast):
    """The user who created the task."""

    id = _int64()
    name = serializers.CharField()

    @staticmethod
    def represent(user: AbstractBaseUser):
        return {"id": user.pk, "name": user.get_username()}


# --- Subtasks -------------------------------------------------------------------------------------


class BasicSubtaskInstanceSerializer(_Fast):
    """A subtask as listed with its task in the task list."""

    id = _int64()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=models.SubtaskStatus.choices)
    operation = serializers.ChoiceField(choices=models.SubtaskRunMode.choices)
    seriesId = _int64()

    @staticmethod
    def represent(sub: models.SubtaskInstance | SubtaskBrief):
        return {
            "id": sub.pk,
            "name": sub.name,
            "description": sub.description,
            "status": sub.status,
            "operation": sub.operation,
            "seriesId": sub.series_id,
        }


class ApprovalDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approved", "rejected", "timed out"])
    by = serializers.CharField(help_text="Who decided (system for a timeout).")
    reason = serializers.CharField()
    at = serializers.DateTimeField()


class ApprovalSerializer(_Fast):
    """An approval gate: who may decide it, until when it waits, and its decision."""

    waiting = serializers.BooleanField(help_text="Waiting for a decision now.")
    permission = serializers.CharField()
    role = serializers.CharField(allow_blank=True, help_text="A role the approver must hold.")
    starterMayApprove = serializers.BooleanField(
        help_text="Whether whoever started the task may decide it (false: four eyes)."
    )
    onTimeout = serializers.ChoiceField(choices=["fail", "approve"])
    expiresAt = _time(help_text="When the gate times out, while it waits.")
    decision = ApprovalDecisionSerializer(allow_null=True)

    @staticmethod
    def represent(sub: models.SubtaskInstance | SubtaskRow):
        gate = approval_settings(sub.action)
        waiting = sub.status == models.SubtaskStatus.RUNNING
        expires = (
            sub.start_time + timedelta(seconds=sub.timeout) if waiting and sub.start_time else None
        )
        decided = (sub.result or {}).get("approval") if isinstance(sub.result, dict) else None
        return {
            "waiting": waiting,
            "permission": gate["permission"],
            "role": gate["role"],
            "starterMayApprove": gate["starterMayApprove"],
            "onTimeout": gate["onTimeout"],
            "expiresAt": iso(expires),
            "decision": None if waiting else decided,
        }


class SubtaskInstanceSerializer(_Fast):
    """A subtask with everything OCP reports about it."""

    id = _int64()
    name = serializers.CharField()
    seriesId = _int64(help_text="The position of the subtask in the task (topological order).")
    description = serializers.CharField(allow_blank=True)
    timeout = serializers.IntegerField(help_text="Seconds.")
    status = serializers.ChoiceField(choices=models.SubtaskStatus.choices)
    operation = serializers.ChoiceField(choices=models.SubtaskRunMode.choices)
    executor = serializers.CharField(allow_blank=True)
    runTime = serializers.IntegerField(help_text="How many times the subtask has run.")
    retryCount = serializers.IntegerField(help_text="Automatic retries allowed after a failure.")
    nodeType = serializers.ChoiceField(choices=models.NodeType.choices)
    paralleIdx = serializers.IntegerField(help_text="The docs' spelling of parallelIdx.")
    parallelIdx = serializers.IntegerField(help_text="-1 when the subtask is not parallel.")
    upstreams = serializers.ListField(child=_int64())
    downstream = serializers.ListField(child=_int64(), help_text="The docs' spelling.")
    downstreams = serializers.ListField(child=_int64(), help_text="The servers' spelling.")
    prohibitRollback = serializers.BooleanField()
    createTime = _time()
    startTime = _time()
    finishTime = _time()
    result = serializers.JSONField(
        allow_null=True, help_text="What the last successful run returned, if anything."
    )
    approval = ApprovalSerializer(
        required=False,
        help_text="An extension, on approval gates (nodeType APPROVAL_TASK) only: a gate "
        "waiting for a decision is RUNNING, as OCP's clients expect of a step under way, "
        "with waiting true here.",
    )

    @staticmethod
    def represent(sub: models.SubtaskInstance):
        data = SubtaskInstanceSerializer._ocp(sub)
        if sub.node_type == models.NodeType.APPROVAL_TASK:
            data["approval"] = ApprovalSerializer.represent(sub)
        return data

    @staticmethod
    def represent_rows(rows: list[SubtaskRow]) -> list[dict]:
        """represent() of each of a task's subtasks read as SubtaskRow tuples
        (selectors.task_subtask_rows): the same dicts, their times formatted from integer
        microseconds (envelope.MicrosIso) and each edge list shared by its two spellings
        (they are the same list in the JSON)."""
        time = MicrosIso()
        approval = models.NodeType.APPROVAL_TASK
        subtasks = []
        for row in rows:
            downstreams = row.downstream_ids
            data = {
                "id": row.pk,
                "name": row.name,
                "seriesId": row.series_id,
                "description": row.description,
                "timeout": row.timeout,
                "status": row.status,
                "operation": row.operation,
                "executor": row.executor,
                "runTime": row.run_time,
                "retryCount": row.retry_count,
                "nodeType": row.node_type,
                "paralleIdx": row.parallel_idx,
                "parallelIdx": row.parallel_idx,
                "upstreams": row.upstream_ids,
                "downstream": downstreams,
                "downstreams": downstreams,
                "prohibitRollback": row.prohibit_rollback,
                "createTime": time(row.create_us),
                "startTime": time(row.start_us),
                "finishTime": time(row.finish_us),
                "result": row.result,
            }
            if row.node_type == approval:
                data["approval"] = ApprovalSerializer.represent(row)
            subtasks.append(data)
        return subtasks

    @staticmethod
    def _ocp(sub: models.SubtaskInstance) -> dict:
        return {
            "id": sub.pk,
            "name": sub.name,
            "seriesId": sub.series_id,
            "description": sub.description,
            "timeout": sub.timeout,
            "status": sub.status,
            "operation": sub.operation,
            "executor": sub.executor,
            "runTime": sub.run_time,
            "retryCount": sub.retry_count,
            "nodeType": sub.node_type,
            "paralleIdx": sub.parallel_idx,
            "parallelIdx": sub.parallel_idx,
            "upstreams": list(sub.upstream_ids),
            "downstream": list(sub.downstream_ids),
            "downstreams": list(sub.downstream_ids),
            "prohibitRollback": sub.prohibit_rollback,
            "createTime": iso(sub.create_time),
            "startTime": iso(sub.start_time),
            "finishTime": iso(sub.finish_time),
            "result": sub.result,
        }


# --- Tasks ----------------------------------------------------------------------------------------


def _task_common(task: models.TaskInstance) -> dict:
    tenant = TenantSerializer.represent_optional(task.tenant)
    return {
        "id": task.pk,
        "name": task.name,
        "cluster": ClusterSerializer.represent_optional(task.cluster),
        "tenant": tenant,
        "tenantInfo": tenant,
        "creator": CreatorSerializer.represent_optional(task.creator),
        "status": task.status,
        "type": task.type,
        "operation": task.operation,
        "createTime": iso(task.create_time),
        "startTime": iso(task.start_time),
        "finishTime": iso(task.finish_time),
    }


class _TaskFields(_Fast):
    """Fields shared by both task shapes."""

    id = _int64()
    name = serializers.CharField()
    cluster = ClusterSerializer(allow_null=True)
    tenant = TenantSerializer(allow_null=True, help_text="The docs' spelling of tenantInfo.")
    tenantInfo = TenantSerializer(allow_null=True, help_text="OCP Express's spelling.")
    creator = CreatorSerializer(allow_null=True)
    status = serializers.ChoiceField(choices=models.TaskStatus.choices)
    type = serializers.ChoiceField(choices=models.TaskType.choices)
    operation = serializers.ChoiceField(choices=models.TaskRunMode.choices)
    createTime = _time()
    startTime = _time()
    finishTime = _time()


class BasicTaskInstanceSerializer(_TaskFields):
    """A task as listed, with its subtasks in brief."""

    subtaskTotal = serializers.IntegerField()
    subtaskSuccessful = serializers.IntegerField()
    subtasks = BasicSubtaskInstanceSerializer(many=True)

    @staticmethod
    def represent(task: models.TaskInstance):
        # selectors.task_page loaded the page's subtasks in one query.
        brief = getattr(task, "subtasks_brief", None)
        rows = brief if brief is not None else task.subtasks.order_by("series_id", "pk")
        subtasks = [BasicSubtaskInstanceSerializer.represent(s) for s in rows]
        data = _task_common(task)
        data["subtaskTotal"] = len(subtasks)
        data["subtaskSuccessful"] = sum(1 for s in subtasks if s["status"] == "SUCCESSFUL")
        data["subtasks"] = subtasks
        return data

    @staticmethod
    def represent_rows(rows: list[TaskRow]) -> list[dict]:
        """represent_row() of a page's tasks, their times formatted by one MicrosIso."""
        time = MicrosIso()
        return [BasicTaskInstanceSerializer.represent_row(row, time) for row in rows]

    @staticmethod
    def represent_row(row: TaskRow, time: MicrosIso | None = None):
        """represent() of a task read as a TaskRow (selectors.task_list_page): the same
        dict, built from one tuple instead of four model instances."""
        if time is None:
            time = MicrosIso()
        tenant = (
            None
            if row.tenant_id is None
            else {
                "id": row.tenant_id,
                "name": row.tenant_name,
                "obTenantId": row.tenant_ob_id,
                "obClusterId": row.tenant_ob_id,
                "clusterId": row.tenant_cluster_id,
                "mode": row.tenant_mode,
            }
        )
        subtasks = [
            {
                "id": pk,
                "name": name,
                "description": description,
                "status": status,
                "operation": operation,
                "seriesId": series_id,
            }
            for _, pk, name, description, status, operation, series_id in row.subtasks
        ]
        return {
            "id": row.pk,
            "name": row.name,
            "cluster": None
            if row.cluster_id is None
            else {
                "id": row.cluster_id,
                "name": row.cluster_name,
                "obClusterId": row.cluster_ob_id,
                "type": row.cluster_type,
            },
            "tenant": tenant,
            "tenantInfo": tenant,
            "creator": None
            if row.creator_id is None
            else {"id": row.creator_id, "name": row.creator_name},
            "status": row.status,
            "type": row.type,
            "operation": row.operation,
            "createTime": time(row.create_us),
            "startTime": time(row.start_us),
            "finishTime": time(row.finish_us),
            "subtaskTotal": len(subtasks),
            "subtaskSuccessful": sum(1 for sub in subtasks if sub["status"] == "SUCCESSFUL"),
            "subtasks": subtasks,
        }


class WrappedTaskInstanceSerializer(_TaskFields):
    """A task with every subtask in full."""

    taskDefinitionId = _int64(help_text="The task definition, or -1 when there is none.")
    executor = serializers.CharField(allow_blank=True)
    prohibitRollback = serializers.BooleanField()
    subtasks = SubtaskInstanceSerializer(many=True)

    def to_representation(self, instance):
        task, subtasks = instance
        return self.represent(task, subtasks)

    @staticmethod
    def represent(  # type: ignore[override]
        task: models.TaskInstance, subtasks: list[models.SubtaskInstance] | list[SubtaskRow]
    ):
        data = _task_common(task)
        data["taskDefinitionId"] = task.definition_id if task.definition_id is not None else -1
        data["executor"] = task.executor
        data["prohibitRollback"] = task.prohibit_rollback
        rows = [sub for sub in subtasks if isinstance(sub, SubtaskRow)]
        data["subtasks"] = (
            SubtaskInstanceSerializer.represent_rows(rows)
            if rows
            else [
                SubtaskInstanceSerializer.represent(sub)
                for sub in subtasks
                if isinstance(sub, models.SubtaskInstance)
            ]
        )
        return data


# --- Small payloads -------------------------------------------------------------------------------


class PageInfoSerializer(serializers.Serializer):
    """Paging of a list."""

    totalElements = _int64()
    totalPages = _int64()
    number = serializers.IntegerField(help_text="1-based page number.")
    size = serializers.IntegerField()


class TaskPageSerializer(serializers.Serializer):
    """One page of the task list."""

    contents = BasicTaskInstanceSerializer(many=True)
    page = PageInfoSerializer()


class CreatorListSerializer(serializers.Serializer):
    """The users who created tasks."""

    contents = CreatorSerializer(many=True)


class NamedChoiceSerializer(serializers.Serializer):
    id = _int64()
    name = serializers.CharField()


class TaskFilterOptionsSerializer(serializers.Serializer):
    """What the task list's filter menus offer the caller: only from the clusters whose
    tasks the caller may see."""

    clusters = NamedChoiceSerializer(many=True, help_text="For clusterId.")
    hosts = NamedChoiceSerializer(many=True, help_text="For hostId; name is the address.")
    creators = CreatorSerializer(many=True, help_text="For creator (by name).")


class SubtaskLogSerializer(serializers.Serializer):
    """A piece of a subtask's log (the whole log when no offset or limit is given)."""

    log = serializers.CharField(allow_blank=True, help_text="The log text read.")
    offset = _int64(help_text="Byte offset where this read started.")
    nextOffset = _int64(help_text="Byte offset to ask for next (offset + bytes read).")
    size = _int64(help_text="The log's size in bytes so far.")
    finished = serializers.BooleanField(
        help_text="True when the subtask is not running: the log will not grow."
    )
    truncated = serializers.BooleanField(help_text="True when the log reached the size cap.")


class InfoSerializer(serializers.Serializer):
    """What is answering."""

    name = serializers.CharField()
    version = serializers.CharField()
    buildVersion = serializers.CharField()
    buildTime = serializers.CharField(allow_null=True)
    apiVersion = serializers.CharField()
    time = serializers.DateTimeField()
    timeZone = serializers.CharField()
    server = serializers.CharField()


class OperationRequestSerializer(serializers.Serializer):
    """Optional body of an operation."""

    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Kept in the audit trail."
    )


# --- Envelopes (schema only) ----------------------------------------------------------------------


class _EnvelopeMeta(serializers.Serializer):
    """OCP's response envelope."""

    successful = serializers.BooleanField()
    timestamp = serializers.DateTimeField()
    duration = serializers.IntegerField(help_text="Milliseconds spent on the request.")
    status = serializers.IntegerField(help_text="The HTTP status.")
    traceId = serializers.CharField(help_text="Also in the server's log lines.")
    server = serializers.CharField(help_text="The answering host.")


def enveloped(name: str, data) -> type[serializers.Serializer]:
    """A schema component {data, successful, timestamp, duration, status, traceId, server,
    notice}."""
    notice = serializers.CharField(
        required=False,
        help_text="Only when the operation is done but its work could not reach the "
        "workers yet (the broker does not answer): it is queued and sent when the broker is "
        "back.",
    )
    return type(name, (_EnvelopeMeta,), {"data": data, "notice": notice, "__module__": __name__})


class ErrorDetailSerializer(serializers.Serializer):
    """What went wrong."""

    code = serializers.IntegerField(
        help_text="OCP's code: 20000 task not found, 20003 invalid state, 20004 rollback "
        "prohibited, 30000 not authenticated, 30004 bad credentials, 30014 not permitted, "
        "10001 invalid parameter, 10002 not found, 10010 unexpected."
    )
    message = serializers.CharField()
    debugMessage = serializers.CharField(allow_null=True)
    target = serializers.CharField(allow_null=True, help_text="The bad parameter, if any.")
    subErrors = serializers.ListField(child=serializers.DictField())


class ErrorResponseSerializer(_EnvelopeMeta):
    """OCP's error envelope: successful is false."""

    error = ErrorDetailSerializer()


TaskPageResponse = enveloped("TaskPageResponse", TaskPageSerializer())
WrappedTaskInstanceResponse = enveloped(
    "WrappedTaskInstanceResponse", WrappedTaskInstanceSerializer()
)
SubtaskInstanceResponse = enveloped("SubtaskInstanceResponse", SubtaskInstanceSerializer())
SubtaskLogResponse = enveloped("SubtaskLogResponse", SubtaskLogSerializer())
CreatorListResponse = enveloped("CreatorListResponse", CreatorListSerializer())
TaskFilterOptionsResponse = enveloped("TaskFilterOptionsResponse", TaskFilterOptionsSerializer())
InfoResponse = enveloped("InfoResponse", InfoSerializer())
