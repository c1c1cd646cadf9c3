"""Fails attempts whose worker is gone, re-sends READY attempts whose message was lost and
settles RUNNING tasks with no subtask left at work.

Runs in the scheduler process (`manage.py run_scheduler`, started by `serve`) and can
also be run as a Celery task. Both actions are safe to repeat and to run in parallel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from taskcenter.tasks import selectors, services

logger = logging.getLogger(__name__)


@dataclass
class ReapReport:
    lost: int = 0
    redispatched: int = 0
    settled: int = 0


def reap() -> ReapReport:
    now = timezone.now()
    report = ReapReport()
    lost_after = timedelta(seconds=settings.TASKCENTER_WORKER_LOST_AFTER)
    for subtask_id, attempt, last_beat in selectors.attempts_without_heartbeat(
        since=now - lost_after
    ):
        why = (
            f"no heartbeat since {timezone.localtime(last_beat):%Y-%m-%d %H:%M:%S} "
            f"(limit {settings.TASKCENTER_WORKER_LOST_AFTER:g} s)"
        )
        if services.attempt_fail_lost(subtask_id=subtask_id, attempt=attempt, why=why):
            report.lost += 1
            logger.warning("subtask %s attempt %s: worker lost, %s", subtask_id, attempt, why)
    stale = now - timedelta(seconds=settings.TASKCENTER_REDISPATCH_AFTER)
    for subtask_id, attempt in selectors.attempts_ready_since(before=stale):
        if services.attempt_redispatch(subtask_id=subtask_id, attempt=attempt):
            report.redispatched += 1
            logger.warning(
                "subtask %s attempt %s: not claimed in time, sent again", subtask_id, attempt
            )
    for task_id in selectors.running_tasks_without_work():
        if services.task_settle(task_id=task_id):
            report.settled += 1
            logger.warning("task %s: RUNNING with no subtask at work, status settled", task_id)
    return report
