"""Where a run or a plan goes: the Cluster field of the Run form and of the plan form.

One select: each cluster the user may use (the whole cluster, or one of its tenants), and
"No cluster" for users whose role is not scoped. A scoped user must choose one of their
clusters, so that what they start or schedule stays theirs to see
(taskcenter.accounts.access.run_placement, require_plan_placement). The value is "c<id>"
for a cluster, "t<id>" for a tenant, "" for none.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskcenter.core.errors import InvalidParameter
from taskcenter.schedules import selectors
from taskcenter.tasks.models import Cluster, Tenant

FIELD = "placement"


@dataclass
class PlacementField:
    groups: list[dict]  # per cluster: its label, its value and its tenants' (label, value)
    optional: bool  # "No cluster" is offered (an unscoped user)
    value: str = ""
    error: str = ""
    cluster_id: int | None = None
    tenant_id: int | None = None

    @classmethod
    def of(cls, *, clusters: frozenset[int] | None, data=None, cluster_id=None, tenant_id=None):
        """The field offering `clusters` (None: every cluster, and no cluster), holding the
        submitted value, or else the given ids (a plan's own)."""
        groups = [
            {
                "label": cluster.name,
                "value": f"c{cluster.pk}",
                "tenants": [(tenant.name, f"t{tenant.pk}") for tenant in cluster.tenants.all()],
            }
            for cluster in selectors.placement_choices(clusters=clusters)
        ]
        placement = cls(groups=groups, optional=clusters is None)
        if data is not None:
            placement.value = (data.get(FIELD) or "").strip()
            placement._read()
        else:
            if tenant_id is not None:
                placement.value = f"t{tenant_id}"
            elif cluster_id is not None:
                placement.value = f"c{cluster_id}"
            elif groups and not placement.optional:
                placement.value = str(groups[0]["value"])  # a scoped user's first cluster
            placement.cluster_id, placement.tenant_id = cluster_id, tenant_id
        return placement

    def _read(self) -> None:
        kind, number = self.value[:1], self.value[1:]
        if not self.value:
            return
        if kind not in ("c", "t") or not (number.isascii() and number.isdigit()):
            self.error = "Choose a cluster or a tenant from the list."
            return
        if kind == "c":
            self.cluster_id = int(number)
        else:
            self.tenant_id = int(number)

    def resolve(self) -> tuple[Cluster | None, Tenant | None] | None:
        """The chosen cluster and tenant, or None with the error set (an unknown id)."""
        if self.error:
            return None
        try:
            return selectors.placement_get(cluster_id=self.cluster_id, tenant_id=self.tenant_id)
        except InvalidParameter as exc:
            self.error = exc.reason
            return None

    def refuse(self, exc: InvalidParameter) -> None:
        self.error = exc.reason
