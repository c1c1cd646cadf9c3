"""Reads of plans, contexts and fires, shared by the API and the pages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.db.models import Min, Model, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidDefinition, InvalidParameter, TaskNotFound
from taskcenter.schedules import status
from taskcenter.schedules.models import (
    Fire,
    FireOutcome,
    Plan,
    PlanDependency,
    PlanItem,
    TriggerType,
)
from taskcenter.tasks import definitions
from taskcenter.tasks.definitions import DefinitionSpec
from taskcenter.tasks.models import (
    Cluster,
    SubtaskInstance,
    SubtaskStatus,
    TaskDefinition,
    TaskInstance,
    TaskStatus,
    Tenant,
)
from taskcenter.tasks.selectors import Changes, definition_get, row_changes, task_changes

USER_LIST_MAX = 500
LIST_MAX = 1000
SCHEDULE_ITEM_TYPES = (TriggerType.CRON_JOB, TriggerType.DEPENDENCY)

Row = TypeVar("Row", bound=Model)


# --- Filters shared by both lists ---------------------------------------------------------------


def page(params: Mapping) -> tuple[int, int]:
    """HENGSHI paging: offset (default 0) and limit (default 10)."""
    offset = parse.integer(params, "offset", default=0, minimum=0, maximum=parse.INT64_MAX)
    limit = parse.integer(params, "limit", default=10, minimum=1, maximum=LIST_MAX)
    assert offset is not None and limit is not None
    return offset, limit


def page_and_total(rows: QuerySet[Row], offset: int, limit: int) -> tuple[list[Row], int]:
    """The rows of one page and how many rows match in all (totalHits). The page is read
    with one row more than asked: when that row is not there (and the page is not past the
    end), the page tells the total and no COUNT is needed, so a client polling for the one
    running context of a plan sends one statement for its list, not two."""
    page = list(rows[offset : offset + limit + 1])
    if len(page) <= limit and (page or offset == 0):
        return page, offset + len(page)
    return page[:limit], rows.count()


def job_statuses(params: Mapping, *names: str) -> list[str]:
    """The jobStatus filters among `names` (single values or comma-separated lists)."""
    wanted: list[str] = []
    for name in names:
        for value in (params.get(name) or "").split(","):
            if not value:
                continue
            if value not in status.JOB_STATUSES:
                raise InvalidParameter.because(
                    name, f"{value!r} (use {', '.join(status.JOB_STATUSES)})."
                )
            wanted.append(value)
    return wanted


def _entity_filters(params: Mapping, prefix: str = "") -> Q:
    query = Q()
    for param, column in (("entityGroup", "entity_group"), ("entityKey", "entity_key")):
        if params.get(param):
            query &= Q(**{f"{prefix}{column}": params[param]})
    return query


def _search(params: Mapping, prefix: str = "") -> Q:
    text = (params.get("q") or "").strip()
    if not text:
        return Q()
    return (
        Q(**{f"{prefix}title__icontains": text})
        | Q(**{f"{prefix}entity_key__icontains": text})
        | Q(**{f"{prefix}entity_group__icontains": text})
    )


# --- Plans ------------------------------------------------------------------------------------


def plan_queryset(*, visible: QuerySet[Plan] | None = None) -> QuerySet[Plan]:
    """Plans among `visible` (the viewer's scope, from
    taskcenter.accounts.access.visible_plans; None: every plan, for the system's own
    reads) with their last run (context id and jobStatus) and next fire time."""
    last_run = Fire.objects.filter(plan=OuterRef("pk"), task__isnull=False).order_by("-id")
    last_status = TaskInstance.objects.filter(pk=OuterRef("last_context_id")).annotate(
        js=status.job_status()
    )
    next_fire = (
        PlanItem.objects.filter(plan=OuterRef("pk"), next_fire_at__isnull=False)
        .order_by()
        .values("plan")
        .annotate(first=Min("next_fire_at"))
        .values("first")
    )
    plans = Plan.objects.all() if visible is None else visible
    return (
        plans.select_related("created_by", "updated_by", "cluster", "tenant")
        .annotate(last_context_id=Subquery(last_run.values("task_id")[:1]))
        .annotate(
            job_status=Coalesce(Subquery(last_status.values("js")[:1]), Value(status.NONE)),
            next_start_at=Subquery(next_fire),
        )
    )


def plan_list(*, visible: QuerySet[Plan], params: Mapping) -> QuerySet[Plan]:
    plans = plan_queryset(visible=visible).filter(_entity_filters(params), _search(params))
    creators = parse.integer_list(params, "entityCreatedByList", limit=USER_LIST_MAX)
    if creators:
        plans = plans.filter(created_by_id__in=creators)
    wanted = job_statuses(params, "jobStatusList")
    if wanted:
        plans = plans.filter(job_status__in=wanted)  # type: ignore[misc]  # annotated by plan_queryset
    return plans.order_by("-id")


def plan_get(*, visible: QuerySet[Plan], plan_id: int) -> Plan:
    try:
        return plan_queryset(visible=visible).get(pk=plan_id)
    except Plan.DoesNotExist:
        raise TaskNotFound(f"The {plan_id} schedule does not exist.") from None


def plan_get_by_entity(*, visible: QuerySet[Plan], entity_group: str, entity_key: str) -> Plan:
    try:
        return visible.get(entity_group=entity_group, entity_key=entity_key)
    except Plan.DoesNotExist:
        raise TaskNotFound(f"There is no schedule for {entity_group}/{entity_key}.") from None


def plan_schedule_items(*, plan_ids: list[int]) -> dict[int, list[PlanItem]]:
    """The CRON_JOB and DEPENDENCY items of each plan (ONCE items are runs, not schedule)."""
    items: dict[int, list[PlanItem]] = defaultdict(list)
    for item in PlanItem.objects.filter(
        plan_id__in=plan_ids, trigger_type__in=SCHEDULE_ITEM_TYPES
    ).order_by("pk"):
        items[item.plan_id].append(item)
    return items


def plan_items(*, item_ids: Iterable[int]) -> list[PlanItem]:
    """These items, in their order of creation."""
    return list(PlanItem.objects.filter(pk__in=list(item_ids)).order_by("pk"))


def plan_last_runs(
    *, plans: list[Plan], visible: QuerySet[TaskInstance] | None = None
) -> dict[int, TaskInstance]:
    """The last context of each plan, by plan id (those that ran); with `visible` (the
    viewer's scope) only those in it, as cluster scoping hides a run everywhere else."""
    # last_context_id is annotated by plan_queryset(), which the type checker cannot see.
    last = {plan.pk: getattr(plan, "last_context_id", None) for plan in plans}
    shown = TaskInstance.objects.all() if visible is None else visible
    tasks = shown.filter(pk__in=[i for i in last.values() if i]).annotate(
        job_status=status.job_status()
    )
    by_id = {task.pk: task for task in tasks}
    return {plan_id: by_id[task_id] for plan_id, task_id in last.items() if task_id in by_id}


def plan_find_by_entity(*, entity_group: str, entity_key: str) -> Plan | None:
    """The job's plan whoever may see it (a create for a job that has a plan edits it)."""
    return (
        Plan.objects.select_related("cluster")
        .filter(entity_group=entity_group, entity_key=entity_key)
        .first()
    )


def plan_users(*, visible: QuerySet[Plan], params: Mapping) -> list:
    """The users who created the plans that match the list's filters."""
    plans = plan_list(visible=visible, params=params).filter(created_by__isnull=False)
    ids = plans.order_by().values("created_by_id").distinct()[:USER_LIST_MAX]
    return list(get_user_model().objects.filter(pk__in=Subquery(ids)).order_by("pk"))


def plan_fires(*, plan_id: int, limit: int = 50) -> list[Fire]:
    """A plan's history, newest first: runs, skipped and missed fires."""
    return list(Fire.objects.filter(plan_id=plan_id).select_related("task").order_by("-id")[:limit])


def plan_running_context(*, plan_id: int, excluding: int | None = None) -> int | None:
    """The id of a context of this plan that is still running, if any."""
    running = Fire.objects.filter(
        plan_id=plan_id, outcome=FireOutcome.STARTED, task__status=TaskStatus.RUNNING
    )
    if excluding is not None:
        running = running.exclude(pk=excluding)
    return running.values_list("task_id", flat=True).first()


def plans_running_contexts(*, plan_ids: list[int]) -> dict[int, int]:
    """Of these plans, each one that has a context still running -> the id of one such."""
    if not plan_ids:
        return {}
    running = Fire.objects.filter(
        plan_id__in=plan_ids, outcome=FireOutcome.STARTED, task__status=TaskStatus.RUNNING
    )
    return dict(running.values_list("plan_id", "task_id"))


def plan_stoppable_subtasks(*, plan_id: int) -> list[tuple[int, int]]:
    """(task id, subtask id) of every running or queued (READY) subtask of the plan's
    running contexts: what a cancel of the plan stops."""
    return list(
        SubtaskInstance.objects.filter(
            task__plan_fire__plan_id=plan_id,
            task__status=TaskStatus.RUNNING,
            status__in=[SubtaskStatus.READY, SubtaskStatus.RUNNING],
        ).values_list("task_id", "pk")
    )


def dependency_graph() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Each job with a DEPENDENCY item -> the jobs it waits for (read when a plan is saved)."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    rows = PlanDependency.objects.values_list(
        "item__plan__entity_group", "item__plan__entity_key", "entity_group", "entity_key"
    )
    for group, key, upstream_group, upstream_key in rows:
        graph[(group, key)].add((upstream_group, upstream_key))
    return graph


