"""The django-celery-beat peer of scheduler_throughput.py: a minimal Django project of its own.

This module is at once the peer's Django settings (DJANGO_SETTINGS_MODULE=beat_peer), its
Celery app (`celery -A beat_peer beat -S django_celery_beat.schedulers:DatabaseScheduler`)
and, run as a script, the command that migrates its database and writes its periodic
tasks. It never touches taskcenter's database: beat keeps its own tables, in the database
named by BENCH_BEAT_CONFIG (JSON: database, broker_url, queue), which
scheduler_throughput.py fills in.

django-celery-beat is not a taskcenter dependency; scheduler_throughput.py installs it
into the virtualenv when it is missing.

    python beat_peer.py setup --count N --minute M --hour H [--day-of-month D]
"""

from __future__ import annotations

import argparse
import json
import os

import dj_database_url
from celery import Celery

_config = json.loads(os.environ.get("BENCH_BEAT_CONFIG") or "{}")
QUEUE = _config.get("queue", "bench_beat")
TASK_NAME = "bench.beat_noop"  # never run: the benchmark counts messages, no worker takes them

# --- Django settings -------------------------------------------------------------------------

SECRET_KEY = "beat-peer-benchmark-only"
INSTALLED_APPS = ["django_celery_beat"]
DATABASES = {"default": dj_database_url.parse(_config.get("database") or "sqlite:///beat.db")}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery app --------------------------------------------------------------------------------

app = Celery("beat_peer")
app.conf.update(
    broker_url=_config.get("broker_url"),
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
)


def setup(*, count: int, minute: int, hour: int, day_of_month: str) -> None:
    """Migrate, then make exactly `count` enabled periodic tasks on one crontab (UTC).

    One CrontabSchedule shared by every task, as django-celery-beat's own get_or_create
    would leave it; beat still builds and checks one entry per task.
    """
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

    # Raw deletes: the ORM's delete sends django-celery-beat's signals, one UPDATE per row.
    with connection.cursor() as cursor:
        for model in (PeriodicTask, CrontabSchedule):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    crontab = CrontabSchedule.objects.create(
        minute=str(minute),
        hour=str(hour),
        day_of_month=day_of_month,
        month_of_year="*",
        day_of_week="*",
        timezone="UTC",
    )
    PeriodicTask.objects.bulk_create(
        (
            PeriodicTask(name=f"bench {i}", task=TASK_NAME, crontab=crontab, queue=QUEUE)
            for i in range(count)
        ),
        batch_size=1000,
    )
    PeriodicTasks.update_changed()  # bulk_create sends no signals: tell beat to reload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup"])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--minute", type=int, required=True)
    parser.add_argument("--hour", type=int, required=True)
    parser.add_argument("--day-of-month", default="*")
    args = parser.parse_args()
    setup(count=args.count, minute=args.minute, hour=args.hour, day_of_month=args.day_of_month)
