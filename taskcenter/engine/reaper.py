"""Fails attempts whose worker is gone, re-sends READY attempts whose message was lost,
ends approval gates whose timeout passed with no decision (they hold no worker, so no
worker can time them out) and settles RUNNING tasks with no subtask left at work; sends
the dispatch outbox (attempts whose send failed while the broker was away) as soon as the
broker answers again.

An attempt is lost after TASKCENTER_WORKER_LOST_AFTER seconds without a heartbeat while
the database answered: no worker can beat while it does not. Its worker beats while the
action runs and, once the action has ended, while it holds an outcome the database has
not taken yet (taskcenter.engine.runner), so an attempt whose worker is alive is never
called lost because the database was away.

Runs in the scheduler process (`manage.py run_scheduler`, started by `serve`) and can
also be run as a Celery task. Both actions are safe to repeat and to run in parallel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from taskcenter.engine import dispatch, outbox
from taskcenter.engine import selectors as engine_selectors
from taskcenter.engine.metrics import count_reaper_action
from taskcenter.tasks import selectors, services, verbs

logger = logging.getLogger(__name__)


@dataclass
class ReapReport:
    lost: int = 0
    redispatched: int = 0
    settled: int = 0
    outbox_sent: int = 0
    bulks_resumed: int = 0
    approvals_timed_out: int = 0


# READY attempts whose message may be lost are sent again once, at once, on this process's
# first pass and after each broker outage, rather than after TASKCENTER_REDISPATCH_AFTER:
# - a process killed between a commit and its send (the scheduler during a fire, a web
#   server, a worker finishing a subtask) loses that send; a scheduler starting up cannot
#   tell those apart from messages still queued, so it sends every READY attempt again;
# - a worker that lost its broker connection drops the messages it had reserved, and Redis
#   hands them out again only after its visibility timeout (an hour).
# A duplicate message runs nothing (the claim is a compare-and-set); it costs one message
# per waiting attempt, once.
_catch_up = True
_broker_down = False  # as this process last saw it, for the log

# After the database was away (a pass of this process failed on it) or restarted (its
# uptime, which catches an outage shorter than a pass), no attempt is called lost until it
# has answered for TASKCENTER_WORKER_LOST_AFTER: the workers beat again in that time,
# those holding an outcome included, and a worker that died meanwhile is called lost then.
_database_failed = False
_database_back_at: datetime | None = None
_holding_back_since: datetime | None = None  # for the log
ONE_SECOND = timedelta(seconds=1)


def reap() -> ReapReport:
    global _database_failed
    try:
        return _reap()
    except DatabaseError:
        _database_failed = True
        raise


def _reap() -> ReapReport:
    now = timezone.now()
    report = ReapReport()
    _send_what_waited_for_the_broker(now, report)
    _fail_lost_attempts(now, report)
    stale_after = timedelta(seconds=settings.TASKCENTER_REDISPATCH_AFTER)
    stale = now - stale_after
    for subtask_id, attempt in selectors.attempts_ready_since(before=stale):
        if services.attempt_redispatch(subtask_id=subtask_id, attempt=attempt):
            report.redispatched += 1
            count_reaper_action("redispatched")
            logger.warning(
                "subtask %s attempt %s: not claimed in time, sent again", subtask_id, attempt
            )
    for bulk_id in verbs.bulks_stalled(quiet_for=stale_after):
        dispatch.send_bulk(bulk_id, 1)
        report.bulks_resumed += 1
        logger.warning("bulk %s: no run worked on it for a while, started again", bulk_id)
    for subtask_id, attempt in services.gates_due(now):
        if services.gate_time_out(subtask_id=subtask_id, attempt=attempt, now=now):
            report.approvals_timed_out += 1
            count_reaper_action("approval_timeout")
            logger.warning("subtask %s: approval timed out with no decision", subtask_id)
    for task_id in selectors.running_tasks_without_work():
        if services.task_settle(task_id=task_id):
            report.settled += 1
            count_reaper_action("settled")
            logger.warning("task %s: RUNNING with no subtask at work, status settled", task_id)
    return report


def _database_answers_since(now: datetime) -> datetime | None:
    """Since when the database has answered, as far as this process can tell."""
    global _database_failed, _database_back_at
    uptime = engine_selectors.database_uptime()  # also: the database answers now
    if _database_failed:
        _database_failed, _database_back_at = False, now
    since = [now - uptime] if uptime is not None else []
    if _database_back_at is not None:
        since.append(_database_back_at)
    return max(since, default=None)


def _fail_lost_attempts(now: datetime, report: ReapReport) -> None:
    global _holding_back_since
    lost_after = timedelta(seconds=settings.TASKCENTER_WORKER_LOST_AFTER)
    answers_since = _database_answers_since(now)
    if answers_since is not None and answers_since > now - lost_after:
        # Once per return (the uptime's start moves by the clocks' jitter between passes).
        if _holding_back_since is None or abs(answers_since - _holding_back_since) > ONE_SECOND:
            _holding_back_since = answers_since
            logger.warning(
                "the database answers again since %s: no attempt is called lost before "
                "%s, so that their workers can beat again",
                f"{timezone.localtime(answers_since):%H:%M:%S}",
                f"{timezone.localtime(answers_since + lost_after):%H:%M:%S}",
            )
        return
    for subtask_id, attempt, last_beat in selectors.attempts_without_heartbeat(
        since=now - lost_after
    ):
        why = (
            f"no heartbeat since {timezone.localtime(last_beat):%Y-%m-%d %H:%M:%S} "
            f"(limit {settings.TASKCENTER_WORKER_LOST_AFTER:g} s)"
        )
        if services.attempt_fail_lost(subtask_id=subtask_id, attempt=attempt, why=why):
            report.lost += 1
            count_reaper_action("worker_lost")
            logger.warning("subtask %s attempt %s: worker lost, %s", subtask_id, attempt, why)


def _send_what_waited_for_the_broker(now, report: ReapReport) -> None:
    """Drain the outbox; on the first pass and after an outage, send READY work again."""
    global _broker_down, _catch_up
    if not dispatch.broker_answers():
        if not _broker_down:
            logger.warning("broker does not answer; queued attempts wait in the outbox")
        _broker_down = _catch_up = True
        return
    try:
        report.outbox_sent = outbox.drain(dispatch.send_now)
    except Exception as exc:  # noqa: BLE001 - the broker went away again between the two
        logger.warning("outbox not sent yet (%s)", outbox.describe_error(exc))
        _broker_down = _catch_up = True
        return
    count_reaper_action("outbox_sent", report.outbox_sent)
    if report.outbox_sent:
        logger.warning("broker answers: %d queued attempt(s) sent", report.outbox_sent)
    if _broker_down:
        logger.warning("broker answers again")
    _broker_down = False
    if not _catch_up:
        return
    _catch_up = False
    for subtask_id, attempt in selectors.attempts_ready_since(before=now):
        if services.attempt_redispatch(subtask_id=subtask_id, attempt=attempt):
            report.redispatched += 1
            count_reaper_action("redispatched")
