"""Every object the tests need, built in one place.

Tasks in any state are built by driving the services.

Every task here is started with `task_start` and moved on with the services a worker and
an operator use (`attempt_claim`, `log_append`, `attempt_finish`, `task_retry`,
`task_rollback`, `subtask_skip`, `subtask_cancel`), so its counters, edges, times, logs
and audit rows are the ones the product writes. `drive()` plays the worker's part
in-process with the demo history's player: a plain `db` test gets FAILED, RUNNING and
rolled-back tasks without a broker, a worker or threads. The engine's messages queued
meanwhile are dropped, so that a real worker running in the same session never races a
factory for an attempt.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from taskcenter.accounts.models import RoleScope, SignInFailureCount
from taskcenter.demo.history import Ending, attempts_not_sent, play_attempts
from taskcenter.engine.models import FinishedMinute, PendingDispatch, WorkerPresence
from taskcenter.schedules import inputs
from taskcenter.schedules import verbs as plan_verbs
from taskcenter.schedules.models import Fire, FireOutcome, Plan, PlanItem
from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import (
    Cluster,
    Host,
    SubtaskInstance,
    SubtaskStatus,
    TaskDefinition,
    TaskInstance,
    TaskStatus,
    Tenant,
)

EXECUTOR = "127.0.0.1"


def drive(
    task: TaskInstance,
    *,
    fail: set[str] = frozenset(),
    stop_at: set[str] = frozenset(),
    executor: str = "test-host",
    quiet: bool = False,
) -> TaskInstance:
    """Run every READY attempt of `task` until none is left (the demo's player,
    `taskcenter.demo.history.play_attempts`, with attempts that take no time).

    Subtasks named in `fail` fail; those in `stop_at` are claimed (RUNNING) and left
    running. A `quiet` attempt prints nothing (a worker that has only just claimed it, a
    step without output). Returns the task as it is then.
    """

    def runs_for(claimed: services.ClaimedAttempt) -> float | None:
        if not quiet:
            services.log_append(
                subtask_id=claimed.subtask_id,
                attempt=claimed.attempt,
                data=f"start run {claimed.run_time} of '{claimed.name}'\n"
                f"working on {claimed.name}\n".encode(),
            )
        return None if claimed.name in stop_at else 0.0

    def ending(claimed: services.ClaimedAttempt, began, ended) -> Ending:
        ok = claimed.name not in fail
        return Ending(ok, b"" if quiet else _last_lines(claimed.name, ok))

    with attempts_not_sent():
        play_attempts(
            task.pk,
            executor=executor,
            now=timezone.now(),
            began=lambda ready_at: ready_at,
            runs_for=runs_for,
            ending=ending,
        )
    return selectors.task_get(task_id=task.pk)


def _last_lines(name: str, ok: bool) -> bytes:
    return b"done\n" if ok else f"{name} failed on purpose\n".encode()


def start(definition: str = "Migrate tenant", creator=None, **parameters) -> TaskInstance:
    with attempts_not_sent():
        return verbs.task_start(definition_name=definition, parameters=parameters, creator=creator)


def subtask_named(task: TaskInstance, name: str) -> SubtaskInstance:
    return task.subtasks.get(name=name)


def first_subtask_with(task: TaskInstance, status: str) -> SubtaskInstance:
    return task.subtasks.filter(status=status).order_by("series_id").first()


# --- Chains: a task whose subtasks end in the given statuses ---------------------------------------


def make_cluster_and_tenant() -> tuple[Cluster, Tenant]:
    cluster, _ = Cluster.objects.get_or_create(
        name="meta", defaults={"ob_cluster_id": 1001, "type": Cluster.Type.PRIMARY}
    )
    tenant, _ = Tenant.objects.get_or_create(
        cluster=cluster, name="sys", defaults={"ob_tenant_id": 1, "mode": Tenant.Mode.MYSQL}
    )
    return cluster, tenant


def _chain_definition(names: list[str], prohibit: tuple[int, ...]) -> str:
    """A stored chain definition whose steps are `names` (created on first use)."""
    # Named by a digest of its shape: definition names are short, chains need not be.
    shape = hashlib.sha1(repr((names, prohibit)).encode()).hexdigest()[:12]
    name = f"Test chain of {len(names)} ({shape})"
    if not TaskDefinition.objects.filter(name=name).exists():
        steps = [
            {
                "key": f"s{index}",
                "name": step,
                "kind": "SHELL_TASK",
                "action": {"command": "true"},
                "upstreams": [f"s{index - 1}"] if index else [],
                "description": f"Step number {index}",
                "prohibitRollback": index in prohibit,
            }
            for index, step in enumerate(names)
        ]
        services.definition_create_from_data(name=name, spec={"subtasks": steps})
    return name


def chain_task(
    subtask_statuses: list[str],
    *,
    name: str = "Migrate tenant",
    step_names: list[str] | None = None,
    cluster: Cluster | None = None,
    tenant: Tenant | None = None,
    creator=None,
    prohibit: tuple[int, ...] = (),
) -> TaskInstance:
    """A task named `name` whose subtasks form a chain that ran until its subtasks had the
    given statuses: SUCCESSFUL ones succeeded, a FAILED one failed, a RUNNING one is
    claimed and left running, PENDING ones come after. The task's own status is what the
    services make of that."""
    names = step_names or [f"step {index}" for index in range(len(subtask_statuses))]
    definition = _chain_definition(names, prohibit)
    with attempts_not_sent():
        task = verbs.task_start(
            definition_name=definition, name=name, cluster=cluster, tenant=tenant, creator=creator
        )
    by_status = dict(zip(names, subtask_statuses, strict=True))
    return drive(
        task,
        fail={n for n, s in by_status.items() if s == SubtaskStatus.FAILED},
        stop_at={n for n, s in by_status.items() if s == SubtaskStatus.RUNNING},
        executor=EXECUTOR,
        quiet=True,
    )


def make_task(
    subtask_statuses: list[str],
    *,
    name: str = "Migrate tenant",
    creator=None,
    with_tenant: bool = True,
    with_creator: bool = True,
    prohibit: tuple[int, ...] = (),
) -> TaskInstance:
    """A chain task on the meta cluster's sys tenant, created by "task-owner" by default."""
    cluster, tenant = make_cluster_and_tenant() if with_tenant else (None, None)
    if creator is None and with_creator:
        creator, _ = get_user_model().objects.get_or_create(username="task-owner")
    return chain_task(
        subtask_statuses,
        name=name,
        cluster=cluster,
        tenant=tenant,
        creator=creator,
        prohibit=prohibit,
    )


