"""TaskNameCount: the tasks per (name, cluster, status, type) as signed changes, for the total
of a list filtered by name (see the model).

The triggers of migration 0017 now write it beside TaskCount (PostgreSQL only: SQLite
lists count their rows), and a rename moves a task from one name's rows to the other's.
It is filled once here from the tasks already there.
"""

import importlib

from django.db import migrations, models

COUNTS_0017 = importlib.import_module("taskcenter.tasks.migrations.0017_task_list_sorts_and_counts")

POSTGRES_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskcount (cluster_id, status, type, n)
        SELECT cluster_id, status, type, count(*) FROM inserted_tasks GROUP BY 1, 2, 3;
        INSERT INTO tasks_tasknamecount (name, cluster_id, status, type, n)
        SELECT name, cluster_id, status, type, count(*) FROM inserted_tasks
        GROUP BY 1, 2, 3, 4;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskcount (cluster_id, status, type, n)
        SELECT cluster_id, status, type, -count(*) FROM deleted_tasks GROUP BY 1, 2, 3;
        INSERT INTO tasks_tasknamecount (name, cluster_id, status, type, n)
        SELECT name, cluster_id, status, type, -count(*) FROM deleted_tasks
        GROUP BY 1, 2, 3, 4;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_moved() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF (OLD.cluster_id, OLD.status, OLD.type)
            IS DISTINCT FROM (NEW.cluster_id, NEW.status, NEW.type) THEN
            INSERT INTO tasks_taskcount (cluster_id, status, type, n)
            VALUES (OLD.cluster_id, OLD.status, OLD.type, -1),
                   (NEW.cluster_id, NEW.status, NEW.type, 1);
        END IF;
        INSERT INTO tasks_tasknamecount (name, cluster_id, status, type, n)
        VALUES (OLD.name, OLD.cluster_id, OLD.status, OLD.type, -1),
               (NEW.name, NEW.cluster_id, NEW.status, NEW.type, 1);
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION tasks_taskcount_emptied() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM tasks_taskcount;
        DELETE FROM tasks_tasknamecount;
        RETURN NULL;
    END $$
    """,
    "DROP TRIGGER IF EXISTS tasks_taskinstance_count_update ON tasks_taskinstance",
    # Row-level, as before, and a rename now moves the task too.
    """
    CREATE TRIGGER tasks_taskinstance_count_update
    AFTER UPDATE OF status, type, cluster_id, name ON tasks_taskinstance
    FOR EACH ROW WHEN (
        OLD.status IS DISTINCT FROM NEW.status
        OR OLD.type IS DISTINCT FROM NEW.type
        OR OLD.cluster_id IS DISTINCT FROM NEW.cluster_id
        OR OLD.name IS DISTINCT FROM NEW.name
    )
    EXECUTE FUNCTION tasks_taskcount_moved()
    """,
]


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Exact from here on: no writer of the tasks runs between the new triggers and the
    # rows counted below, until this migration commits.
    schema_editor.execute("LOCK TABLE tasks_taskinstance IN SHARE ROW EXCLUSIVE MODE")
    for statement in POSTGRES_FUNCTIONS:
        schema_editor.execute(statement)
    schema_editor.execute("DELETE FROM tasks_tasknamecount")
    schema_editor.execute(
        "INSERT INTO tasks_tasknamecount (name, cluster_id, status, type, n, folded) "
        "SELECT name, cluster_id, status, type, count(*), true FROM tasks_taskinstance "
        "GROUP BY 1, 2, 3, 4"
    )


def restore_triggers(apps, schema_editor):
    """Migration 0017's triggers, which write TaskCount alone."""
    COUNTS_0017.create_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0019_task_name_dictionary_trigram"),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskNameCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("cluster_id", models.BigIntegerField(null=True)),
                ("status", models.CharField(max_length=16)),
                ("type", models.CharField(max_length=16)),
                ("n", models.BigIntegerField()),
                ("folded", models.BooleanField(db_default=False, default=False)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["name"], name="taskname_count_name"),
                    models.Index(
                        condition=models.Q(("folded", False)),
                        fields=["name"],
                        name="taskname_count_unfolded",
                    ),
                ],
            },
        ),
        migrations.RunPython(create_triggers, restore_triggers),
    ]
