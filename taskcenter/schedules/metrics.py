"""The scheduler's Prometheus metric: fires by outcome, counted from the fire records."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily

from taskcenter.schedules.models import Fire


class FiresCollector:
    """Every fire is a row (claimed under a unique constraint), so their count is exact
    across schedulers and restarts, and needs no counter in the scheduler process."""

    def collect(self):
        fires = CounterMetricFamily(
            "taskcenter_scheduler_fires",
            "Plan fires by outcome (STARTED, SKIPPED, MISSED).",
            labels=["outcome"],
        )
        counts = Fire.objects.order_by().values_list("outcome").annotate(count=Count("pk"))
        for outcome, count in counts.values_list("outcome", "count"):
            fires.add_metric([outcome], count)
        yield fires
