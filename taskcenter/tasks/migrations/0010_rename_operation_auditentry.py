"""The audit row model is called an audit entry: "operation" also named the run modes and
the operator's verbs. Renaming the model renames its table (the rows stay as they are) and
its content type; its permissions are renamed here, so the roles that hold them keep them
(on a new database they do not exist yet, and are created under the new names)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


ACTIONS = ("add", "change", "delete", "view")


def rename_permissions(apps, schema_editor, old="operation", new="auditentry", words="audit entry"):
    Permission = apps.get_model("auth", "Permission")
    for action in ACTIONS:
        Permission.objects.filter(
            content_type__app_label="tasks", codename=f"{action}_{old}"
        ).update(codename=f"{action}_{new}", name=f"Can {action} {words}")


def restore_permissions(apps, schema_editor):
    rename_permissions(apps, schema_editor, old="auditentry", new="operation", words="operation")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0009_task_updated_at"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel(old_name="Operation", new_name="AuditEntry"),
        migrations.RunPython(rename_permissions, restore_permissions),
        migrations.AlterField(
            model_name="auditentry",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="audit_entries",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="subtask",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="audit_entries",
                to="tasks.subtaskinstance",
            ),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="task",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="audit_entries",
                to="tasks.taskinstance",
            ),
        ),
    ]
