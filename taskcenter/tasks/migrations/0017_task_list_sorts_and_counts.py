"""The task list's sorts by start time and duration as index walks, and its exact count kept.

- Indexes for sort=startTime and sort=duration: without them a page read every task the
  filters matched and kept the top of the page (a top-N sort); see docs/benchmarks.md.
- TaskCount, the tasks per (cluster, status, type) as signed changes, written by triggers
  on tasks_taskinstance (PostgreSQL only: SQLite lists count their rows), and filled once
  here from the tasks already there.
"""

import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models

POSTGRES_TRIGGERS = [
    # Statement-level for inserts and deletes: one grouped INSERT per statement, so a bulk
    # insert of a million tasks (or a retention batch's delete) adds a few rows, not one
    # per task.
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskcount (cluster_id, status, type, n)
        SELECT cluster_id, status, type, count(*) FROM inserted_tasks GROUP BY 1, 2, 3;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_count_insert
    AFTER INSERT ON tasks_taskinstance
    REFERENCING NEW TABLE AS inserted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_taskcount_inserted()
    """,
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskcount (cluster_id, status, type, n)
        SELECT cluster_id, status, type, -count(*) FROM deleted_tasks GROUP BY 1, 2, 3;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_count_delete
    AFTER DELETE ON tasks_taskinstance
    REFERENCING OLD TABLE AS deleted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_taskcount_deleted()
    """,
    # Row-level for updates (a trigger with transition tables cannot name columns): the
    # WHEN skips, without calling the function, every update that keeps the three keys
    # (heartbeats, progress, updated_at stamps).
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_moved() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskcount (cluster_id, status, type, n)
        VALUES (OLD.cluster_id, OLD.status, OLD.type, -1),
               (NEW.cluster_id, NEW.status, NEW.type, 1);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_count_update
    AFTER UPDATE OF status, type, cluster_id ON tasks_taskinstance
    FOR EACH ROW WHEN (
        OLD.status IS DISTINCT FROM NEW.status
        OR OLD.type IS DISTINCT FROM NEW.type
        OR OLD.cluster_id IS DISTINCT FROM NEW.cluster_id
    )
    EXECUTE FUNCTION tasks_taskcount_moved()
    """,
    # TRUNCATE fires no delete trigger: it empties the counts as well.
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_emptied() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM tasks_taskcount;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_count_truncate
    AFTER TRUNCATE ON tasks_taskinstance
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_taskcount_emptied()
    """,
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS tasks_taskinstance_count_insert ON tasks_taskinstance",
    "DROP TRIGGER IF EXISTS tasks_taskinstance_count_delete ON tasks_taskinstance",
    "DROP TRIGGER IF EXISTS tasks_taskinstance_count_update ON tasks_taskinstance",
    "DROP TRIGGER IF EXISTS tasks_taskinstance_count_truncate ON tasks_taskinstance",
    "DROP FUNCTION IF EXISTS tasks_taskcount_inserted()",
    "DROP FUNCTION IF EXISTS tasks_taskcount_deleted()",
    "DROP FUNCTION IF EXISTS tasks_taskcount_moved()",
    "DROP FUNCTION IF EXISTS tasks_taskcount_emptied()",
]


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in POSTGRES_DROP + POSTGRES_TRIGGERS:
        schema_editor.execute(statement)
    # Exact from here on: CREATE TRIGGER holds off every writer of the table until this
    # migration commits, so no task is both counted below and by a trigger, or by neither.
    schema_editor.execute("DELETE FROM tasks_taskcount")
    schema_editor.execute(
        "INSERT INTO tasks_taskcount (cluster_id, status, type, n) "
        "SELECT cluster_id, status, type, count(*) FROM tasks_taskinstance GROUP BY 1, 2, 3"
    )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in POSTGRES_DROP:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0016_bulkitem_task_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("cluster_id", models.BigIntegerField(null=True)),
                ("status", models.CharField(max_length=16)),
                ("type", models.CharField(max_length=16)),
                ("n", models.BigIntegerField()),
            ],
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(fields=["-start_time", "-id"], name="task_start_id"),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                models.OrderBy(
                    models.ExpressionWrapper(
                        django.db.models.expressions.CombinedExpression(
                            models.F("finish_time"), "-", models.F("start_time")
                        ),
                        output_field=models.DurationField(),
                    ),
                    descending=True,
                ),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("finish_time__isnull", False), ("start_time__isnull", False)),
                name="task_finished_duration_desc",
            ),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                models.OrderBy(
                    models.ExpressionWrapper(
                        django.db.models.expressions.CombinedExpression(
                            models.F("finish_time"), "-", models.F("start_time")
                        ),
                        output_field=models.DurationField(),
                    )
                ),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("finish_time__isnull", False), ("start_time__isnull", False)),
                name="task_finished_duration_asc",
            ),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                condition=models.Q(("finish_time__isnull", True), ("start_time__isnull", False)),
                fields=["status", "start_time", "-id"],
                name="task_running_status_start_id",
            ),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                models.F("status"),
                models.OrderBy(
                    models.ExpressionWrapper(
                        django.db.models.expressions.CombinedExpression(
                            models.F("finish_time"), "-", models.F("start_time")
                        ),
                        output_field=models.DurationField(),
                    ),
                    descending=True,
                ),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("finish_time__isnull", False), ("start_time__isnull", False)),
                name="task_status_duration_desc",
            ),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                models.F("status"),
                models.OrderBy(
                    models.ExpressionWrapper(
                        django.db.models.expressions.CombinedExpression(
                            models.F("finish_time"), "-", models.F("start_time")
                        ),
                        output_field=models.DurationField(),
                    )
                ),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("finish_time__isnull", False), ("start_time__isnull", False)),
                name="task_status_duration_asc",
            ),
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(
                condition=models.Q(("finish_time__isnull", True), ("start_time__isnull", False)),
                fields=["start_time", "-id"],
                include=("type", "cluster_id", "name"),
                name="task_running_start_id",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