def items_after(*, entity_group: str, entity_key: str) -> list[PlanItem]:
    """The DEPENDENCY items of enabled plans that wait for this job (by the entity index)."""
    return list(
        PlanItem.objects.filter(
            dependencies__entity_group=entity_group,
            dependencies__entity_key=entity_key,
            trigger_type=TriggerType.DEPENDENCY,
            plan__enabled=True,
        )
        .select_related("plan")
        .distinct()
        .order_by("pk")
    )


# --- Scheduler reads ------------------------------------------------------------------------------


def due_items(*, now, limit: int) -> list[int]:
    """Ids of the items due at `now`, oldest first: a range scan of the next_fire_at index."""
    return list(
        PlanItem.objects.filter(next_fire_at__lte=now)
        .order_by("next_fire_at")
        .values_list("pk", flat=True)[:limit]
    )


def due_items_locked(*, item_ids: list[int], now) -> list[PlanItem]:
    """Those of these items still due at `now`, with their plans, each row locked for the
    caller's transaction: the one scheduler that holds an item fires it.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so an item that another scheduler holds is left to
    it rather than waited for (that one moves it on), and an item another scheduler moved
    on since the due query no longer matches. SQLite has no row locks, and needs none: its
    transactions are IMMEDIATE (one writer at a time).
    """
    return list(
        PlanItem.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("plan", "plan__updated_by", "plan__created_by")
        .filter(pk__in=item_ids, next_fire_at__lte=now)
        .order_by("next_fire_at", "pk")
    )


