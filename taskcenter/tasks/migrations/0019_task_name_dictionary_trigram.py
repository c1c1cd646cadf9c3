"""A trigram index on the task name dictionary's names (PostgreSQL).

The list's name filter, and its keyword, first find the names that contain the text in
TaskName (taskcenter.tasks.filters.name_contains). With one name per definition and now
and then a custom one, TaskName holds thousands of rows, and reading every one of them
for each request took 4 ms of a 10,000-name dictionary; the index finds them in 0.1 to
1 ms. It is written only when a name is seen for the first time. A text of fewer than
three characters has no trigram to look up: PostgreSQL then reads the table as before.
pg_trgm was installed by migration 0002 (installing it again is a no-op).
"""

from django.db import migrations

INDEX = "taskname_name_upper_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # The expression the filter's icontains compiles to: UPPER(name::text) LIKE ...
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks_taskname "
            "USING gin (UPPER(name::text) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tasks", "0018_covering_duration_indexes")]

    operations = [migrations.RunPython(create, drop)]
