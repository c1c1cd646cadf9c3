"""The task name dictionary (TaskName) and a (name, id) index for the list's name filter.

"Name contains X" used to test every task's name: on a million tasks its exact count was
a full scan and a deep page walked the matches up to its offset. Names are few, so the
filter now matches the names in TaskName and finds their tasks through the (name, id)
index (see taskcenter.tasks.filters).

The filter is only right if TaskName holds every task's name, so the database keeps it
filled: a trigger adds the name of every inserted task and of every renamed one, whatever
writes the row (services, bulk_create in seed_demo and tests, raw SQL in benchmarks), and
the backfill below adds the names already there. On SQLite, Django rebuilds a table for
some schema changes and a rebuild drops its triggers: a later migration that alters
tasks_taskinstance must run create_triggers again (tests/tasks/test_task_names.py fails
if it does not).
"""

from django.db import migrations, models

POSTGRES_TRIGGERS = [
    # Statement-level for inserts: one INSERT ... SELECT DISTINCT per statement, so a bulk
    # insert of a million rows costs one pass, not a million trigger calls.
    """
    CREATE OR REPLACE FUNCTION tasks_taskname_add_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskname (name)
        SELECT DISTINCT name FROM inserted_tasks
        ON CONFLICT (name) DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_name_insert
    AFTER INSERT ON tasks_taskinstance
    REFERENCING NEW TABLE AS inserted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_taskname_add_inserted()
    """,
    # Row-level for renames (a statement trigger with a transition table cannot name a
    # column): UPDATE OF name skips the engine's status updates, which never set the name.
    """
    CREATE OR REPLACE FUNCTION tasks_taskname_add_renamed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_taskname (name) VALUES (NEW.name) ON CONFLICT (name) DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tasks_taskinstance_name_update
    AFTER UPDATE OF name ON tasks_taskinstance
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION tasks_taskname_add_renamed()
    """,
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS tasks_taskinstance_name_insert ON tasks_taskinstance",
    "DROP TRIGGER IF EXISTS tasks_taskinstance_name_update ON tasks_taskinstance",
    "DROP FUNCTION IF EXISTS tasks_taskname_add_inserted()",
    "DROP FUNCTION IF EXISTS tasks_taskname_add_renamed()",
]
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER IF NOT EXISTS tasks_taskinstance_name_insert
    AFTER INSERT ON tasks_taskinstance
    BEGIN
        INSERT OR IGNORE INTO tasks_taskname (name) VALUES (NEW.name);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS tasks_taskinstance_name_update
    AFTER UPDATE OF name ON tasks_taskinstance
    WHEN OLD.name IS NOT NEW.name
    BEGIN
        INSERT OR IGNORE INTO tasks_taskname (name) VALUES (NEW.name);
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS tasks_taskinstance_name_insert",
    "DROP TRIGGER IF EXISTS tasks_taskinstance_name_update",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRES_DROP + POSTGRES_TRIGGERS
    elif vendor == "sqlite":
        statements = SQLITE_TRIGGERS
    else:
        raise NotImplementedError(f"no task name triggers for {vendor}")
    for statement in statements:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in POSTGRES_DROP if vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(statement)


def backfill(apps, schema_editor):
    # No task is inserted between this and the triggers: on PostgreSQL the index build
    # holds off writers until the migration commits, and SQLite has one writer.
    schema_editor.execute(
        "INSERT INTO tasks_taskname (name) SELECT DISTINCT name FROM tasks_taskinstance"
    )


def sample_more_names(apps, schema_editor):
    # The filter lists the matching names in its SQL, and PostgreSQL estimates each name's
    # tasks from the column's statistics. With the default sample (30,000 rows) a million
    # tasks with 10,000 rare custom names looked like 320 distinct names, so a rare name
    # counted for ~33 tasks and a filter matching 111 of them (111 tasks) walked the whole
    # table for its first page (130 ms instead of 1). A 300,000-row sample sees ten times
    # more of them; only ANALYZE pays for it.
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE tasks_taskinstance ALTER COLUMN name SET STATISTICS 1000")
    schema_editor.execute("ANALYZE tasks_taskinstance (name)")


def sample_default(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE tasks_taskinstance ALTER COLUMN name SET STATISTICS -1")


class Migration(migrations.Migration):
    dependencies = [("tasks", "0004_subtask_upstreams_left")]

    operations = [
        migrations.CreateModel(
            name="TaskName",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200, unique=True)),
            ],
        ),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(fields=["name", "-id"], name="task_name_id"),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(sample_more_names, sample_default),
    ]
