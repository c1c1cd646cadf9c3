"""The Fleet page: the workers seen through their heartbeats, what waits in each queue
and how long, and how many attempts the fleet ended lately; its drill-down (a worker's
attempts at work and lately run, a queue's waiting attempts); and the no-worker banner
that every page shows when no worker has been seen for TASKCENTER_NO_WORKER_AFTER s.

A worker that stopped beating without a stop mark is listed as died, with when it was
last seen and what it was running then; one started again under the same name has a row
of its own (taskcenter.engine.presence)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from taskcenter.accounts import access
from taskcenter.core.http import page, signed_in_view
from taskcenter.dashboard.presenters import format_duration
from taskcenter.engine import selectors as engine_selectors
from taskcenter.engine.dispatch import queue_for
from taskcenter.tasks import selectors

dashboard_view = signed_in_view(access.require_view)

# Every page asks; a few seconds of staleness cost nothing next to a 30 s threshold.
BANNER_CACHE_SECONDS = 2
BANNER_CACHE_KEY = "taskcenter.no-worker-banner"


@dashboard_view
@require_GET
def fleet(request):
    now = timezone.now()
    workers = engine_selectors.workers(now)
    online = [w for w in workers if w.online]
    # A viewer scoped to clusters counts the attempts of their clusters only; the
    # fleet-wide counts of attempts (at work, ended) are of every cluster, so not theirs.
    clusters = access.visible_clusters(request.user)
    queues = engine_selectors.queue_depths(online, clusters=clusters)
    whole_fleet = clusters is access.ALL_CLUSTERS
    context = {
        "whole_fleet": whole_fleet,
        "nav": "fleet",
        "workers": [
            {
                "row": w,
                "seen_ago": format_duration(now - w.last_seen),
                "up_for": format_duration((w.stopped_at or now) - w.started_at),
            }
            for w in workers
        ],
        "online_count": len(online),
        "slots": sum(w.concurrency for w in online),
        "running": sum(w.running for w in online),
        "queues": [
            {
                "row": q,
                "wait": format_duration(now - q.oldest_ready_at) if q.oldest_ready_at else "",
            }
            for q in queues
        ],
        "queued": sum(q.depth for q in queues),
        "finished_5": (
            engine_selectors.finished_since(now - timedelta(minutes=5)) if whole_fleet else None
        ),
        "finished_60": (
            engine_selectors.finished_since(now - timedelta(minutes=60)) if whole_fleet else None
        ),
        "offline_after": int(settings.TASKCENTER_NO_WORKER_AFTER),
    }
    return page(request, "dashboard/fleet.html", context)


@dashboard_view
@require_GET
def fleet_worker(request, worker_id: int):
    """One worker process: its state, the attempts it runs now (or ran when it died) and
    those it ran lately, of the tasks the reader may see."""
    now = timezone.now()
    row = engine_selectors.worker(worker_id, now)
    if row is None:
        raise Http404("This worker is not remembered (any more).")
    visible = access.visible_tasks(request.user)
    at_work = selectors.subtasks_by_ids(ids=[pk for pk, _ in row.attempts], visible=visible)
    running_ids = {sub.pk for sub in at_work}
    lately = [
        sub
        for sub in selectors.subtasks_by_ids(ids=row.recent, visible=visible)
        if sub.pk not in running_ids
    ]
    context = {
        "nav": "fleet",
        "w": row,
        "seen_ago": format_duration(now - row.last_seen),
        "up_for": format_duration((row.stopped_at or now) - row.started_at),
        "at_work": at_work,
        "lately": lately,
        # A scoped viewer sees the attempts of their clusters only, and no count of others.
        "whole_fleet": access.visible_clusters(request.user) is access.ALL_CLUSTERS,
    }
    return page(request, "dashboard/fleet_worker.html", context)


@dashboard_view
@require_GET
def fleet_queue(request, queue: str):
    """One queue: the attempts waiting in it (READY, routed to it by the sender's rule),
    the longest waiting first, of the tasks the reader may see; and who consumes it."""
    now = timezone.now()
    fallback = engine_selectors.default_queue()
    visible = access.visible_tasks(request.user)
    waiting = [
        sub
        for sub in selectors.ready_attempts(visible=visible)
        if (
            queue_for(
                node_type=sub.node_type, cluster=sub.task.cluster.name if sub.task.cluster else None
            )
            or fallback
        )
        == queue
    ]
    online = [w for w in engine_selectors.workers(now) if w.online]
    context = {
        "nav": "fleet",
        "queue": queue,
        "waiting": [
            {"sub": sub, "wait": format_duration(now - sub.ready_at) if sub.ready_at else ""}
            for sub in waiting[: selectors.QUEUE_ATTEMPTS_SHOWN]
        ],
        "total": len(waiting),
        "consumers": [w for w in online if queue in w.queues],
    }
    return page(request, "dashboard/fleet_queue.html", context)


@signed_in_view()
@require_GET
def worker_banner(request):
    """The banner alone, which every page asks for again every 10 s while its tab is
    visible: a page opened before the last worker stopped (or before one started) says so
    without a reload. Any signed-in user: it tells nothing about tasks."""
    return render(request, "dashboard/_worker_banner.html")


def no_worker_banner() -> dict | None:
    """None while some worker is online; else what the banner says (cached briefly)."""
    state = cache.get(BANNER_CACHE_KEY)
    if state is None:
        presence = engine_selectors.presence()
        state = {"online": presence.online, "last_seen": presence.last_seen}
        cache.set(BANNER_CACHE_KEY, state, BANNER_CACHE_SECONDS)
    if state["online"]:
        return None
    last_seen = state["last_seen"]
    return {
        "ever": last_seen is not None,
        "for": int((timezone.now() - last_seen).total_seconds()) if last_seen else None,
        "after": int(settings.TASKCENTER_NO_WORKER_AFTER),
    }