def failed_task(**kwargs) -> TaskInstance:
    return make_task(["SUCCESSFUL", "FAILED", "PENDING"], **kwargs)


def running_task(**kwargs) -> TaskInstance:
    return make_task(["SUCCESSFUL", "RUNNING", "PENDING"], **kwargs)


def failed_task_on(cluster: Cluster, name: str) -> TaskInstance:
    """A failed task on `cluster`: a successful step, a failed one, a pending one."""
    return _task_on(cluster, name, ["SUCCESSFUL", "FAILED", "PENDING"])


def running_task_on(cluster: Cluster, name: str) -> TaskInstance:
    """A running task on `cluster`: a successful step, a running one, a pending one."""
    return _task_on(cluster, name, ["SUCCESSFUL", "RUNNING", "PENDING"])


def _task_on(cluster: Cluster, name: str, statuses: list[str]) -> TaskInstance:
    tenant, _ = Tenant.objects.get_or_create(
        cluster=cluster, name=f"{cluster.name}-t1", defaults={"ob_tenant_id": cluster.pk}
    )
    owner, _ = get_user_model().objects.get_or_create(username=f"owner-{cluster.name}")
    return chain_task(
        statuses,
        name=name,
        step_names=[f"{name} step {index}" for index in range(len(statuses))],
        cluster=cluster,
        tenant=tenant,
        creator=owner,
    )


# --- After the operators: rolled back, skipped, canceled ---------------------------------------


def rolled_back_task(actor=None, **kwargs) -> TaskInstance:
    """A failed chain given up: every subtask that ran is rolled back."""
    task = failed_task(**kwargs)
    with attempts_not_sent():
        verbs.task_rollback(task_id=task.pk, actor=actor, reason="given up")
    return drive(task)


def skipped_task(actor=None, **kwargs) -> TaskInstance:
    """A failed chain whose failed subtask was skipped, then run to its end."""
    task = failed_task(**kwargs)
    failed = first_subtask_with(task, SubtaskStatus.FAILED)
    with attempts_not_sent():
        verbs.subtask_skip(task_id=task.pk, subtask_id=failed.pk, actor=actor, reason="by hand")
    return drive(task)


def canceling_task(actor=None, **kwargs) -> TaskInstance:
    """A running chain whose running subtask was asked to stop (CANCELING)."""
    task = running_task(**kwargs)
    running = first_subtask_with(task, SubtaskStatus.RUNNING)
    verbs.subtask_cancel(task_id=task.pk, subtask_id=running.pk, actor=actor)
    return selectors.task_get(task_id=task.pk)


