"""The engine's Prometheus metrics.

Counted where they happen (reaper actions in the scheduler process, subtask durations in
the workers): they reach the web server's /metrics through prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, see settings.py). Task and subtask counts
and the queue lag are read from the database at scrape time by `EngineCollector`, so
they are right whichever process is scraped.
"""

from __future__ import annotations

from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from taskcenter.tasks import selectors
from taskcenter.tasks.models import TaskInstance

REAPER_ACTIONS = Counter(
    "taskcenter_reaper_actions",
    "What the reaper did: worker_lost (attempt failed), redispatched (READY sent again), "
    "outbox_sent (a send that had failed, sent once the broker answered), settled (task), "
    "approval_timeout (an approval gate nobody decided in time, failed or approved).",
    ["action"],
)
SUBTASK_DURATION = Histogram(
    "taskcenter_subtask_duration_seconds",
    "Run time of subtask attempts, observed by the worker when the attempt ends.",
    ["outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)


def count_reaper_action(action: str, amount: int = 1) -> None:
    if amount:
        REAPER_ACTIONS.labels(action=action).inc(amount)


def observe_attempt(*, succeeded: bool, seconds: float) -> None:
    SUBTASK_DURATION.labels(outcome="succeeded" if succeeded else "failed").observe(seconds)


class EngineCollector:
    """Tasks and subtasks by status (one grouped count each) and the queue lag."""

    def collect(self):
        tasks = GaugeMetricFamily(
            "taskcenter_tasks", "Task instances by status.", labels=["status"]
        )
        for status, count in selectors.task_counts_by_status(
            visible=TaskInstance.objects.all()
        ).items():
            tasks.add_metric([status], count)
        yield tasks
        subtasks = GaugeMetricFamily(
            "taskcenter_subtasks", "Subtask instances by status.", labels=["status"]
        )
        for status, count in selectors.subtask_counts_by_status().items():
            subtasks.add_metric([status], count)
        yield subtasks
        oldest = selectors.oldest_ready_at()
        lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "taskcenter_queue_lag_seconds",
            "Age of the oldest READY attempt (0 when none waits).",
            value=max(lag, 0.0),
        )
