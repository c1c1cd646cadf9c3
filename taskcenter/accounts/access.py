"""Who may see and do what: the one place every view, API endpoint, page and service asks.

Every view calls get_task_for_user / get_operable_task_for_user first; every list starts
from visible_tasks(user). Plans follow the same rules by their cluster (visible_plans,
get_plan_for_user, get_operable_plan_for_user), and so does the audit trail
(visible_audit). Scoping by cluster (RoleScope) is applied here and nowhere else.

Permissions are cached on the user object (by Django's ModelBackend and by
permission_clusters). After changing a user's grants, use forget_permissions(user): it is
the one way to drop those caches.
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Q, QuerySet

from taskcenter.accounts.models import AccessVersion, RoleScope
from taskcenter.core.errors import InvalidParameter, NotPermitted, TaskNotFound
from taskcenter.schedules import selectors as schedule_selectors
from taskcenter.schedules.models import Plan
from taskcenter.tasks import selectors as task_selectors
from taskcenter.tasks.models import (
    AuditEntry,
    BulkOperation,
    Cluster,
    SubtaskInstance,
    TaskInstance,
)
from taskcenter.tasks.verbs import (  # noqa: F401 (PERM_*: the permissions of the verbs)
    PERM_APPROVE,
    PERM_CANCEL,
    PERM_CANCEL_TASK,
    PERM_RETRY,
    PERM_ROLLBACK,
    PERM_SKIP,
    VERBS,
    BulkSelection,
)

PERM_VIEW = "tasks.view_taskinstance"
PERM_RUN = "tasks.run_taskinstance"
PERM_MANAGE_SCHEDULES = "tasks.manage_schedules"

# Each verb's permission is declared with the verb; running a task and managing
# schedules are not verbs on one task.
OPERATION_PERMISSIONS = {key: verb.permission for key, verb in VERBS.items()} | {
    "run": PERM_RUN,
    "manage_schedules": PERM_MANAGE_SCHEDULES,
}
# What each permission lets a user do, in words that follow "You do not have permission
# to ..." (the API's and the pages' refusal alike).
OPERATION_VERBS = {
    "retry": "retry tasks",
    "rollback": "roll back tasks",
    "cancel_task": "cancel tasks",
    "subtask_retry": "retry subtasks",
    "skip": "skip subtasks",
    "cancel": "cancel subtasks",
    "approve": "approve subtasks",
    "reject": "reject subtasks",
    "run": "run jobs",
    "manage_schedules": "manage schedules",
}


# Every permission to act on tasks implies seeing them, where it is granted: operating
# needs the task pages, and Jobs and Schedules are reached through them.
VIEW_IMPLIED_BY = (PERM_VIEW, *dict.fromkeys(OPERATION_PERMISSIONS.values()))

ALL_CLUSTERS = None  # an unscoped grant
_CLUSTER_CACHE = "_taskcenter_permission_clusters"  # per user object, like Django's own
_LOADED = "_taskcenter_permissions_loaded"  # asked by load_permissions already


def forget_permissions(user):
    """The user again, without any permission cached on it: call after changing grants.

    Django's ModelBackend caches permissions on the user object, and so does
    permission_clusters; Django's documented way to forget them is to fetch the user
    again (https://docs.djangoproject.com/en/5.2/topics/auth/default/#permission-caching).
    Use the returned object from then on.
    """
    return type(user)._default_manager.get(pk=user.pk)


def access_changed(**signal_arguments) -> None:
    """Grants may have changed: move the access counter (in the caller's transaction), so
    that every decision remembered under the old counter is taken again
    (taskcenter.dashboard.log_poll). Connected to the signals of every table that grants
    rest on (AccountsConfig.ready), so the account pages, Django's admin and the shell
    are all covered; a grant changed by a queryset update() must call it itself."""
    if str(signal_arguments.get("action", "post")).startswith("pre_"):
        return  # m2m_changed: counted once, after the change
    if signal_arguments.get("update_fields") == frozenset({"last_login"}):
        return  # a sign-in, not a change of grants
    if not AccessVersion.objects.filter(pk=1).update(version=F("version") + 1):
        AccessVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def access_version() -> int:
    """The access counter now; read it before taking a decision that will be remembered."""
    return AccessVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0


def permission_clusters(user, permission: str) -> frozenset[int] | None:
    """Where `user` holds `permission`: None for everywhere, else a set of cluster ids.

    A user holds a permission through a group (a role) or directly. A RoleScope limits a
    user's grant of one group to some clusters; any unscoped grant of the permission wins.
    An empty set means the user does not hold the permission at all.

    Viewing tasks is also held wherever any task permission is (VIEW_IMPLIED_BY): a role
    that may retry but was saved without "view" must not lock its holders out of the very
    pages where they retry.
    """
    if not (user and user.is_authenticated and user.is_active):
        return frozenset()
    cache = user.__dict__.setdefault(_CLUSTER_CACHE, {})
    if permission not in cache:
        cache[permission] = _permission_clusters(user, _implied(permission))
    return cache[permission]


def _implied(permission: str) -> tuple[str, ...]:
    return VIEW_IMPLIED_BY if permission == PERM_VIEW else (permission,)


def _held(permissions) -> Q:
    held = Q(pk__in=[])
    for permission in permissions:
        app_label, codename = permission.split(".", 1)
        held |= Q(codename=codename, content_type__app_label=app_label)
    return held


def _role_grants(user, permissions) -> list[tuple[int, bool, str]]:
    """(group id, whether a RoleScope limits the user's grant of it, "app.codename") for
    each of `user`'s roles that holds one of `permissions`.

    Hand-built SQL, one statement: every request of a signed-in user asks it (require_view),
    and through the ORM building the statement cost more CPU than the rest of a small API
    answer. Table and column names come from the models."""
    wanted = sorted(set(permissions))
    if not wanted:
        return []
    arguments: list = [user.pk, user.pk]
    for permission in wanted:
        arguments.extend(permission.split(".", 1))
    with connection.cursor() as cursor:
        cursor.execute(_grants_statement(len(wanted)), arguments)
        return [(group, bool(scoped), f"{app}.{code}") for group, scoped, app, code in cursor]


@functools.cache
def _grants_statement(permissions: int) -> str:
    memberships = get_user_model().groups.through
    role_permissions = Group.permissions.through
    held = " OR ".join(["(t.app_label = %s AND p.codename = %s)"] * permissions)
    return f"""
        SELECT m.group_id,
               EXISTS (SELECT 1 FROM {RoleScope._meta.db_table} r
                       WHERE r.user_id = %s AND r.group_id = m.group_id),
               t.app_label, p.codename
        FROM {memberships._meta.db_table} m
        JOIN {role_permissions._meta.db_table} g ON g.group_id = m.group_id
        JOIN {Permission._meta.db_table} p ON p.id = g.permission_id
        JOIN {ContentType._meta.db_table} t ON t.id = p.content_type_id
        WHERE m.user_id = %s AND ({held})
    """


def permission_names(user_id: int) -> set[str]:
    """Every "app.codename" the (active, not superuser) user holds directly or through a
    role: Django's ModelBackend's answer, in one hand-built statement where ModelBackend
    sends two through the ORM (ThrottledModelBackend.get_all_permissions). Every page's
    top bar asks it, for the account and notification links."""
    with connection.cursor() as cursor:
        cursor.execute(_permission_names_statement(), [user_id, user_id])
        return {f"{app}.{codename}" for app, codename in cursor}


@functools.cache
def _permission_names_statement() -> str:
    user_model = get_user_model()
    direct = user_model.user_permissions.through
    memberships = user_model.groups.through
    role_permissions = Group.permissions.through
    return f"""
        SELECT t.app_label, p.codename
        FROM {Permission._meta.db_table} p
        JOIN {ContentType._meta.db_table} t ON t.id = p.content_type_id
        WHERE p.id IN (
            SELECT d.permission_id FROM {direct._meta.db_table} d WHERE d.user_id = %s
            UNION
            SELECT g.permission_id FROM {role_permissions._meta.db_table} g
            JOIN {memberships._meta.db_table} m ON m.group_id = g.group_id
            WHERE m.user_id = %s
        )
    """


def load_permissions(user, *permissions: str) -> None:
    """Find where `user` holds each of `permissions` at once, for the checks that follow
    (permission_clusters gives the same answers one permission at a time): a page that
    checks seeing tasks and then the operations it offers asks the database once in the
    usual case, unscoped roles. What no unscoped role grants is left to
    permission_clusters, which asks when (and if) the permission is checked."""
    if not (user and user.is_authenticated and user.is_active):
        return
    cache = user.__dict__.setdefault(_CLUSTER_CACHE, {})
    loaded = user.__dict__.setdefault(_LOADED, set())
    wanted = [p for p in dict.fromkeys(permissions) if p not in cache and p not in loaded]
    if not wanted:
        return
    loaded.update(wanted)
    if user.is_superuser:
        cache.update(dict.fromkeys(wanted, ALL_CLUSTERS))
        return
    every = {implied for permission in wanted for implied in _implied(permission)}
    granted: dict[str, dict[int, bool]] = {}
    for group_id, is_scoped, permission in _role_grants(user, every):
        granted.setdefault(permission, {})[group_id] = is_scoped
    for permission in wanted:
        groups: dict[int, bool] = {}
        for implied in _implied(permission):
            groups.update(granted.get(implied, {}))
        if groups and not all(groups.values()):
            cache[permission] = ALL_CLUSTERS  # an unscoped role grants it: nothing to add
        # Otherwise (no role grants it, or scoped roles only) permission_clusters takes its
        # own path when the permission is asked (direct grants and scoped roles are rare).


def _permission_clusters(user, permissions: tuple[str, ...]) -> frozenset[int] | None:
    """Where `user` holds any of `permissions`.

    Every request asks this, so the usual case (an unscoped role) is one statement: the
    user's groups that hold one of the permissions, each with whether a RoleScope limits
    it."""
    if user.is_superuser:
        return ALL_CLUSTERS
    held = _held(permissions)
    groups = {group_id: scoped for group_id, scoped, _ in _role_grants(user, permissions)}
    if groups and not all(groups.values()):
        return ALL_CLUSTERS
    if user.user_permissions.filter(held).exists():
        return ALL_CLUSTERS
    if not groups:
        return frozenset()
    return frozenset(
        RoleScope.clusters.through.objects.filter(
            rolescope__user_id=user.pk, rolescope__group_id__in=list(groups)
        ).values_list("cluster_id", flat=True)
    )


def _allows(clusters: frozenset[int] | None, task: TaskInstance | Plan | None) -> bool:
    """Whether a grant on `clusters` reaches `task` (or a plan: the same rule by its
    cluster), or some task when None. A task or plan of no cluster is reached by unscoped
    grants only."""
    if clusters is ALL_CLUSTERS:
        return True
    if task is None:
        return bool(clusters)
    return task.cluster_id in clusters


def can_view(user, task: TaskInstance | None = None) -> bool:
    return _allows(permission_clusters(user, PERM_VIEW), task)


def require_view(user) -> None:
    """Refuse a user who may not see tasks. Every task permission is found with it, in one
    statement in the usual case: the pages go on to ask which operations they offer."""
    load_permissions(user, PERM_VIEW, *OPERATION_PERMISSIONS.values())
    if not can_view(user):
        raise NotPermitted("You do not have permission to view tasks (TASK_VIEWER).")


def can_operate(user, operation: str, task: TaskInstance | None = None) -> bool:
    """Whether `user` may run `operation` on `task` (or on some task, when task is None)."""
    return can_view(user, task) and _allows(
        permission_clusters(user, OPERATION_PERMISSIONS[operation]), task
    )


def visible_tasks(user) -> QuerySet[TaskInstance]:
    """The tasks `user` may see: all, those of the clusters of a scoped grant, or none."""
    clusters = permission_clusters(user, PERM_VIEW)
    if clusters is ALL_CLUSTERS:
        return TaskInstance.objects.all()
    if not clusters:
        return TaskInstance.objects.none()
    return TaskInstance.objects.filter(cluster_id__in=clusters)


def visible_clusters(user) -> frozenset[int] | None:
    """The clusters whose tasks `user` may see: None for all. Filter menus and suggestions
    are built from these, so a scoped user is not shown other clusters' names or hosts."""
    return permission_clusters(user, PERM_VIEW)


def get_task_for_user(user, task_id) -> TaskInstance:
    require_view(user)
    try:
        return visible_tasks(user).select_related("cluster", "tenant", "creator").get(pk=task_id)
    except (TaskInstance.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(f"The {task_id} task does not exist.") from None


def refusal_message(operation: str) -> str:
    """The refusal of `operation` to a user who lacks its permission."""
    return f"You do not have permission to {OPERATION_VERBS[operation]}."


def get_subtask_for_user(user, task_id, subtask_id) -> SubtaskInstance:
    """A subtask (its task loaded with it) of a task `user` may see, in one statement.

    The log page polls this every second for every open tail, so the task and the
    subtask come in one row; a miss takes the slower path only to say which one is missing.
    """
    clusters = permission_clusters(user, PERM_VIEW)
    require_view(user)
    subtasks = SubtaskInstance.objects.select_related("task")
    if clusters is not ALL_CLUSTERS:
        subtasks = subtasks.filter(task__cluster_id__in=clusters)
    try:
        return subtasks.get(pk=subtask_id, task_id=task_id)
    except (SubtaskInstance.DoesNotExist, ValueError, TypeError):
        get_task_for_user(user, task_id)  # TaskNotFound when the task is the one missing
        raise TaskNotFound(
            f"The {subtask_id} subtask does not exist in the {task_id} task."
        ) from None


def get_operable_task_for_user(user, task_id, operation: str) -> TaskInstance:
    """The task, when `user` may see it and run `operation` on it: the one access check of
    a request that operates, whose task the rest of the request works on."""
    task = get_task_for_user(user, task_id)
    if not can_operate(user, operation, task):
        raise NotPermitted(refusal_message(operation))
    return task


# --- Bulk operations --------------------------------------------------------------------------


def bulk_selection(
    user, operation: str, *, ids: list[int] | None = None, params=None
) -> BulkSelection:
    """The tasks `user` selected for a bulk `operation` (a key of VERBS), by `ids` or by
    the list's filter `params`, as their access shapes it: only tasks they may see are
    ever selected (an id of another cluster's task reads as unknown), and the clusters
    where they hold the operation's permission come with it, for the judgement to refuse
    the others. A user who holds the permission nowhere is refused whole."""
    require_view(user)
    if not can_operate(user, operation):
        raise NotPermitted(refusal_message(operation))
    visible = visible_tasks(user)
    if ids is not None:
        tasks = visible.filter(pk__in=ids)
        found = set(tasks.values_list("pk", flat=True))
        unseen = [pk for pk in dict.fromkeys(ids) if pk not in found]
        described: dict = {"ids": list(dict.fromkeys(ids))}
    else:
        tasks = task_selectors.task_list(visible=visible, params=params)
        unseen = []
        described = {"filter": {key: params.getlist(key) for key in params}}
    operable = _both(
        permission_clusters(user, OPERATION_PERMISSIONS[operation]),
        permission_clusters(user, PERM_VIEW),
    )
    return BulkSelection(
        verb_key=operation,
        tasks=tasks,
        unseen=unseen,
        operable=operable,
        described=described,
        refusal_words=refusal_message(operation).rstrip("."),
    )


def visible_bulks(user) -> QuerySet[BulkOperation]:
    """The bulk operations `user` may follow: their own, and everyone's for a user who
    sees every cluster (an operation may span clusters; a scoped user sees only theirs)."""
    if not can_view(user):
        return BulkOperation.objects.none()
    if permission_clusters(user, PERM_VIEW) is ALL_CLUSTERS:
        return BulkOperation.objects.all()
    return BulkOperation.objects.filter(actor_id=user.pk)


def get_bulk_for_user(user, bulk_id) -> BulkOperation:
    require_view(user)
    try:
        return visible_bulks(user).get(pk=bulk_id)
    except (BulkOperation.DoesNotExist, ValueError, TypeError, ValidationError):
        raise TaskNotFound(f"There is no bulk operation {bulk_id}.") from None


def can_stop_bulk(user, bulk: BulkOperation) -> bool:
    """Who started it, or a user who may do its verb on every cluster."""
    return bulk.actor_id == user.pk or (
        permission_clusters(user, OPERATION_PERMISSIONS[bulk.verb]) is ALL_CLUSTERS
        and can_view(user)
    )


def get_stoppable_bulk_for_user(user, bulk_id) -> BulkOperation:
    bulk = get_bulk_for_user(user, bulk_id)
    if not can_stop_bulk(user, bulk):
        raise NotPermitted(
            "Only who started a bulk operation, or an unscoped operator, may stop it."
        )
    return bulk


# --- Jobs and schedules -----------------------------------------------------------------------


def can_run_jobs(user) -> bool:
    return can_operate(user, "run")


def run_clusters(user) -> frozenset[int] | None:
    """The clusters `user` may start jobs on (and see the tasks of): None for all."""
    return _both(permission_clusters(user, PERM_RUN), permission_clusters(user, PERM_VIEW))


def _both(first: frozenset[int] | None, second: frozenset[int] | None) -> frozenset[int] | None:
    """Where two grants both reach (None: everywhere)."""
    if first is ALL_CLUSTERS:
        return second
    if second is ALL_CLUSTERS:
        return first
    return first & second


def run_placement(user, cluster: Cluster | None, *, field: str = "clusterId") -> None:
    """Refuse a run (or a plan) placed where `user` could not see it: a user whose run
    grant is scoped must choose one of their clusters, so that what they start stays
    theirs to see. `field`: the input the refusal names."""
    _require_one_of(run_clusters(user), cluster, field)


def _require_one_of(clusters: frozenset[int] | None, cluster: Cluster | None, field: str) -> None:
    if clusters is ALL_CLUSTERS:
        return
    if cluster is None:
        raise InvalidParameter.because(field, "is required: choose one of your clusters.")
    if cluster.pk not in clusters:
        raise InvalidParameter.because(
            field, f"{cluster.name} is not one of your clusters; choose one of yours."
        )


def can_manage_schedules(user, *, run: bool = False) -> bool:
    """Whether `user` may change plans (some plans: a scoped grant reaches those of its
    clusters); `run`: also start a run now (needs the run permission)."""
    return can_operate(user, "manage_schedules") and (not run or can_run_jobs(user))


def require_manage_schedules(user, *, run: bool = False) -> None:
    if not can_operate(user, "manage_schedules"):
        raise NotPermitted(refusal_message("manage_schedules"))
    if run and not can_run_jobs(user):
        raise NotPermitted(refusal_message("run"))


def plan_clusters(user) -> frozenset[int] | None:
    """The clusters `user` may place plans on (manage schedules and see): None for all."""
    return _both(
        permission_clusters(user, PERM_MANAGE_SCHEDULES), permission_clusters(user, PERM_VIEW)
    )


def visible_plans(user) -> QuerySet[Plan]:
    """The plans `user` may see: all, those of the clusters of a scoped grant, or none. A
    plan of no cluster is seen by unscoped users only (as a task of no cluster is)."""
    clusters = permission_clusters(user, PERM_VIEW)
    if clusters is ALL_CLUSTERS:
        return Plan.objects.all()
    if not clusters:
        return Plan.objects.none()
    return Plan.objects.filter(cluster_id__in=clusters)


def can_manage_plan(user, plan: Plan, *, run: bool = False) -> bool:
    """Whether `user` may change this plan (`run`: and start a run of it now)."""
    return (
        can_view(user, plan)  # type: ignore[arg-type]  # a plan is placed like a task
        and _allows(permission_clusters(user, PERM_MANAGE_SCHEDULES), plan)
        and (not run or _allows(permission_clusters(user, PERM_RUN), plan))
    )


def plan_refusal(user, plan: Plan, *, run: bool = False) -> str | None:
    """Why `user` may not change this plan (or run it now), in the words of the API's
    refusal and the pages' disabled buttons; None when they may."""
    if not can_operate(user, "manage_schedules"):
        return refusal_message("manage_schedules")
    if run and not can_run_jobs(user):
        return refusal_message("run")
    if not can_manage_plan(user, plan, run=run):
        where = plan.cluster.name if plan.cluster_id and plan.cluster else "no cluster"
        return f"This plan is on {where}, outside the clusters your role covers."
    return None


def get_plan_for_user(user, plan_id) -> Plan:
    """A plan `user` may see; one outside their scope does not exist for them."""
    require_view(user)
    try:
        return visible_plans(user).select_related("cluster", "tenant").get(pk=plan_id)
    except (Plan.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(f"The {plan_id} schedule does not exist.") from None


def get_operable_plan_for_user(user, plan_id, *, run: bool = False) -> Plan:
    """A plan `user` may see and change (`run`: and run now), or the refusal."""
    plan = get_plan_for_user(user, plan_id)
    refusal = plan_refusal(user, plan, run=run)
    if refusal is not None:
        raise NotPermitted(refusal)
    return plan


def require_plan_placement(user, plan: Plan | None, cluster: Cluster | None) -> None:
    """Refuse a create or edit by `user` of `plan` (None: a new one) placed on `cluster`:
    the plan must be theirs to change, and where it goes too (one of their clusters, for
    a scoped grant: a plan they could not see afterwards is refused)."""
    require_manage_schedules(user)
    if plan is not None and not can_manage_plan(user, plan):
        raise NotPermitted(
            f"The plan of {plan.entity_group}/{plan.entity_key} is outside the clusters "
            "your role covers."
        )
    _require_one_of(plan_clusters(user), cluster, "clusterId")


def require_plan_submit(user, data, *, run: bool = False) -> None:
    """A create or edit (POST /api/schedules, the plan form) of a job's plan
    (taskcenter.schedules.inputs.PlanInput): the plan, if the job has one, must be the
    caller's to change, and where it goes (the cluster given, else the plan's) one of the
    caller's clusters when their role is scoped; with ONCE items (`run`), one they may run
    jobs on too."""
    existing = schedule_selectors.plan_find_by_entity(
        entity_group=data.entity_group, entity_key=data.entity_key
    )
    if data.placed:
        cluster, _ = schedule_selectors.placement_get(
            cluster_id=data.cluster_id, tenant_id=data.tenant_id
        )
    else:
        cluster = existing.cluster if existing is not None else None
    require_plan_placement(user, existing, cluster)
    if run:
        run_placement(user, cluster)


# --- The audit trail ----------------------------------------------------------------------------

PLAN_AUDIT_PREFIX = "PLAN_"  # the actions of plan changes and fires (taskcenter.schedules)
BULK_AUDIT_PREFIX = "BULK_"  # a bulk operation's own entries (taskcenter.tasks.verbs.bulk)


def visible_audit(user) -> QuerySet[AuditEntry]:
    """The audit rows `user` may see: those of every object they may see. Rows of the
    tasks they see; rows of plan changes and fires without a task by the plan's cluster
    (a plan of no cluster: unscoped viewers only); a bulk operation's own rows to those
    who may follow it (visible_bulks); changes to users, roles, scopes and
    keys (rows of no task and no plan) for those who manage accounts."""
    clusters = permission_clusters(user, PERM_VIEW)
    about_plan = Q(task__isnull=True, action__startswith=PLAN_AUDIT_PREFIX)
    about_bulk = Q(task__isnull=True, action__startswith=BULK_AUDIT_PREFIX)
    shown = Q(task__in=visible_tasks(user).values("pk"))
    if clusters is ALL_CLUSTERS:
        shown |= about_plan | about_bulk
    elif clusters:
        shown |= about_plan & Q(cluster_id__in=clusters)
        shown |= about_bulk & Q(bulk_id__in=visible_bulks(user).values("pk"))
    if can_manage_accounts(user):
        shown |= (
            Q(task__isnull=True)
            & ~Q(action__startswith=PLAN_AUDIT_PREFIX)
            & ~Q(action__startswith=BULK_AUDIT_PREFIX)
        )
    return AuditEntry.objects.filter(shown)


# --- Accounts: users, roles and access keys ----------------------------------------------------
# Account management is not scoped by cluster: a RoleScope limits task permissions only.

PERM_MANAGE_USERS = "auth.change_user"
PERM_MANAGE_ROLES = "auth.change_group"
PERM_MANAGE_ALL_KEYS = "accounts.manage_all_accesskeys"


def _holds(user, permission: str) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(permission))


def can_manage_users(user) -> bool:
    return _holds(user, PERM_MANAGE_USERS)


def can_manage_roles(user) -> bool:
    return _holds(user, PERM_MANAGE_ROLES)


def can_manage_all_keys(user) -> bool:
    return _holds(user, PERM_MANAGE_ALL_KEYS)


def can_manage_accounts(user) -> bool:
    """Whether `user` gets the admin pages at all (any of users, roles, all keys)."""
    return can_manage_users(user) or can_manage_roles(user) or can_manage_all_keys(user)


def can_view_retention(user) -> bool:
    """The Data retention page (every kind's size and age, across clusters): the ADMIN
    role's holders, who manage both users and roles, and superusers."""
    return can_manage_users(user) and can_manage_roles(user)


def require_view_retention(user) -> None:
    if not can_view_retention(user):
        raise NotPermitted("You do not have permission to see data retention (ADMIN).")


# --- No path past one's own rights ---------------------------------------------------------------
# Nobody creates a key for, changes, or grants a role to anyone holding rights they do not
# hold themselves: a reset password or a key made for someone else would otherwise let the
# one who made it act with that person's rights.

Rights = dict[str, frozenset[int] | None]  # permission -> clusters (None: everywhere)


def rights_of(user) -> Rights | None:
    """Every permission `user` holds and where (None for a superuser: everything). Roles
    bring their permissions on their scope's clusters, or everywhere when unscoped; a
    permission given to the user directly holds everywhere."""
    if user.is_superuser:
        return None
    rights: dict[str, set[int] | None] = {}
    scopes = {
        scope.group_id: {c.pk for c in scope.clusters.all()}
        for scope in RoleScope.objects.filter(user_id=user.pk).prefetch_related("clusters")
    }
    granted = Permission.objects.filter(group__user=user).values_list(
        "group", "content_type__app_label", "codename"
    )
    for group_id, app_label, codename in granted:
        _widen(rights, f"{app_label}.{codename}", scopes.get(group_id))
    for app_label, codename in user.user_permissions.values_list(
        "content_type__app_label", "codename"
    ):
        _widen(rights, f"{app_label}.{codename}", None)
    return {name: None if where is None else frozenset(where) for name, where in rights.items()}


def _widen(rights: dict[str, set[int] | None], name: str, clusters: set[int] | None) -> None:
    if name in rights and rights[name] is None:
        return
    rights[name] = None if clusters is None else rights.get(name, set()) | clusters  # type: ignore[operator]


def _reaches(held: frozenset[int] | None, wanted: frozenset[int] | None) -> bool:
    """Whether a grant on `held` clusters covers one on `wanted` (None: everywhere)."""
    return held is ALL_CLUSTERS or (wanted is not ALL_CLUSTERS and wanted <= held)


def rights_cover(actor, wanted: Rights | None) -> bool:
    """Whether `actor` holds every right of `wanted`, each on at least the same clusters."""
    if actor is None:  # the command line, run by whoever holds the server
        return True
    if not (actor.is_authenticated and actor.is_active):
        return False
    if actor.is_superuser:
        return True
    if wanted is None:
        return False
    held = rights_of(actor)
    assert held is not None
    return all(name in held and _reaches(held[name], where) for name, where in wanted.items())


def holds_rights_of(actor, target) -> bool:
    """Whether `actor` holds every right `target` holds (a superuser's are all of them)."""
    if actor is not None and actor.pk == target.pk:
        return True
    return rights_cover(actor, rights_of(target))


def grant_rights(grants: dict[int, list[int]]) -> Rights:
    """The rights a set of grants gives: role (group) id -> cluster ids ([] = all)."""
    rights: dict[str, set[int] | None] = {}
    rows = Permission.objects.filter(group__in=list(grants)).values_list(
        "group", "content_type__app_label", "codename"
    )
    for group_id, app_label, codename in rows:
        clusters = grants.get(group_id) or None
        _widen(rights, f"{app_label}.{codename}", set(clusters) if clusters else None)
    return {name: None if where is None else frozenset(where) for name, where in rights.items()}


BEYOND_OWN_RIGHTS = "holds rights you do not hold yourself"


def can_manage_user(actor, target) -> bool:
    """Admins manage users holding no right the admin does not hold (a superuser is
    managed by superusers only): no escalation by a reset password or a changed role."""
    return can_manage_users(actor) and holds_rights_of(actor, target)


def require_manage_users(user) -> None:
    if not can_manage_users(user):
        raise NotPermitted("You do not have permission to manage users (ADMIN).")


def require_manage_user(actor, target=None) -> None:
    """May `actor` change users, and `target` in particular (when given)?"""
    require_manage_users(actor)
    if target is not None and not can_manage_user(actor, target):
        raise NotPermitted(
            f"{target.get_username()} {BEYOND_OWN_RIGHTS}: only someone who holds all of "
            "them may change this user."
        )


def require_grants_within(actor, grants: dict[int, list[int]]) -> None:
    """Refuse roles (on clusters) that would give rights `actor` does not hold."""
    if not rights_cover(actor, grant_rights(grants)):
        raise NotPermitted(
            "These roles give rights you do not hold yourself (or on clusters you do not "
            "hold them on): you may only give what you hold."
        )


def require_permissions_within(actor, names) -> None:
    """Refuse a role holding permissions `actor` does not hold everywhere (a role may be
    given unscoped)."""
    if not rights_cover(actor, dict.fromkeys(names, ALL_CLUSTERS)):
        raise NotPermitted("A role may only hold permissions you hold yourself, on every cluster.")


def require_manage_roles(user) -> None:
    if not can_manage_roles(user):
        raise NotPermitted("You do not have permission to manage roles (ADMIN).")


def require_manage_all_keys(user) -> None:
    if not can_manage_all_keys(user):
        raise NotPermitted("You do not have permission to manage other users' access keys.")


def require_manage_accounts(user) -> None:
    if not can_manage_accounts(user):
        raise NotPermitted("You do not have permission to manage users, roles or keys (ADMIN).")


def can_manage_keys_of(actor, owner) -> bool:
    """Everyone manages their own keys; key admins manage the keys of users holding no
    right they do not hold themselves. A superuser's keys are that superuser's alone: a key
    acts with every right, so nobody else may make or revoke one."""
    if actor is None:  # the command line, run by whoever holds the server
        return True
    if not (actor.is_authenticated and actor.is_active):
        return False
    if actor.pk == owner.pk:
        return True
    if owner.is_superuser:
        return False
    return can_manage_all_keys(actor) and holds_rights_of(actor, owner)


def can_open_django_admin(user) -> bool:
    """Who may use Django's admin site (and gets its link): active superusers only
    (accounts.admin_site). The ADMIN role works in the product's own Admin pages."""
    return user.is_authenticated and user.is_active and user.is_superuser


def can_grant_staff(actor) -> bool:
    """Staff rights (the flag Django's admin once opened to) are given by a superuser or
    the command line only, never by the ADMIN role."""
    return actor is None or actor.is_superuser


# --- Notifications ---------------------------------------------------------------------------

PERM_MANAGE_NOTIFICATIONS = "notifications.manage_notifications"
# Events about no object of a cluster (the fleet, a queue): seen by whoever sees tasks.
CLUSTERLESS_EVENT_OBJECTS = ("fleet", "queue")


def can_manage_notifications(user) -> bool:
    """Whether `user` manages channels and team rules (admins)."""
    return _holds(user, PERM_MANAGE_NOTIFICATIONS)


def require_manage_notifications(user) -> None:
    if not can_manage_notifications(user):
        raise NotPermitted("You do not have permission to manage notification channels.")


def require_notifications(user) -> None:
    """Anyone who may see tasks may watch them (personal rules, the bell)."""
    if not can_view(user):
        raise NotPermitted("You do not have permission to view tasks (TASK_VIEWER).")


def event_visible_to(user, event) -> bool:
    """Whether `user` may see `event` now: its task's or plan's cluster within their view
    grant (an event of no cluster: unscoped grants only), a fleet or queue event to anyone
    who sees tasks. Asked when the event is delivered, not when the rule was made."""
    clusters = permission_clusters(user, PERM_VIEW)
    if event.object_type in CLUSTERLESS_EVENT_OBJECTS:
        return bool(clusters) or clusters is ALL_CLUSTERS
    if clusters is ALL_CLUSTERS:
        return True
    return event.cluster_id is not None and event.cluster_id in clusters


def can_use_channel(user, channel) -> bool:
    """A channel open to all serves anyone's personal rules; the others, team rules."""
    return channel.open_to_all or can_manage_notifications(user)


def require_rule_target(user, *, task_id=None, plan_id=None, cluster: Cluster | None = None):
    """Refuse a rule on a task, a plan or a cluster its owner may not see."""
    if task_id is not None:
        get_task_for_user(user, task_id)
    if plan_id is not None:
        get_plan_for_user(user, plan_id)
    if cluster is not None:
        clusters = permission_clusters(user, PERM_VIEW)
        if clusters is not ALL_CLUSTERS and cluster.pk not in clusters:
            raise InvalidParameter.because("clusterId", f"no cluster {cluster.pk} you may see.")
