"""A trigram index for the list's name filter (name contains X, case-insensitive).

Django turns `name__icontains` into UPPER(name::text) LIKE UPPER('%X%'), which no b-tree
can serve; on PostgreSQL a GIN trigram index on the same expression can, and it keeps the
filtered count and page fast on a million tasks. SQLite has no such index: a no-op there.
"""

from django.db import migrations

INDEX = "task_name_upper_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks_taskinstance "
        "USING gin (UPPER(name::text) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tasks", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
