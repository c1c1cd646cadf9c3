"""The Jobs API, the Run form's twin for programs: the jobs (task definitions) with their
declared parameters, and starting a run of one on a cluster of the caller's scope.

GET  /api/v2/jobs                 every job: name, versions, parameters
GET  /api/v2/jobs/{name}          one job
POST /api/v2/jobs/{name}/runs     {"parameters": {...}, "clusterId": N, "tenantId": N}
                                  -> {"taskInstanceId": id}

Parameters are checked by the one validator (taskcenter.tasks.parameters), which names
every invalid one at once: the error's target is "parameters" and its subErrors name each
("parameters.seconds"). Answers are OCP's envelope; a secret's default is never shown.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes

from taskcenter.accounts import access
from taskcenter.api import serializers as s
from taskcenter.api.envelope import ok
from taskcenter.api.parsers import BoundedJSONParser
from taskcenter.api.views import _errors
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter, NotPermitted
from taskcenter.schedules import selectors as job_selectors
from taskcenter.tasks import enqueue, selectors, verbs
from taskcenter.tasks.definitions import DefinitionSpec
from taskcenter.tasks.models import Cluster, TaskDefinition, TaskInstance, Tenant

JOB_NAME = OpenApiParameter(
    "name",
    {"type": "string", "maxLength": 200},
    OpenApiParameter.PATH,
    description="The job's name (its task definition's name), URL-encoded.",
)
NAME_MAX = 200


# --- Schema ------------------------------------------------------------------------------------


# Built with type(): some of these names (label, required, source) are attributes of a
# serializer field, which a class body would seem to redefine.
JobParameterSerializer = type(
    "JobParameterSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "One declared parameter of a job.",
        "__module__": __name__,
        "name": serializers.CharField(),
        "label": serializers.CharField(),
        "type": serializers.ChoiceField(
            choices=[
                "string", "integer", "number", "boolean", "choice", "datetime", "secret", "any",
            ],
            help_text="datetime: ISO 8601 text with its zone; secret: a string never shown "
            "back; any: any JSON value.",
        ),
        "required": serializers.BooleanField(),
        "default": serializers.JSONField(allow_null=True, help_text="Never shown for a secret."),
        "min": serializers.FloatField(allow_null=True),
        "max": serializers.FloatField(allow_null=True),
        "maxLength": serializers.IntegerField(allow_null=True),
        "pattern": serializers.CharField(
            allow_null=True, help_text="Matched against the whole value."
        ),
        "choices": serializers.ListField(child=serializers.JSONField(), allow_null=True),
        "help": serializers.CharField(),
    },
)  # fmt: skip

JobSerializer = type(
    "JobSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "A job: a task definition and its declared parameters.",
        "__module__": __name__,
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "source": serializers.ChoiceField(choices=["CODE", "DATA"]),
        "version": serializers.IntegerField(help_text="The version a run starts."),
        "versions": serializers.ListField(child=serializers.IntegerField()),
        "parameters": JobParameterSerializer(many=True),
    },
)


class JobListSerializer(serializers.Serializer):
    contents = JobSerializer(many=True)


class JobRunRequestSerializer(serializers.Serializer):
    parameters = serializers.DictField(
        required=False, help_text="Parameter values by name, typed as the job declares."
    )
    clusterId = serializers.IntegerField(
        required=False,
        help_text="The cluster the run is about; required of a user scoped to clusters.",
    )
    tenantId = serializers.IntegerField(
        required=False, help_text="A tenant of that cluster (its cluster when clusterId is absent)."
    )
    repeatOf = serializers.IntegerField(
        required=False,
        help_text="Run again the task with this id (a run of this job the caller may see): "
        "its version when it can still be started, its parameters with those given here "
        "put over them, and its cluster and tenant unless clusterId or tenantId is given. "
        "The new task links to it.",
    )


class JobRunSerializer(serializers.Serializer):
    taskInstanceId = serializers.IntegerField()


JobListResponse = s.enveloped("JobListResponse", JobListSerializer())
JobResponse = s.enveloped("JobResponse", JobSerializer())
JobRunResponse = s.enveloped("JobRunResponse", JobRunSerializer())


# --- Reading -------------------------------------------------------------------------------------


def job_data(spec: DefinitionSpec, versions: list[int]) -> dict:
    return {
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "version": spec.version,
        "versions": versions or [spec.version],
        "parameters": [param.describe() for param in spec.parameters],
    }


def _versions(names: list[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    rows = TaskDefinition.objects.filter(name__in=names).order_by("version")
    for name, version in rows.values_list("name", "version"):
        found.setdefault(name, []).append(version)
    return found


def _job(raw_name: str) -> DefinitionSpec:
    name = parse.text(raw_name, "name", maximum=NAME_MAX)
    if "\x00" in name:
        raise InvalidParameter.because("name", "contains a NUL character.")
    return job_selectors.job_definition_get(key=name)


@extend_schema(
    operation_id="listJobs",
    summary="The jobs (task definitions) with their declared parameters",
    responses={200: JobListResponse, **_errors()},
    tags=["jobs"],
)
@api_view(["GET"])
def job_list(request):
    access.require_view(request.user)
    specs = job_selectors.job_definitions()
    versions = _versions([spec.name for spec in specs])
    contents = [job_data(spec, versions.get(spec.name, [])) for spec in specs]
    return ok(request, {"contents": contents})


@extend_schema(
    operation_id="getJob",
    summary="A job (task definition) with its declared parameters",
    parameters=[JOB_NAME],
    responses={200: JobResponse, **_errors(400, 404)},
    tags=["jobs"],
)
@api_view(["GET"])
def job_detail(request, name):
    access.require_view(request.user)
    spec = _job(name)
    return ok(request, job_data(spec, _versions([spec.name]).get(spec.name, [])))


# --- Starting a run ------------------------------------------------------------------------------


def _optional_id(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter.because(name, "must be a positive integer id.")
    return parse.identifier(value, name)


def run_target(user, data: dict) -> tuple[Cluster | None, Tenant | None]:
    """The run's cluster and tenant, within the clusters `user` may run jobs on. A user
    scoped to clusters must name one; a cluster outside the scope reads as unknown, so a
    scoped user learns nothing of other clusters."""
    cluster_id = _optional_id(data, "clusterId")
    tenant_id = _optional_id(data, "tenantId")
    allowed = access.run_clusters(user)
    tenant = None
    if tenant_id is not None:
        tenant = Tenant.objects.select_related("cluster").filter(pk=tenant_id).first()
        if tenant is None or (allowed is not None and tenant.cluster_id not in allowed):
            raise InvalidParameter.because("tenantId", f"there is no tenant {tenant_id}.")
        if cluster_id is None:
            cluster_id = tenant.cluster_id
        elif tenant.cluster_id != cluster_id:
            raise InvalidParameter.because(
                "tenantId", f"tenant {tenant_id} is not a tenant of cluster {cluster_id}."
            )
    if cluster_id is None:
        if allowed is not None:
            raise InvalidParameter.because(
                "clusterId", "is required: you may run jobs on some clusters only."
            )
        return None, None
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None or (allowed is not None and cluster_id not in allowed):
        raise InvalidParameter.because("clusterId", f"there is no cluster {cluster_id}.")
    return cluster, tenant


def _repeated(user, spec: DefinitionSpec, data: dict) -> TaskInstance | None:
    """The task `repeatOf` names: one `user` may see, a run of this job."""
    task_id = _optional_id(data, "repeatOf")
    if task_id is None:
        return None
    task = access.get_task_for_user(user, task_id)
    if task.definition is None or task.definition.name != spec.name:
        raise InvalidParameter.because("repeatOf", f"task {task_id} is not a run of {spec.name}.")
    return task


@extend_schema(
    operation_id="runJob",
    summary="Start a run of a job; answers the new task's id",
    description="The parameters are checked against the job's declaration; every invalid "
    "one is named at once (error.target is 'parameters', error.subErrors lists each as "
    "'parameters.<name>'). Needs the run permission on the cluster. Audited as a start.",
    parameters=[JOB_NAME],
    request=JobRunRequestSerializer,
    responses={201: JobRunResponse, **_errors(400, 404)},
    tags=["jobs"],
)
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
def job_run(request, name):
    access.require_view(request.user)
    if not access.can_run_jobs(request.user):
        raise NotPermitted(access.refusal_message("run"))
    spec = _job(name)
    data = request.data
    if not isinstance(data, dict):
        raise InvalidParameter.because("body", "expected a JSON object.")
    unknown = sorted(set(data) - {"parameters", "clusterId", "tenantId", "repeatOf"})
    if unknown:
        raise InvalidParameter.because(
            str(unknown[0])[:100],
            "is not a field of a run (parameters, clusterId, tenantId, repeatOf).",
        )
    given = data.get("parameters", {})
    if not isinstance(given, dict):
        raise InvalidParameter.because("parameters", "must be an object of names and values.")
    repeat = _repeated(request.user, spec, data)
    if repeat is not None:
        spec = selectors.definition_version_or_current(
            name=spec.name, version=repeat.definition.version if repeat.definition else None
        )
        given = {**repeat.parameters, **given}
        if "clusterId" not in data and "tenantId" not in data:
            data = {**data, "clusterId": repeat.cluster_id, "tenantId": repeat.tenant_id}
    cluster, tenant = run_target(request.user, data)
    with enqueue.collect_queued() as queued:
        task = verbs.task_start(
            definition_name=spec.name,
            version=spec.version,
            parameters=given,
            creator=request.user,
            cluster=cluster,
            tenant=tenant,
            repeat_of=repeat,
        )
    notice = enqueue.queued_notice(queued) if queued else None
    return ok(request, {"taskInstanceId": task.pk}, status=201, notice=notice)
