"""TaskInstance.updated_at and its index: the change cursor of the live pages.

Existing tasks take their last known moment (finish, else start, else creation), so that
a list opened after the upgrade does not see every old task as just changed. On SQLite,
adding a column with a database default rebuilds the table, which drops the task name
dictionary's triggers: they are created again (see 0005).
"""

import importlib

import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models


def backfill(apps, schema_editor):
    table = apps.get_model("tasks", "TaskInstance")._meta.db_table
    schema_editor.execute(
        f"UPDATE {table} SET updated_at = COALESCE(finish_time, start_time, create_time)"
    )


def name_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        dictionary = importlib.import_module("taskcenter.tasks.migrations.0005_task_name_dictionary")
        dictionary.create_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0008_cancel_task_permission")]

    operations = [
        migrations.AddField(
            model_name="taskinstance",
            name="updated_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                default=django.utils.timezone.now,
            ),
        ),
        migrations.RunPython(name_triggers, migrations.RunPython.noop),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="taskinstance",
            index=models.Index(fields=["updated_at", "id"], name="task_updated_id"),
        ),
    ]