def ended_runs(*, limit: int) -> list[int]:
    """Fires whose run has ended and that the scheduler has not followed up yet: the
    partial index holds only runs not yet followed up, so this reads the open runs only."""
    return list(
        Fire.objects.filter(outcome=FireOutcome.STARTED, followed_up=False)
        .filter(Q(task__isnull=True) | ~Q(task__status=TaskStatus.RUNNING))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def run_succeeded(*, fire: Fire) -> bool:
    if fire.task_id is None:
        return False
    return (
        TaskInstance.objects.filter(pk=fire.task_id)
        .annotate(js=status.job_status())
        .filter(js=status.SUCCESSFUL)
        .exists()
    )


# --- Contexts ------------------------------------------------------------------------------------


def context_queryset(*, visible: QuerySet[TaskInstance]) -> QuerySet[TaskInstance]:
    """The tasks started by plans among `visible`, each with its fire and jobStatus."""
    return (
        visible.filter(plan_fire__isnull=False)
        .select_related("plan_fire", "creator")
        .annotate(job_status=status.job_status())
    )


def context_list(*, visible: QuerySet[TaskInstance], params: Mapping) -> QuerySet[TaskInstance]:
    contexts = context_queryset(visible=visible).filter(
        _entity_filters(params, "plan_fire__"), _search(params, "plan_fire__")
    )
    creators = parse.integer_list(params, "entityCreatedByList", limit=USER_LIST_MAX)
    if creators:
        contexts = contexts.filter(creator_id__in=creators)
    wanted = job_statuses(params, "jobStatus", "jobStatusList")
    if wanted:
        contexts = contexts.filter(status.job_status_in(wanted))
    return contexts.order_by("-id")


def context_get(*, visible: QuerySet[TaskInstance], context_id: int) -> TaskInstance:
    try:
        return context_queryset(visible=visible).get(pk=context_id)
    except TaskInstance.DoesNotExist:
        raise TaskNotFound(f"The {context_id} context does not exist.") from None


def context_visible(*, visible: QuerySet[TaskInstance], context_id: int) -> bool:
    """Whether this context is among `visible` (the viewer's scope): what its logs and
    results ask, without the row and its jobStatus that context_get reads."""
    return visible.filter(pk=context_id, plan_fire__isnull=False).exists()


def context_require(*, visible: QuerySet[TaskInstance], context_id: int) -> int:
    """This context's id when it is among `visible`, else TaskNotFound as context_get."""
    if not context_visible(visible=visible, context_id=context_id):
        raise TaskNotFound(f"The {context_id} context does not exist.")
    return context_id


def context_users(*, visible: QuerySet[TaskInstance], params: Mapping) -> list:
    contexts = context_list(visible=visible, params=params).filter(creator__isnull=False)
    ids = contexts.order_by().values("creator_id").distinct()[:USER_LIST_MAX]
    return list(get_user_model().objects.filter(pk__in=Subquery(ids)).order_by("pk"))


def context_is_done(*, context_id: int) -> bool:
    return not TaskInstance.objects.filter(pk=context_id, status=TaskStatus.RUNNING).exists()


def contexts_still_running(*, context_ids: Iterable[int]) -> set[int]:
    """Which of these contexts still run (one statement for every wait of a web process)."""
    return set(
        TaskInstance.objects.filter(pk__in=list(context_ids), status=TaskStatus.RUNNING)
        .order_by()
        .values_list("pk", flat=True)
    )


def context_subtasks(*, context_id: int) -> list[SubtaskInstance]:
    """The context's subtasks (its subKeys), in their DAG order."""
    return list(
        SubtaskInstance.objects.filter(task_id=context_id)
        .defer("action", "rollback_action")
        .order_by("series_id", "pk")
    )


# --- Pages: jobs (task definitions) and a plan's history -------------------------------------------
# Reads that only the dashboard's Jobs and Schedules pages ask for.


def job_definitions() -> list[DefinitionSpec]:
    """Every definition a job may run: those registered in code, and the latest version of
    each data definition, by name."""
    specs = {spec.name: spec for spec in definitions.registered_definitions()}
    data_names = (
        TaskDefinition.objects.filter(source=TaskDefinition.Source.DATA)
        .order_by()
        .values_list("name", flat=True)
        .distinct()
    )
    for name in data_names:
        if name not in specs:
            specs[name] = definition_get(name=name)[0]
    return sorted(specs.values(), key=lambda spec: spec.name)


def job_definition_get(*, key: str) -> DefinitionSpec:
    """A definition by its name, or by the id of its stored row (any version's row names
    the definition, whose current version is shown)."""
    name = key
    if parse.looks_like_identifier(key) and definitions.get_registered_definition(key) is None:
        row = TaskDefinition.objects.filter(pk=int(key)).only("name").first()
        if row is not None:
            name = row.name
    try:
        return definition_get(name=name)[0]
    except InvalidDefinition:
        raise TaskNotFound(f"There is no job definition {key!r}.") from None


def definition_runs(
    *, visible: QuerySet[TaskInstance], name: str, limit: int = 10
) -> list[TaskInstance]:
    """The latest runs of a definition among `visible`, newest first."""
    return list(
        visible.filter(definition__name=name)
        .select_related("creator", "cluster", "tenant")
        .order_by("-id")[:limit]
    )


def plan_history(
    *, plan_id: int, visible: QuerySet[TaskInstance], limit: int = 50
) -> list[tuple[Fire, TaskInstance | None]]:
    """plan_fires with each run's task (and its jobStatus); a run outside `visible` comes
    without its task, as cluster scoping hides it everywhere else."""
    fires = plan_fires(plan_id=plan_id, limit=limit)
    ids = [fire.task_id for fire in fires if fire.task_id]
    tasks = visible.filter(pk__in=ids).annotate(job_status=status.job_status())
    by_id = {task.pk: task for task in tasks}
    return [(fire, by_id.get(fire.task_id) if fire.task_id else None) for fire in fires]


def context_fire(*, task_id: int) -> Fire | None:
    """The fire that started this task, when a plan started it (the task is a context)."""
    return Fire.objects.filter(task_id=task_id).select_related("plan").first()


# --- Live pages: what changed since a cursor ------------------------------------------------------


def schedule_changes(
    *, plans: QuerySet[Plan], runs: QuerySet[TaskInstance], cursor: str = ""
) -> Changes:
    """Whether the plans, their fires or their runs changed since `cursor` (from a previous
    call; "" for none), and the cursor of now: the schedules list and a plan's page poll
    this as the task list polls task_changes.

    A plan's own changes move its updated_at (every verb saves it), a fire is a new Fire
    row (the newest id), a run's progress moves its task's updated_at, and a deleted plan
    lowers the count: each part is read through an index, never the whole history.
    """
    count_part, _, rest = cursor.partition("~")
    fire_part, _, rest = rest.partition("~")
    plan_part, _, run_part = rest.partition("~")
    count = str(plans.count())
    newest_fire = (
        Fire.objects.filter(plan__in=plans).order_by("-id").values_list("id", flat=True).first()
    )
    fire = str(newest_fire or 0)
    plan_changes = row_changes(stamped=plans, cursor=plan_part)
    run_changes = task_changes(visible=runs, cursor=run_part)
    changed = (
        (count, fire) != (count_part, fire_part) or plan_changes.changed or run_changes.changed
    )
    new_cursor = "~".join((count, fire, plan_changes.cursor, run_changes.cursor))
    return Changes(new_cursor, changed, None)


# --- Where a run or a plan goes: its cluster and tenant --------------------------------------------


def placement_get(
    *, cluster_id: int | None, tenant_id: int | None
) -> tuple[Cluster | None, Tenant | None]:
    """The cluster and tenant these ids name (a tenant alone names its cluster too);
    InvalidParameter naming clusterId or tenantId when one does not exist or the tenant is
    not of the cluster."""
    cluster = tenant = None
    if cluster_id is not None:
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is None:
            raise InvalidParameter.because("clusterId", f"there is no cluster {cluster_id}.")
    if tenant_id is not None:
        tenant = Tenant.objects.select_related("cluster").filter(pk=tenant_id).first()
        if tenant is None:
            raise InvalidParameter.because("tenantId", f"there is no tenant {tenant_id}.")
        if cluster is not None and tenant.cluster_id != cluster.pk:
            raise InvalidParameter.because(
                "tenantId", f"tenant {tenant.name} is not of cluster {cluster.name}."
            )
        cluster = tenant.cluster
    return cluster, tenant


def placement_choices(*, clusters: frozenset[int] | None) -> list[Cluster]:
    """The clusters a form offers (None: all), each with its tenants (prefetched)."""
    rows = Cluster.objects.order_by("name").prefetch_related("tenants")
    if clusters is not None:
        rows = rows.filter(pk__in=list(clusters))
    return list(rows)
