"""The plain-Celery baseline of engine_overhead.py: one no-op task on its own Celery app.

The configuration comes from BENCH_PLAIN_CONFIG (JSON), which engine_overhead.py fills
from taskcenter's own loaded settings, so both apps use the same broker URL, transport
options, serializer, acks_late and prefetch multiplier. Only two things differ: this app
uses its own queue (so the two workers never take each other's messages) and it stores
results, because a chord needs a result backend to join its header.
"""

from __future__ import annotations

import json
import os

from celery import Celery

QUEUE = "bench_plain"

config = json.loads(os.environ.get("BENCH_PLAIN_CONFIG") or "{}")

# Not the current app: the benchmark process also sends taskcenter's shared tasks.
app = Celery("plain_bench", set_as_current=False)
app.conf.update(
    broker_url=config.get("broker_url"),
    broker_transport=config.get("broker_transport"),
    broker_transport_options=config.get("broker_transport_options") or {},
    result_backend=config.get("result_backend"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=config.get("worker_prefetch_multiplier", 4),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    result_expires=600,
    # Only used by backends without native chord support (file://): poll fast, not every 1 s.
    result_chord_retry_interval=0.05,
)


@app.task(name="bench.noop")
def noop() -> None:
    return None
