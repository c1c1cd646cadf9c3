"""The kinds of data that are pruned, and how long each is kept.

Days come from the settings (TASKCENTER_RETENTION_*_DAYS, 0 keeps a kind for ever); worker
presence rows and throughput minutes follow TASKCENTER_WORKER_PRESENCE_KEEP, as the
workers' own pruning does. What "old" means differs per kind, and is worded here for the
command's output and the Admin page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from taskcenter.engine.presence import THROUGHPUT_KEEP


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    rule: str  # what is pruned, in words, with {keep} for the retention
    exported: bool  # written to the export before it is deleted (when exports are on)


KINDS: tuple[Kind, ...] = (
    Kind(
        "tasks",
        "Finished tasks",
        "tasks ended more than {keep} ago, with their subtasks, logs and outbox rows; "
        "never a task still running, one a running bulk operation has still to do, or the last "
        "run of a schedule",
        exported=True,
    ),
    Kind(
        "fires",
        "Schedule fires",
        "fire records older than {keep} whose run is gone (or that started none)",
        exported=True,
    ),
    Kind("audit", "Audit entries", "audit entries older than {keep}", exported=True),
    Kind(
        "bulk",
        "Bulk operations",
        "bulk operations finished or stopped more than {keep} ago, with their items "
        "(an item goes earlier with its task)",
        exported=True,
    ),
    Kind("sessions", "Sessions", "sign-in sessions expired more than {keep} ago", exported=False),
    Kind(
        "signin",
        "Sign-in counters",
        "sign-in throttle windows that ended more than {keep} ago",
        exported=False,
    ),
    Kind(
        "known_signins",
        "Known sign-ins",
        "a user name's last sign-in from an address, once older than {keep} (it no longer "
        "counts: TASKCENTER_SIGNIN_KNOWN_DAYS)",
        exported=False,
    ),
    Kind("workers", "Worker presence", "workers not seen for {keep}", exported=False),
    Kind(
        "minutes",
        "Throughput minutes",
        "fleet throughput minutes older than {keep}",
        exported=False,
    ),
    Kind(
        "outbox",
        "Dispatch outbox",
        "unsent attempts recorded more than {keep} ago (the reaper re-sends them anyway)",
        exported=False,
    ),
)
BY_KEY = {kind.key: kind for kind in KINDS}


def keep(key: str) -> timedelta | None:
    """How long rows of this kind are kept; None: for ever."""
    if key == "known_signins":  # kept exactly as long as the throttle counts them
        known = settings.TASKCENTER_SIGNIN_KNOWN_DAYS
        return timedelta(days=known) if known else None
    if key in ("workers", "minutes"):
        presence = timedelta(seconds=settings.TASKCENTER_WORKER_PRESENCE_KEEP)
        return max(presence, THROUGHPUT_KEEP) if key == "minutes" else presence
    days = settings.TASKCENTER_RETENTION_DAYS[key]
    return timedelta(days=days) if days else None


def describe_keep(span: timedelta | None) -> str:
    if span is None:
        return "for ever"
    if span.days and not span.seconds:
        return f"{span.days} day{'s' if span.days != 1 else ''}"
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def rule_text(kind: Kind) -> str:
    span = keep(kind.key)
    if span is None:
        return "Kept for ever (retention 0)."
    text = kind.rule.format(keep=describe_keep(span))
    return text[:1].upper() + text[1:] + "."