TWO_ROOTS = "Two independent steps"


def two_root_task(creator=None) -> TaskInstance:
    """A running task whose two independent steps ("first", "second") are both READY
    (queued) at start, and a third ("after both") PENDING behind them."""
    if not TaskDefinition.objects.filter(name=TWO_ROOTS).exists():
        step = {"kind": "SHELL_TASK", "action": {"command": "true"}}
        services.definition_create_from_data(
            name=TWO_ROOTS,
            spec={
                "subtasks": [
                    {"key": "a", "name": "first", **step},
                    {"key": "b", "name": "second", **step},
                    {"key": "c", "name": "after both", "upstreams": ["a", "b"], **step},
                ]
            },
        )
    return verbs.task_start(definition_name=TWO_ROOTS, creator=creator)


DEPLOY_WITH_APPROVAL = "Deploy with approval"
APPROVAL_GATE = "Approve the deployment"


def waiting_approval(creator=None, **parameters) -> TaskInstance:
    """A demo "Deploy with approval" task whose build ran and whose approval gate waits
    (RUNNING, no worker) for a decision."""
    return drive(start(DEPLOY_WITH_APPROVAL, creator=creator, **parameters), quiet=True)


# --- Plans: submitted through their verb, as POST /api/schedules does -------------------------

NOTEBOOK_JOB = "com.hengshi.nangaparbat.schedulejob.NotebookJob"
PIPELINE_JOB = "com.hengshi.nangaparbat.schedulejob.PipelineJob"
# A Monday, so weekly expressions have a known first fire.
T0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)


def cron_item(expression: str, zone: str = "UTC", item_id: int | None = None) -> dict:
    item = {"triggerType": "CRON_JOB", "cronDesc": expression, "cronType": "CRON"}
    item["timeZone"] = zone
    if item_id is not None:
        item["id"] = item_id
    return item


def dependency_item(*jobs: tuple[str, str]) -> dict:
    return {
        "triggerType": "DEPENDENCY",
        "triggerByJobs": [{"entityGroup": g, "entityKey": k} for g, k in jobs],
    }


def make_plan(
    key: str = "1",
    items: list[dict] | None = None,
    *,
    group: str = "NOTEBOOK",
    now: datetime = T0,
    actor=None,
    retry_times: int = 0,
    **fields,
) -> Plan:
    """A plan submitted through its verb, as POST /api/schedules does."""
    job = PIPELINE_JOB if group == "PIPELINE" else NOTEBOOK_JOB
    param = "pipeline" if group == "PIPELINE" else "notebook"
    body = {
        "entityGroup": group,
        "entityKey": key,
        "planItems": items if items is not None else [cron_item("0 * * * * ?")],
        "execDetail": {"jobClass": job, "jobParams": {param: 1}, "retryTimes": retry_times},
        **fields,
    }
    return plan_verbs.plan_submit(actor=actor, data=inputs.plan_input(body), now=now).plan


def run_now(key: str = "1", *, actor=None) -> int:
    """A plan's run started now (its ONCE item), as the context's id; no worker runs it."""
    plan = make_plan(key, [{"triggerType": "ONCE"}], actor=actor)
    return Fire.objects.get(plan=plan).task_id


def end_run(task_id: int, status: str = TaskStatus.SUCCESSFUL) -> None:
    """Test set-up: a context's task ends (no engine runs in these tests)."""
    sub_status = "SUCCESSFUL" if status == TaskStatus.SUCCESSFUL else "FAILED"
    SubtaskInstance.objects.filter(task_id=task_id).update(status=sub_status)
    TaskInstance.objects.filter(pk=task_id).update(status=status, finish_time=T0)


def make_fire(
    plan: Plan, outcome: str = FireOutcome.STARTED, fire_time=None, upstream: Fire | None = None
) -> Fire:
    """A fire record of the plan's first item, at its next fire time unless given (after
    `upstream`'s run, for a dependency's fire)."""
    item = PlanItem.objects.filter(plan=plan).first()
    return Fire.objects.create(
        plan=plan,
        item=item,
        fire_time=fire_time or item.next_fire_at,
        outcome=outcome,
        upstream=upstream,
    )


# --- People, roles and scopes ------------------------------------------------------------------

PASSWORD = "Pa55word!long"  # every persona's


def make_user(username: str, *role_names: str, password: str = PASSWORD):
    """A user holding the named roles everywhere."""
    user = get_user_model().objects.create_user(username=username, password=password)
    for role in role_names:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_superuser(username: str = "root", password: str = PASSWORD):
    return get_user_model().objects.create_superuser(username, password=password)


