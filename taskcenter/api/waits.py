"""HENGSHI's waits handed from a view to the web server's event loop (taskcenter.edge).

Behind `serve`'s web server a view never waits itself: it answers what exists now, and
notes in the request's environ what it would have waited for (`hand_over`). The edge holds
the client's connection (memory, no thread) until the run ends, the bound runs out or the
client goes away, then asks `answer_after_wait` for the answer as the caller may see it at
that moment. Elsewhere (the test client, any other WSGI server) nothing marks the request and
the views wait in their thread, as they always did.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# WSGI environ keys, set by taskcenter.edge and read here (a client cannot set them: they are
# not HTTP_ headers).
EDGE_KEY = "taskcenter.edge"  # the edge takes waits over
WAIT_KEY = "taskcenter.wait"  # the wait a view handed over
GONE_KEY = "taskcenter.client_gone"  # a threading.Event, set when the client went away


@dataclass(frozen=True)
class Wait:
    """What a view would have waited for, and how to answer once it is over."""

    user_id: int
    context_id: int
    kind: str  # "logs", "results" or "submit"
    plan_id: int | None = None
    context_ids: tuple[int, ...] = field(default=())
    item_ids: tuple[int, ...] = field(default=())


def edge_waits(request) -> bool:
    return bool(request.META.get(EDGE_KEY))


def hand_over(request, wait: Wait) -> None:
    request.META[WAIT_KEY] = wait


def client_gone(request) -> bool:
    """Whether the client already went away (known behind the edge only)."""
    gone = request.META.get(GONE_KEY)
    return isinstance(gone, threading.Event) and gone.is_set()
