"""The scheduler's tick: fire what is due at `now`, then follow up the runs that ended.

`tick(now=...)` takes the time as an argument, so tests drive it with a controllable
clock; `run_scheduler` calls it about once a second with the real time.

Exactly once, with several schedulers running at once: the due items are handled in
batches of FIRE_BATCH, each in one transaction that first locks its items (on PostgreSQL
FOR UPDATE SKIP LOCKED: an item another scheduler holds is left to it, and one it moved
on since the due query no longer matches; SQLite's IMMEDIATE transactions let one writer
in at a time) and moves their next_fire_at on. Each fire is claimed by inserting its Fire
row under the unique (item, fire time) constraint, so even a recomputed next_fire_at
cannot start a time twice: a batch's Fire rows go in with one INSERT after its tasks, and
when any of them conflicts the batch's tasks roll back and each fire is claimed alone.
The tasks start in the same transaction, and Celery gets their first subtasks on commit,
in one send per batch.

Batching is what makes a thousand plans due at the same minute cheap: one statement per
table per batch instead of about eighteen per fire. Items that need a decision per fire
(misfires, a plan with several fires in the batch, whose overlap checks must see each
other) go one fire at a time inside the same transaction.

Cost: the due query is a range scan of the next_fire_at index (disabled plans, DEPENDENCY
and ONCE items hold NULL there), so a tick with nothing due reads nothing however many
plans exist.

Misfires: a fire time more than MISFIRE_THRESHOLD old when seen (the scheduler was down)
is a misfire. If the item also has an on-time fire now, the misfires are recorded MISSED.
Otherwise the plan's misfire policy decides: RUN_ONCE (the default) runs the latest missed
time once and records the earlier ones MISSED; SKIP records them all MISSED. At most
MISSED_RECORDED are recorded per item and tick; the rest are skipped over silently (an
every-second plan down for a day would otherwise write 86,400 rows).

Dependencies: a DEPENDENCY item fires when a run of a job it names ends SUCCESSFUL. The
tick looks for runs that ended since it last looked (a partial index holds the runs not
yet followed up), rather than a hook in the engine where a task settles: the engine
settles tasks on several paths (the worker's finish, PostgreSQL's one-trip finish, the
reaper, operator operations), and a hook on each would tie the engine to schedules. The
tick is durable too: runs that end while no scheduler is up are followed up when one
comes back. The price is up to one tick of latency.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction

from taskcenter.schedules import cron, firing, selectors
from taskcenter.schedules.models import MisfirePolicy, PlanItem, TriggerType

MISFIRE_THRESHOLD = timedelta(seconds=60)  # Quartz's default misfireThreshold
MISSED_RECORDED = 100
ON_TIME_MAX = 10  # on-time fires of one item in one tick (an every-second plan, a slow tick)
DUE_BATCH = 1000
FIRE_BATCH = 200  # due items fired in one transaction (its locks held while it runs)
SCAN_MAX = 5000  # fire times walked per item and tick before jumping to the recent ones


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)  # context (task) ids
    skipped: int = 0
    missed: int = 0
    followed_up: int = 0


def tick(*, now: datetime, batch: int = DUE_BATCH) -> TickReport:
    report = TickReport()
    due = selectors.due_items(now=now, limit=batch)
    for first in range(0, len(due), FIRE_BATCH):
        fire_items(item_ids=due[first : first + FIRE_BATCH], now=now, report=report)
    for fire_id in selectors.ended_runs(limit=batch):
        started = firing.fire_follow_up(fire_id=fire_id, now=now)
        report.followed_up += 1
        _count(report, started)
    return report


def fire_items(*, item_ids: list[int], now: datetime, report: TickReport | None = None) -> None:
    """Handle due items in one transaction: claim them, move them on, start or record
    their due times.

    The common case, an item with one fire on time whose plan has no other item here (a
    thousand plans due at the same minute), is started with the others at once
    (firing.fire_start_many); misfires, and plans with several fires in this batch
    (whose overlap checks must see each other), go one fire at a time (`_fire_due`).
    """
    report = report if report is not None else TickReport()
    with transaction.atomic():
        # Gone, or moved on by another scheduler since the due query, drop out here.
        items = selectors.due_items_locked(item_ids=item_ids, now=now)
        moves: dict[datetime | None, list[int]] = defaultdict(list)
        enabled: list[tuple[PlanItem, list[datetime]]] = []
        # Plans due together mostly share their expression: each one's times computed once.
        times: dict[tuple, tuple[list[datetime], datetime | None]] = {}
        for item in items:
            key = (item.cron_desc, item.time_zone, item.next_fire_at)
            if key not in times:
                times[key] = _due_times(item, now)
            due, following = times[key]
            moves[following if item.plan.enabled else None].append(item.pk)
            if item.plan.enabled:  # a disabled plan never fires
                enabled.append((item, due))
        for following, ids in moves.items():
            # A plain update: this transaction holds these rows (due_items_locked).
            PlanItem.objects.filter(pk__in=ids).update(next_fire_at=following)
        fires_of_plan = Counter(item.plan_id for item, due in enabled for _ in due)
        together, alone = [], []
        for item, due in enabled:
            if fires_of_plan[item.plan_id] == 1 and now - due[0] <= MISFIRE_THRESHOLD:
                together.append((item, due[0]))
            else:
                alone.append((item, due))
        _count(report, firing.fire_start_many(due=together))
        for item, due in alone:
            _fire_due(item, due, now, report)


def _fire_due(item: PlanItem, due: list[datetime], now: datetime, report: TickReport) -> None:
    """Start or record an item's due times one by one: the misfire policy decides about
    the late ones."""
    on_time = [t for t in due if now - t <= MISFIRE_THRESHOLD][-ON_TIME_MAX:]
    late = [t for t in due if now - t > MISFIRE_THRESHOLD]
    if late and not on_time and item.plan.misfire_policy == MisfirePolicy.RUN_ONCE:
        run_late = late.pop()
        fire = firing.fire_start(
            plan=item.plan,
            item=item,
            fire_time=run_late,
            # When it was seen is the fire's own time of record (created_at): the reason
            # stays words, which every reader's page shows in their zone.
            reason="misfired while no scheduler ran; run once on recovery",
        )
        _count(report, [fire] if fire else [])
    for fire_time in late[-MISSED_RECORDED:]:
        firing.fire_record_missed(
            plan=item.plan,
            item=item,
            fire_time=fire_time,
            reason="no scheduler ran at this time",
        )
        report.missed += 1
    for fire_time in on_time:
        fire = firing.fire_start(plan=item.plan, item=item, fire_time=fire_time)
        _count(report, [fire] if fire else [])


def _due_times(item: PlanItem, now: datetime) -> tuple[list[datetime], datetime | None]:
    """The item's fire times up to `now` (the oldest ones beyond the record limit dropped)
    and its first fire time after `now`."""
    assert item.next_fire_at is not None and item.trigger_type == TriggerType.CRON_JOB
    expression = cron.parse(item.cron_desc)
    due = [item.next_fire_at]
    keep = MISSED_RECORDED + ON_TIME_MAX + 1
    # Jump over a long outage: times before the window we keep are never looked at.
    window_start = now - MISFIRE_THRESHOLD
    following = expression.next_fire_time(item.next_fire_at, item.time_zone)
    steps = 0
    while following is not None and following <= now:
        steps += 1
        if steps == SCAN_MAX and following < window_start:
            # A long outage of a frequent plan: jump to the recent times (those between
            # are neither run nor recorded).
            following = expression.next_fire_time(window_start, item.time_zone)
            continue
        due.append(following)
        if len(due) > 2 * keep:
            due = due[-keep:]
        following = expression.next_fire_time(following, item.time_zone)
    return due[-keep:], following


def _count(report: TickReport, fires: list) -> None:
    for fire in fires:
        if fire.task_id:
            report.started.append(fire.task_id)
        else:
            report.skipped += 1
