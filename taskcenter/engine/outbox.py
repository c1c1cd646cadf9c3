"""The dispatch outbox: attempts whose send failed, and the reaper's drain of them.

An operation commits first and sends its READY attempts after the commit; when the
broker does not answer, failing the request then would report an error over a change
that is done (a retry answered 500 and had retried). The sender records the attempts
here instead, and the reaper (every TASKCENTER_REAPER_INTERVAL seconds) sends them once
the broker answers. Sending twice is harmless: claims are idempotent.
"""

from __future__ import annotations

import logging
import re

from django.db import DatabaseError

from taskcenter.engine.models import PendingDispatch
from taskcenter.tasks import selectors

logger = logging.getLogger(__name__)

DRAIN_BATCH = 1000

_CREDENTIALS = re.compile(r"(\w+://)[^@/\s]*@")


def describe_error(exc: BaseException) -> str:
    """The error's class and message, with any user:password@ of a URL blanked out."""
    message = _CREDENTIALS.sub(r"\1***@", str(exc))
    return f"{exc.__class__.__name__}: {message}"


def record(attempts: list[tuple[int, int]], error: BaseException) -> None:
    logger.warning(
        "broker unreachable (%s): %d attempt(s) queued in the outbox, sent when it is back",
        describe_error(error),
        len(attempts),
    )
    try:
        PendingDispatch.objects.bulk_create(
            [PendingDispatch(subtask_id=s, attempt=a) for s, a in attempts],
            ignore_conflicts=True,
        )
    except DatabaseError as exc:
        # The READY rows are committed: the reaper's re-dispatch still sends them, later.
        logger.error("could not record the outbox either (%s)", describe_error(exc))


def drain(send) -> int:
    """Send the outbox's attempts that are still READY with `send` (raising on failure);
    returns how many were sent. Rows whose attempt moved on are dropped."""
    rows = list(PendingDispatch.objects.values_list("pk", "subtask_id", "attempt")[:DRAIN_BATCH])
    if not rows:
        return 0
    still_ready = selectors.ready_attempts_among(attempts=[(s, a) for _, s, a in rows])
    to_send = [(s, a) for _, s, a in rows if (s, a) in still_ready]
    if to_send:
        send(to_send)  # raises while the broker is still away: the rows stay
    PendingDispatch.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
    return len(to_send)
