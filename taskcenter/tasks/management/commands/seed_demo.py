"""seed_demo: a demo database in OCP's shape.

Clusters, tenants and hosts; the demo users viewer, operator and admin; a month of finished
task history; and, with --live, a few tasks really started through the engine.

Running it again changes nothing that exists: objects are looked up by name, users keep
their passwords, and history and live tasks are recognised by the trace id of their audit
rows.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.core.trace import reset_trace_id, set_trace_id
from taskcenter.tasks import definitions, services
from taskcenter.tasks.definitions import DefinitionSpec, SubtaskSpec
from taskcenter.tasks.errors import TaskCenterError
from taskcenter.tasks.models import (
    Cluster,
    Host,
    LogChunk,
    NodeType,
    Operation,
    SubtaskInstance,
    SubtaskOperation,
    SubtaskStatus,
    TaskInstance,
    TaskOperation,
    TaskStatus,
    TaskType,
    Tenant,
)

# Audit rows of seeded tasks carry these trace ids, which is how a second run knows what
# it already wrote.
HISTORY_TRACE = "seed-demo-history"
LIVE_TRACE = "seed-demo-live"

PRIMARY, STANDBY = Cluster.Type.PRIMARY, Cluster.Type.STANDBY
ORACLE, MYSQL = Tenant.Mode.ORACLE, Tenant.Mode.MYSQL

# (name, obClusterId, type, [(tenant, obTenantId, mode)], [host addresses])
CLUSTERS: list[tuple[str, int, str, list[tuple[str, int, str]], list[str]]] = [
    (
        "meta",
        1,
        PRIMARY,
        [("sys", 1, MYSQL), ("ocp_meta", 1001, MYSQL), ("ocp_monitor", 1002, MYSQL)],
        ["10.10.1.11", "10.10.1.12"],
    ),
    (
        "prod-east",
        2,
        PRIMARY,
        [
            ("sys", 1, MYSQL),
            ("trade", 1001, ORACLE),
            ("billing", 1002, MYSQL),
            ("crm", 1003, ORACLE),
        ],
        ["10.20.1.11", "10.20.1.12", "10.20.1.13"],
    ),
    (
        "prod-east-standby",
        3,
        STANDBY,
        [("sys", 1, MYSQL), ("trade", 1001, ORACLE), ("billing", 1002, MYSQL)],
        ["10.30.1.11", "10.30.1.12", "10.30.1.13"],
    ),
]

# (username, role, is_staff)
DEMO_USERS = [
    ("viewer", roles.VIEWER, False),
    ("operator", roles.MANAGER, False),
    ("admin", roles.ADMIN, True),
]

# Live tasks: (definition, parameters, cluster name, tenant name)
LIVE_TASKS = [
    ("Back up cluster", {}, "prod-east", None),
    ("Migrate tenant", {}, "prod-east", "trade"),
    ("Scale out tenant units", {"units": 4}, "prod-east", "billing"),
]

SUCCESSFUL, RETRIED = "successful", "successful after a retry"
FAILED, ROLLED_BACK = "failed", "rolled back"
OUTCOME_WEIGHTS = {SUCCESSFUL: 60, RETRIED: 10, FAILED: 18, ROLLED_BACK: 12}
TYPE_WEIGHTS = {
    TaskType.MANUAL: 50,
    TaskType.SCHEDULED: 20,
    TaskType.SYS_SCHEDULED: 15,
    TaskType.SYS_ONECE: 15,
}
DEFINITION_WEIGHTS = {"Rolling upgrade of observers": 1}  # the others weigh 3
HISTORY_DAYS = 30


class Command(BaseCommand):
    help = (
        "Fill the database with demo data in OCP's shape: clusters, tenants, hosts, the demo "
        "users viewer/operator/admin, and a month of finished task history. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tasks", type=int, default=300, help="Historical task instances (default 300)."
        )
        parser.add_argument(
            "--live",
            action="store_true",
            help="Also start a few live demo tasks through the engine (a worker runs them).",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed, for reproducible history."
        )

    def handle(self, *args, tasks: int, live: bool, seed: int | None, **options):
        if tasks < 0:
            raise CommandError("--tasks must be zero or more.")
        rng = random.Random(seed)
        with transaction.atomic():
            clusters = self._seed_topology()
            users = self._seed_users()
        self._seed_history(tasks, rng, users)
        if live:
            self._start_live(users, clusters)

    # --- Topology ------------------------------------------------------------------------------

    def _seed_topology(self) -> dict[str, Cluster]:
        clusters: dict[str, Cluster] = {}
        created = Counter()
        for name, ob_id, type_, tenants, hosts in CLUSTERS:
            cluster, new = Cluster.objects.get_or_create(
                name=name, defaults={"ob_cluster_id": ob_id, "type": type_}
            )
            created["cluster"] += new
            clusters[name] = cluster
            for tenant_name, tenant_id, mode in tenants:
                _, new = Tenant.objects.get_or_create(
                    cluster=cluster,
                    name=tenant_name,
                    defaults={"ob_tenant_id": tenant_id, "mode": mode},
                )
                created["tenant"] += new
            for address in hosts:
                _, new = Host.objects.get_or_create(address=address, defaults={"cluster": cluster})
                created["host"] += new
        self.stdout.write(
            f"topology: {len(CLUSTERS)} clusters, {sum(len(c[3]) for c in CLUSTERS)} tenants, "
            f"{sum(len(c[4]) for c in CLUSTERS)} hosts ({created['cluster']} clusters, "
            f"{created['tenant']} tenants, {created['host']} hosts new)"
        )
        return clusters

    # --- Users ---------------------------------------------------------------------------------

    def _seed_users(self) -> dict[str, Any]:
        User = get_user_model()
        configured = settings.TASKCENTER_DEMO_PASSWORD
        password = configured or secrets.token_urlsafe(12)
        users, created = {}, []
        for username, role, is_staff in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username=username, password=password)
                created.append(username)
            if is_staff and not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
            users[username] = user
        existing = [name for name, _, _ in DEMO_USERS if name not in created]
        if created:
            shown = "from TASKCENTER_DEMO_PASSWORD" if configured else password
            self.stdout.write(f"demo users {', '.join(created)}; password: {shown}")
        if existing:
            self.stdout.write(
                f"demo users {', '.join(existing)} already exist; their passwords are unchanged"
            )
        return users

    # --- History -------------------------------------------------------------------------------

    def _seed_history(self, count: int, rng: random.Random, users: dict[str, Any]) -> None:
        # Demo history is fixture data written directly, not through the services: it is the
        # record of runs that never happened here, so there is no state machine to drive.
        # The rows are shaped like the ones the engine leaves behind (statuses, runTime,
        # attempts, DAG edges, logs with byte offsets, audit rows).
        already = Operation.objects.filter(trace_id=HISTORY_TRACE, action="START").count()
        if already:
            self.stdout.write(f"history: {already} demo tasks already present; nothing added")
            return
        if count == 0:
            return
        specs = [
            spec
            for spec in definitions.registered_definitions()
            if not spec.name.startswith("Benchmark")
        ]
        if not specs:
            raise CommandError("No task definitions are registered; nothing to seed history from.")
        writer = _HistoryWriter(rng, users, specs)
        with transaction.atomic():
            outcomes = writer.write(count)
        summary = ", ".join(
            f"{outcomes[outcome]} {outcome}" for outcome in OUTCOME_WEIGHTS if outcomes[outcome]
        )
        self.stdout.write(f"history: {count} tasks over the last {HISTORY_DAYS} days ({summary})")

    # --- Live tasks ----------------------------------------------------------------------------

    def _start_live(self, users: dict[str, Any], clusters: dict[str, Cluster]) -> None:
        started_before = set(
            Operation.objects.filter(trace_id=LIVE_TRACE, action="START").values_list(
                "task__name", flat=True
            )
        )
        for name, params, cluster_name, tenant_name in LIVE_TASKS:
            if name in started_before:
                self.stdout.write(f"live: '{name}' was started by an earlier run; not again")
                continue
            cluster = clusters[cluster_name]
            tenant = cluster.tenants.get(name=tenant_name) if tenant_name else None
            token = set_trace_id(LIVE_TRACE)
            try:
                task = services.task_start(
                    definition_name=name,
                    parameters=params,
                    creator=users["operator"],
                    cluster=cluster,
                    tenant=tenant,
                    hosts=list(cluster.hosts.all()),
                )
            except TaskCenterError as exc:
                raise CommandError(f"could not start live task '{name}': {exc.message}") from None
            finally:
                reset_trace_id(token)
            self.stdout.write(f"live: started task {task.pk} '{name}'")


# --- The history writer ---------------------------------------------------------------------------


@dataclass
class _Attempt:
    number: int
    start: datetime
    finish: datetime
    lines: list[str]


@dataclass
class _Sub:
    spec: SubtaskSpec
    index: int
    upstreams: list[int]
    downstreams: list[int] = field(default_factory=list)
    status: str = SubtaskStatus.PENDING
    operation: str = SubtaskOperation.EXECUTE
    run_time: int = 0
    attempts: list[_Attempt] = field(default_factory=list)
    executor: str = ""
    result: Any = None


@dataclass
class _Run:
    """One simulated task: its subtasks, times, and audit trail."""

    spec: DefinitionSpec
    params: dict[str, Any]
    outcome: str
    type: str
    creator: Any
    cluster: Cluster | None
    tenant: Tenant | None
    hosts: list[Host]
    subs: list[_Sub]
    start: datetime
    finish: datetime = None  # type: ignore[assignment]
    operation: str = TaskOperation.EXECUTE
    executor: str = ""
    audit: list[tuple[datetime, Any, str, str, str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return TaskStatus.FAILED if self.outcome == FAILED else TaskStatus.SUCCESSFUL


class _HistoryWriter:
    def __init__(self, rng: random.Random, users: dict[str, Any], specs: list[DefinitionSpec]):
        self.rng = rng
        self.operators = [users["operator"], users["operator"], users["operator"], users["admin"]]
        self.specs = specs
        self.weights = [DEFINITION_WEIGHTS.get(spec.name, 3) for spec in specs]
        self.rows = {spec.name: services.definition_sync(spec=spec) for spec in specs}
        self.clusters = list(Cluster.objects.order_by("pk"))
        self.hosts = list(Host.objects.select_related("cluster").order_by("pk"))
        self.tenants = list(Tenant.objects.select_related("cluster").order_by("pk"))
        self.user_tenants = [t for t in self.tenants if t.name != "sys"] or self.tenants
        meta = [h.address for h in self.hosts if h.cluster and h.cluster.name == "meta"]
        self.executors = meta or ["127.0.0.1"]
        self._shapes: dict[tuple[str, str], list[SubtaskSpec]] = {}

    # -- choosing --

    def _pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _shape(self, spec: DefinitionSpec, params: dict[str, Any]) -> list[SubtaskSpec]:
        key = (spec.name, repr(sorted(params.items())))
        if key not in self._shapes:
            self._shapes[key] = definitions.validate_subtasks(spec.name, spec.build(params))
        return self._shapes[key]

    def _target(self, spec: DefinitionSpec, given: dict[str, Any]):
        """Parameters, cluster, tenant and hosts that suit the definition."""
        rng = self.rng
        known = {p.name for p in spec.parameters}
        cluster = rng.choice(self.clusters) if self.clusters else None
        tenant = None
        if spec.name == "Reinstall OCP agent" and self.hosts:
            host = rng.choice(self.hosts)
            given["host"] = host.address
            return given, host.cluster, None, [host]
        if spec.name in ("Migrate tenant", "Scale out tenant units") and self.user_tenants:
            tenant = rng.choice(self.user_tenants)
            cluster = tenant.cluster
        if "units" in known:
            given["units"] = rng.randint(2, 6)
        if "servers_per_zone" in known:
            given["servers_per_zone"] = rng.choice([3, 5, 10, 20])
        if "seconds" in known:
            given["seconds"] = rng.choice([300, 600, 1200, 1800])
        if spec.name == "Check service health":
            return given, None, None, []
        hosts = [h for h in self.hosts if cluster is not None and h.cluster_id == cluster.pk]
        return given, cluster, tenant, hosts

    # -- simulating --

    def simulate(self, start: datetime, outcome: str, task_type: str) -> _Run:
        rng = self.rng
        spec = rng.choices(self.specs, weights=self.weights)[0]
        given, cluster, tenant, hosts = self._target(spec, {})
        known = {p.name for p in spec.parameters}
        params = spec.resolve_parameters({k: v for k, v in given.items() if k in known})
        ordered = self._shape(spec, params)
        index = {sub.key: i for i, sub in enumerate(ordered)}
        subs = [
            _Sub(spec=sub, index=i, upstreams=[index[u] for u in dict.fromkeys(sub.upstreams)])
            for i, sub in enumerate(ordered)
        ]
        for sub in subs:
            for up in sub.upstreams:
                subs[up].downstreams.append(sub.index)

        failing = self._choose_failure(subs, outcome)
        if failing is None and outcome != SUCCESSFUL:
            outcome = FAILED if outcome == ROLLED_BACK else SUCCESSFUL
        if "fail_step" in params:
            params["fail_step"] = subs[failing].spec.key if failing is not None else ""
            params["fail_times"] = 1
        system = task_type in (TaskType.SYS_ONECE, TaskType.SYS_SCHEDULED)
        creator = None if system else rng.choice(self.operators)
        run = _Run(
            spec=spec,
            params=params,
            outcome=outcome,
            type=task_type,
            creator=creator,
            cluster=cluster,
            tenant=tenant,
            hosts=hosts,
            subs=subs,
            start=start,
            executor=rng.choice(self.executors),
        )
        run.audit.append((start, creator, "START", "", TaskStatus.RUNNING, spec.name))

        blocked = self._descendants(subs, failing) if failing is not None else set()
        end = self._run_forward(run, [s for s in subs if s.index not in blocked], start, failing)
        if outcome == SUCCESSFUL:
            run.finish = end
        else:
            run.audit.append(
                (end, None, "FINISH", TaskStatus.RUNNING, TaskStatus.FAILED, "task ended FAILED")
            )
            run.finish = end
            actor = rng.choice(self.operators)
            later = end + timedelta(seconds=rng.uniform(60, 3 * 3600))
            if outcome == RETRIED:
                run.operation = TaskOperation.RETRY
                run.audit.append((later, actor, "RETRY", TaskStatus.FAILED, TaskStatus.RUNNING, ""))
                again = [subs[failing]] + [s for s in subs if s.index in blocked]
                run.finish = self._run_forward(run, again, later, None, retry_of=failing)
            elif outcome == ROLLED_BACK:
                run.operation = TaskOperation.ROLLBACK
                reason = "give up: " + rng.choice(["not needed any more", "wrong target", ""])
                run.audit.append(
                    (later, actor, "ROLLBACK", TaskStatus.FAILED, TaskStatus.RUNNING, reason)
                )
                run.finish = self._roll_back(run, later)
        if outcome != FAILED:
            label = "rolled back" if outcome == ROLLED_BACK else "SUCCESSFUL"
            run.audit.append(
                (
                    run.finish,
                    None,
                    "FINISH",
                    TaskStatus.RUNNING,
                    TaskStatus.SUCCESSFUL,
                    f"task ended {label}",
                )
            )
        return run

    def _choose_failure(self, subs: list[_Sub], outcome: str) -> int | None:
        if outcome == SUCCESSFUL:
            return None
        candidates = list(range(len(subs)))
        if outcome == ROLLED_BACK:
            # OCP refuses to roll back once a subtask that prohibits it has run.
            def may_roll_back(f: int) -> bool:
                ran = set(range(len(subs))) - self._descendants(subs, f)
                return not any(subs[i].spec.prohibit_rollback for i in ran)

            candidates = [f for f in candidates if may_roll_back(f)]
        return self.rng.choice(candidates) if candidates else None

    @staticmethod
    def _descendants(subs: list[_Sub], index: int) -> set[int]:
        seen: set[int] = set()
        stack = list(subs[index].downstreams)
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(subs[i].downstreams)
        return seen

    def _duration(self, sub: SubtaskSpec, params: dict[str, Any]) -> float:
        rng = self.rng
        kwargs = sub.action.get("kwargs", {}) if isinstance(sub.action, dict) else {}
        if sub.kind == NodeType.PYTHON_TASK:
            return float(kwargs.get("seconds", 0.05)) * rng.uniform(1.0, 1.4) + 0.05
        if sub.kind == NodeType.HTTP_TASK:
            return rng.uniform(0.05, 0.4)
        if "TC_PARAM_SECONDS" in str(sub.action.get("command", "")):
            return float(params.get("seconds", 60)) * rng.uniform(1.0, 1.05)
        return rng.uniform(0.3, 3.0)

    def _run_forward(
        self,
        run: _Run,
        todo: list[_Sub],
        start: datetime,
        failing: int | None,
        retry_of: int | None = None,
    ) -> datetime:
        """Run `todo` (in topological order) from `start`; return when the last one ended."""
        rng = self.rng
        todo_ids = {s.index for s in todo}
        finished_at: dict[int, datetime] = {}
        end = start
        for sub in todo:
            ready = max(
                [finished_at[u] for u in sub.upstreams if u in todo_ids] + [start],
            ) + timedelta(seconds=rng.uniform(0.02, 0.3))
            duration = self._duration(sub.spec, run.params)
            failed = sub.index == failing
            if failed:
                duration = duration * rng.uniform(0.3, 0.9)
            finish = ready + timedelta(seconds=duration)
            sub.run_time += 1
            sub.executor = run.executor
            sub.operation = (
                SubtaskOperation.RETRY if sub.index == retry_of else SubtaskOperation.EXECUTE
            )
            sub.status = SubtaskStatus.FAILED if failed else SubtaskStatus.SUCCESSFUL
            lines = self._forward_lines(run, sub, failed, duration)
            sub.attempts.append(_Attempt(len(sub.attempts) + 1, ready, finish, lines))
            if not failed and sub.spec.action.get("callable") == "demo.step":
                step = sub.spec.action.get("kwargs", {}).get("step", sub.spec.key)
                sub.result = {
                    "schema": [
                        {"name": "step", "type": "string"},
                        {"name": "run", "type": "number"},
                    ],
                    "data": [[step, sub.run_time]],
                }
            finished_at[sub.index] = finish
            end = max(end, finish)
        return end

    def _roll_back(self, run: _Run, start: datetime) -> datetime:
        """Undo every subtask that ran, downstream first, as task_rollback does."""
        rng = self.rng
        ran = [s for s in run.subs if s.status != SubtaskStatus.PENDING]
        ran_ids = {s.index for s in ran}
        finished_at: dict[int, datetime] = {}
        end = start
        for sub in reversed(ran):
            ready = max(
                [finished_at[d] for d in sub.downstreams if d in ran_ids] + [start]
            ) + timedelta(seconds=rng.uniform(0.02, 0.3))
            duration = rng.uniform(0.2, 0.6)
            finish = ready + timedelta(seconds=duration)
            lines = [f"start rollback of '{sub.spec.name}' ({sub.spec.kind}) on {run.executor}"]
            undo = sub.spec.rollback
            if not undo:
                lines.append("nothing to roll back for this subtask")
            elif sub.spec.kind == NodeType.PYTHON_TASK:
                step = undo.get("kwargs", {}).get("step", sub.spec.key)
                lines += [f"{step}: undoing the changes of this step", f"{step}: rolled back"]
            elif sub.spec.kind == NodeType.SHELL_TASK:
                lines += [f"$ {undo.get('command', '')}", "command exited with status 0"]
            lines.append(f"succeeded in {duration:.2f} s")
            sub.attempts.append(_Attempt(len(sub.attempts) + 1, ready, finish, lines))
            sub.status = SubtaskStatus.PENDING
            sub.operation = SubtaskOperation.ROLLBACK
            finished_at[sub.index] = finish
            end = max(end, finish)
        return end

    def _forward_lines(self, run: _Run, sub: _Sub, failed: bool, duration: float) -> list[str]:
        spec = sub.spec
        lines = [f"start run {sub.run_time} of '{spec.name}' ({spec.kind}) on {run.executor}"]
        if spec.kind == NodeType.PYTHON_TASK:
            kwargs = spec.action.get("kwargs", {})
            if spec.action.get("callable") == "demo.step":
                step, count = kwargs.get("step", spec.key), int(kwargs.get("lines", 3))
                lines += [f"{step}: working ({i + 1}/{count})" for i in range(count)]
                if failed:
                    lines.append(
                        f"failed with RuntimeError: {step} failed on purpose "
                        f"(fail_step={step}, run {sub.run_time})"
                    )
                else:
                    lines.append(f"{step}: done")
            elif failed:
                lines.append("failed with RuntimeError: the step reported an error")
        elif spec.kind == NodeType.SHELL_TASK:
            command = str(spec.action.get("command", "")).replace("\n", " ")
            lines.append(f"$ {command}")
            output = _shell_output(command, run.params)
            lines += output[:1] if failed else output
            lines.append(
                "failed: command exited with status 1" if failed else "command exited with status 0"
            )
        elif spec.kind == NodeType.HTTP_TASK:
            url = str(spec.action.get("url", ""))
            try:
                url = url.format(**run.params)
            except (KeyError, IndexError, ValueError):
                pass
            lines.append(f"HTTP {spec.action.get('method', 'GET')} {url}")
            if failed:
                lines.append(
                    "failed: HTTP request failed: ConnectError: [Errno 111] Connection refused"
                )
            else:
                lines.append(f"HTTP 200 in {duration * 1000:.0f} ms, 16 bytes")
        lines.append(f"{'failed' if failed else 'succeeded'} in {duration:.2f} s")
        return lines

    # -- writing --

    def write(self, count: int) -> Counter:
        rng = self.rng
        now = timezone.now()
        # Every outcome and type at least once, then at random in the usual proportions.
        outcomes = list(OUTCOME_WEIGHTS)[:count]
        outcomes += [self._pick(OUTCOME_WEIGHTS) for _ in range(count - len(outcomes))]
        types = list(TYPE_WEIGHTS)[:count]
        types += [self._pick(TYPE_WEIGHTS) for _ in range(count - len(types))]
        rng.shuffle(outcomes)
        rng.shuffle(types)
        # Starts at least a few hours ago so that even a retried or rolled-back run, and a
        # long backup, ended in the past.
        starts = sorted(
            now - timedelta(seconds=rng.uniform(6 * 3600, HISTORY_DAYS * 86400))
            for _ in range(count)
        )
        runs = [
            self.simulate(start, outcome, task_type)
            for start, outcome, task_type in zip(starts, outcomes, types, strict=True)
        ]
        self._insert(runs)
        return Counter(run.outcome for run in runs)

    def _insert(self, runs: list[_Run]) -> None:
        tasks = TaskInstance.objects.bulk_create(
            [
                TaskInstance(
                    name=run.spec.name,
                    definition=self.rows[run.spec.name],
                    cluster=run.cluster,
                    tenant=run.tenant,
                    creator=run.creator,
                    status=run.status,
                    type=run.type,
                    operation=run.operation,
                    executor=run.executor,
                    prohibit_rollback=any(
                        s.spec.prohibit_rollback and s.run_time for s in run.subs
                    ),
                    parameters=run.params,
                    start_time=run.start,
                    finish_time=run.finish,
                    subtask_total=len(run.subs),
                )
                for run in runs
            ],
            batch_size=500,
        )
        for task, run in zip(tasks, runs, strict=True):
            task.create_time = run.start  # auto_now_add stamped "now" on insert
        _update_columns(tasks, ["create_time"])
        TaskInstance.hosts.through.objects.bulk_create(
            [
                TaskInstance.hosts.through(taskinstance_id=task.pk, host_id=host.pk)
                for task, run in zip(tasks, runs, strict=True)
                for host in run.hosts
            ],
            batch_size=500,
        )

        pairs: list[tuple[_Run, _Sub, list[tuple[int, datetime, bytes]]]] = []
        rows = []
        for task, run in zip(tasks, runs, strict=True):
            for sub in run.subs:
                chunks = [
                    (attempt.number, attempt.finish, _log_bytes(attempt, run.executor))
                    for attempt in sub.attempts
                ]
                last = sub.attempts[-1] if sub.attempts else None
                rows.append(
                    SubtaskInstance(
                        task_id=task.pk,
                        name=sub.spec.name,
                        series_id=sub.index,
                        description=sub.spec.description or sub.spec.name,
                        timeout=sub.spec.timeout,
                        status=sub.status,
                        operation=sub.operation,
                        executor=sub.executor,
                        run_time=sub.run_time,
                        retry_count=sub.spec.retry_count,
                        node_type=sub.spec.kind,
                        parallel_idx=sub.spec.parallel_idx,
                        prohibit_rollback=sub.spec.prohibit_rollback,
                        action=sub.spec.action,
                        rollback_action=sub.spec.rollback,
                        result=sub.result,
                        start_time=last.start if last else None,
                        finish_time=last.finish if last else None,
                        attempt=len(sub.attempts),
                        ready_at=last.start if last else None,
                        log_size=sum(len(data) for _, _, data in chunks),
                    )
                )
                pairs.append((run, sub, chunks))
        rows = SubtaskInstance.objects.bulk_create(rows, batch_size=500)

        # Edges by id, as task_start stores them; and the creation time of the task.
        first_row: dict[int, int] = {}
        for position, (run, sub, _) in enumerate(pairs):
            if sub.index == 0:
                first_row[id(run)] = position
        chunk_rows = []
        chunk_times = []
        for row, (run, sub, chunks) in zip(rows, pairs, strict=True):
            base = first_row[id(run)]
            row.upstream_ids = [rows[base + u].pk for u in sub.upstreams]
            row.downstream_ids = [rows[base + d].pk for d in sub.downstreams]
            row.create_time = run.start
            offset = 0
            for attempt, written, data in chunks:
                chunk_times.append(written)
                chunk_rows.append(
                    LogChunk(
                        subtask_id=row.pk,
                        attempt=attempt,
                        offset=offset,
                        length=len(data),
                        data=data,
                    )
                )
                offset += len(data)
        _update_columns(rows, ["upstream_ids", "downstream_ids", "create_time"])
        chunk_rows = LogChunk.objects.bulk_create(chunk_rows, batch_size=500)
        for chunk, written in zip(chunk_rows, chunk_times, strict=True):
            chunk.created_at = written
        _update_columns(chunk_rows, ["created_at"])

        audit = [
            (when, task, actor, action, from_status, to_status, reason)
            for task, run in zip(tasks, runs, strict=True)
            for when, actor, action, from_status, to_status, reason in run.audit
        ]
        audit.sort(key=lambda item: item[0])  # ids follow time, as they would have
        operations = Operation.objects.bulk_create(
            [
                Operation(
                    actor=actor,
                    actor_name=actor.get_username() if actor is not None else "system",
                    action=action,
                    task=task,
                    target=f"task {task.pk}",
                    from_status=from_status,
                    to_status=to_status,
                    reason=reason,
                    trace_id=HISTORY_TRACE,
                )
                for _, task, actor, action, from_status, to_status, reason in audit
            ],
            batch_size=500,
        )
        for operation, item in zip(operations, audit, strict=True):
            operation.created_at = item[0]
        _update_columns(operations, ["created_at"])


def _update_columns(objs: list, names: list[str]) -> None:
    """Write the objects' current values of `names` back, one prepared UPDATE for all rows.

    What bulk_update does, without its CASE WHEN per row, which is most of the seeding time
    for a few thousand rows. Also how the creation times get past auto_now_add.
    """
    if not objs:
        return
    meta = type(objs[0])._meta
    fields = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "
        + ", ".join(f"{quote(f.column)} = %s" for f in fields)
        + f" WHERE {quote(meta.pk.column)} = %s"
    )
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


_ECHO = re.compile(r"""echo\s+(["'])(.*?)\1""")
_PARAM = re.compile(r"\$\{?TC_PARAM_([A-Z0-9_]+)\}?")


def _shell_output(command: str, params: dict[str, Any]) -> list[str]:
    """What the demo command would have printed: its echo lines, with $i for 1..3."""
    lines = []
    for _, text in _ECHO.findall(command):
        text = _PARAM.sub(lambda m: str(params.get(m.group(1).lower(), "")), text)
        lines += [text.replace("$i", str(i)) for i in (1, 2, 3)] if "$i" in text else [text]
    return lines or ["done"]


def _log_bytes(attempt: _Attempt, executor: str) -> bytes:
    """The attempt's lines in format_log_line's shape, stamped across its run."""
    span = (attempt.finish - attempt.start).total_seconds()
    count = max(len(attempt.lines) - 1, 1)
    out = []
    for i, line in enumerate(attempt.lines):
        stamp = timezone.localtime(attempt.start + timedelta(seconds=span * i / count))
        out.append(
            f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d} [{executor}] {line}\n"
        )
    return "".join(out).encode()
