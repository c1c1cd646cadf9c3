"""Drop the trigram index of 0002: no query uses it any more.

The name filter now matches names in TaskName and finds their tasks through the (name,
id) index (0005), so the GIN index on UPPER(name) only cost a write on every task insert.
PostgreSQL only, like the index itself.
"""

from django.db import migrations

INDEX = "task_name_upper_trgm"


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks_taskinstance "
            "USING gin (UPPER(name::text) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("tasks", "0006_drop_indexes_covered_by_composites")]

    operations = [migrations.RunPython(drop, create)]
