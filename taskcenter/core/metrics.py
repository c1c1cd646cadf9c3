"""Prometheus metrics at /metrics: HTTP latency by view, plus the collectors other
packages list in TASKCENTER_METRICS_COLLECTORS (read from the database at scrape time).

Processes: with PROMETHEUS_MULTIPROC_DIR set (settings.py sets it under the var dir), every
process of one machine (web server workers, Celery workers, the scheduler) writes its
counters and histograms there and any web process's /metrics adds them all up. Without
it, each process exposes only its own.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.http import HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "taskcenter_http_request_duration_seconds",
    "Time to answer an HTTP request, by the resolved view (not the raw path).",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMetricsMiddleware:
    """Observes each request's latency under its view's name ("unresolved" for 404s and
    static files), so the label set stays as small as the URL configuration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match else "unresolved"
        REQUEST_LATENCY.labels(
            view=view, method=request.method, status=str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response


class _DatabaseCollectors:
    """Runs the configured collectors; one whose database read fails is reported as down
    (taskcenter_metrics_database_up 0) rather than failing the scrape."""

    def __init__(self, paths: list[str]):
        self.collectors = [import_string(path)() for path in paths]

    def collect(self):
        up = 1
        for collector in self.collectors:
            try:
                families = list(collector.collect())
            except Exception:  # noqa: BLE001 - the database may be down; say so, go on
                logger.warning("metrics collector %s failed", type(collector).__name__)
                up = 0
                continue
            yield from families
        yield GaugeMetricFamily(
            "taskcenter_metrics_database_up",
            "1 when the database read for the task, subtask and fire metrics succeeded.",
            value=up,
        )


_database_registry: CollectorRegistry | None = None


def _registries() -> list[CollectorRegistry]:
    global _database_registry
    if _database_registry is None:
        _database_registry = CollectorRegistry(auto_describe=False)
        _database_registry.register(_DatabaseCollectors(settings.TASKCENTER_METRICS_COLLECTORS))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return [counted, _database_registry]


LOOPBACK_ADDRESSES = {"127.0.0.1", "::1"}


def scrape_refusal(request) -> HttpResponse | None:
    """Who may read the metrics (they tell task counts, view names and traffic): with
    TASKCENTER_METRICS_TOKEN set, a scraper sending it as a bearer token; without one,
    only a connection from this machine, so the one-command setup works as it comes and
    nothing is open to the network until a token is chosen."""
    token = settings.TASKCENTER_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        scheme, _, credentials = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return None
        response = HttpResponse(
            "The metrics need the token set in TASKCENTER_METRICS_TOKEN, "
            "sent as 'Authorization: Bearer <token>'.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.META.get("REMOTE_ADDR") in LOOPBACK_ADDRESSES:
        return None
    return HttpResponse(
        "The metrics answer only this machine until TASKCENTER_METRICS_TOKEN is set; "
        "then scrape with 'Authorization: Bearer <token>'.\n",
        status=403,
        content_type="text/plain; charset=utf-8",
    )


def metrics_view(request) -> HttpResponse:
    refusal = scrape_refusal(request)
    if refusal is not None:
        return refusal
    body = b"".join(generate_latest(registry) for registry in _registries())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
