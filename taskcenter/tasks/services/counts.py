"""TaskCount kept small: its signed changes added up, one row per (cluster, status, type);
and TaskNameCount's, one row per (name, cluster, status, type).

The triggers that write TaskCount only insert (see the model), so it grows by two rows per
status change; a list's total adds up whatever rows there are, so folding changes no
total, only how many rows the next one reads. The scheduler runs this as a background loop
(core.loops, registered in TasksConfig.ready).
"""

from __future__ import annotations

from django.db import connection

from taskcenter.tasks.sql import FOLD_TASK_COUNTS, FOLD_TASK_NAME_COUNTS

FOLD_INTERVAL_SECONDS = 60.0


def fold_task_counts() -> None:
    """Add TaskCount's and TaskNameCount's rows up per key (PostgreSQL; SQLite keeps
    neither)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(FOLD_TASK_COUNTS)
        cursor.execute(FOLD_TASK_NAME_COUNTS)


def fold_interval() -> float:
    return FOLD_INTERVAL_SECONDS