def make_role(name: str, *codenames: str) -> Group:
    """A role (a group) holding the permissions with these codenames."""
    group = Group.objects.create(name=name)
    group.permissions.set(Permission.objects.filter(codename__in=codenames))
    return group


def grant_scoped(user, role: str, *clusters: Cluster) -> RoleScope:
    """`user` holds `role` on the given clusters only."""
    grant = RoleScope.objects.create(user=user, group=Group.objects.get(name=role))
    grant.clusters.set(clusters)
    return grant


# --- Clusters, tenants, hosts ------------------------------------------------------------------


def make_cluster(name: str, ob_cluster_id: int | None = None) -> Cluster:
    if ob_cluster_id is None:
        ob_cluster_id = (
            Cluster.objects.order_by("-ob_cluster_id")
            .values_list("ob_cluster_id", flat=True)
            .first()
            or 0
        ) + 1
    return Cluster.objects.create(name=name, ob_cluster_id=ob_cluster_id)


def make_tenant(cluster: Cluster, name: str, ob_tenant_id: int = 1) -> Tenant:
    return Tenant.objects.create(cluster=cluster, name=name, ob_tenant_id=ob_tenant_id)


def make_host(address: str, cluster: Cluster | None = None) -> Host:
    return Host.objects.create(address=address, cluster=cluster)


# --- The fleet: worker presence rows and finished-attempt counts ------------------------------


def make_presence(
    name: str,
    *,
    seen_ago: timedelta = timedelta(0),
    started_ago: timedelta | None = None,
    stopped: bool = False,
    pid: int = 4242,
    **fields,
) -> WorkerPresence:
    """A worker's presence row as its beats leave it: `name` is `worker@host`."""
    seen = timezone.now() - seen_ago
    return WorkerPresence.objects.create(
        name=name,
        hostname=name.partition("@")[2],
        pid=pid,
        started_at=seen - (started_ago if started_ago is not None else timedelta(hours=1)),
        last_seen=seen,
        stopped_at=seen if stopped else None,
        **fields,
    )


def make_finished_minute(worker: str, count: int, at: datetime | None = None) -> FinishedMinute:
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    return FinishedMinute.objects.create(minute=minute, worker=worker, count=count)


def make_outbox_row(subtask: SubtaskInstance, failed_at: datetime | None = None) -> PendingDispatch:
    """An attempt of `subtask` whose send failed (at `failed_at`, else now)."""
    return PendingDispatch.objects.create(
        subtask=subtask, attempt=subtask.attempt, failed_at=failed_at or timezone.now()
    )


# --- Sign-in counters and sessions ---------------------------------------------------------------


def make_signin_count(key: str, bucket: int, count: int = 1, kind: str = "pair"):
    """The throttle's counter of `key` in the window numbered `bucket`."""
    return SignInFailureCount.objects.create(kind=kind, key=key, bucket=bucket, count=count)


def make_known_signin(key: str, last_success_at: datetime):
    """A user name's last sign-in from an address (`key`: address and user name)."""
    from taskcenter.accounts.models import KnownSignIn

    return KnownSignIn.objects.create(key=key, last_success_at=last_success_at)


def make_session(expire_date: datetime | None = None) -> str:
    """A stored session (expiring at `expire_date`, else as configured); its key."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    store = SessionStore()
    store.create()
    if expire_date is not None:
        Session.objects.filter(session_key=store.session_key).update(expire_date=expire_date)
    return store.session_key


# --- Notifications: channels, rules, events, deliveries ------------------------------------


def make_channel(name: str = "ops", kind: str = "webhook", **fields):
    """A channel row (the verbs make real ones: notifications.verbs.channel_create)."""
    from taskcenter.notifications.models import Channel

    return Channel.objects.create(name=name, kind=kind, **fields)


def make_rule(owner, *, personal: bool = True, **fields):
    from taskcenter.notifications.models import Rule

    return Rule.objects.create(owner=owner, personal=personal, **fields)


def make_event(key: str, kind: str = "task.failed", **fields):
    """An event row as the recorder leaves it (object_type "task" unless given)."""
    from taskcenter.notifications.models import Event

    fields.setdefault("object_type", "task")
    return Event.objects.create(key=key, kind=kind, **fields)


def make_delivery(channel, status: str = "PENDING", **fields):
    from taskcenter.notifications.models import Delivery

    return Delivery.objects.create(channel=channel, status=status, **fields)


def make_delivery_try(delivery, **fields):
    """One send of a delivery, as the outbox records it."""
    from taskcenter.notifications.models import DeliveryAttempt

    return DeliveryAttempt.objects.create(delivery=delivery, **fields)
