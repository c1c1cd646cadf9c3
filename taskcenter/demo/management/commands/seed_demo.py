"""seed_demo: a demo database in OCP's shape.

Clusters, tenants and hosts; the demo users viewer, operator and admin; a month of finished
task history, played through the real services (taskcenter.demo.history); and, with
--live, a few tasks really started through the engine.

Running it again changes nothing that exists: objects are looked up by name, users keep
their passwords, and history and live tasks are recognised by the trace id of their audit
rows. It also leaves the marker that installs the demo app in every later process of this
installation (see TASKCENTER_DEMO in settings).
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from taskcenter.accounts import roles
from taskcenter.core.errors import TaskCenterError
from taskcenter.core.trace import reset_trace_id, set_trace_id
from taskcenter.demo.history import HISTORY_DAYS, OUTCOME_WEIGHTS, HistoryPlayer
from taskcenter.tasks import definitions, verbs
from taskcenter.tasks.models import AuditEntry, Cluster, Host, Tenant

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
        _record_marker()

    # --- Topology ------------------------------------------------------------------------------

    def _seed_topology(self) -> dict[str, Cluster]:
        clusters: dict[str, Cluster] = {}
        created: Counter[str] = Counter()
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
        already = AuditEntry.objects.filter(trace_id=HISTORY_TRACE, action="START").count()
        if already:
            self.stdout.write(f"history: {already} demo tasks already present; nothing added")
            return
        if count == 0:
            return
        # History is made of the operators' definitions: not the benchmarks, and not those
        # with required parameters (the schedules' job classes), whose values it cannot know.
        specs = [
            spec
            for spec in definitions.registered_definitions()
            if not spec.name.startswith("Benchmark")
            and not any(p.required for p in spec.parameters)
        ]
        if not specs:
            raise CommandError("No task definitions are registered; nothing to seed history from.")
        token = set_trace_id(HISTORY_TRACE)
        try:
            outcomes = HistoryPlayer(rng, users, specs).play(count)
        finally:
            reset_trace_id(token)
        summary = ", ".join(
            f"{outcomes[outcome]} {outcome}" for outcome in OUTCOME_WEIGHTS if outcomes[outcome]
        )
        self.stdout.write(f"history: {count} tasks over the last {HISTORY_DAYS} days ({summary})")

    # --- Live tasks ----------------------------------------------------------------------------

    def _start_live(self, users: dict[str, Any], clusters: dict[str, Cluster]) -> None:
        started_before = set(
            AuditEntry.objects.filter(trace_id=LIVE_TRACE, action="START").values_list(
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
                task = verbs.task_start(
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


def _record_marker() -> None:
    marker = settings.TASKCENTER_DEMO_MARKER
    if not marker.exists():
        marker.write_text(
            f"seed_demo ran here at {timezone.now():%Y-%m-%d %H:%M:%S %Z}. While this file\n"
            "exists, every process using this var dir installs the demo app (unless\n"
            "TASKCENTER_DEMO=false). Delete it to turn the demo off.\n"
        )
