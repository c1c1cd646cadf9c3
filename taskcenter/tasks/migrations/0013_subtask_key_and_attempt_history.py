"""A subtask's step key (the history grid matches steps across versions by it) and the
attempt history (the timeline draws every attempt).

Making a subtask READY again (a retry, an automatic retry, a rollback) bumps its attempt
number; a trigger copies the attempt it replaces into tasks_subtaskattempt, whatever
statement does it (the verbs, the engine's finish, its one-statement PostgreSQL path), at
no extra round trip. It leaves alone a subtask that a rollback has marked
(rollback_pending): the rollback verb copied it when it marked it. On SQLite, Django
rebuilds a table for some schema changes and a rebuild drops its triggers: a later
migration that alters tasks_subtaskinstance must run create_triggers again
(tests/dashboard/test_timeline.py fails if it does not).
"""

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = (
    "task_id, subtask_id, attempt, operation, status, executor, ready_at, start_time, finish_time"
)
VALUES = (
    "OLD.task_id, OLD.id, OLD.attempt, OLD.operation, OLD.status, OLD.executor, OLD.ready_at,"
    " CASE WHEN OLD.ready_at IS NULL OR OLD.start_time >= OLD.ready_at THEN OLD.start_time END,"
    " OLD.finish_time"
)
POSTGRES_TRIGGERS = [
    f"""
    CREATE OR REPLACE FUNCTION tasks_subtaskattempt_keep() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tasks_subtaskattempt ({COLUMNS}) VALUES ({VALUES})
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    # UPDATE OF attempt: the claims, heartbeats and finishes never set it.
    """
    CREATE TRIGGER tasks_subtaskinstance_attempt_replaced
    AFTER UPDATE OF attempt ON tasks_subtaskinstance
    FOR EACH ROW WHEN (NEW.attempt > OLD.attempt AND OLD.attempt > 0 AND NOT OLD.rollback_pending)
    EXECUTE FUNCTION tasks_subtaskattempt_keep()
    """,
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS tasks_subtaskinstance_attempt_replaced ON tasks_subtaskinstance",
    "DROP FUNCTION IF EXISTS tasks_subtaskattempt_keep()",
]
SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER IF NOT EXISTS tasks_subtaskinstance_attempt_replaced
    AFTER UPDATE OF attempt ON tasks_subtaskinstance
    WHEN NEW.attempt > OLD.attempt AND OLD.attempt > 0 AND NOT OLD.rollback_pending
    BEGIN
        INSERT OR IGNORE INTO tasks_subtaskattempt ({COLUMNS}) VALUES ({VALUES});
    END
    """,
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS tasks_subtaskinstance_attempt_replaced"]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRES_DROP + POSTGRES_TRIGGERS
    elif vendor == "sqlite":
        statements = SQLITE_TRIGGERS
    else:
        raise NotImplementedError(f"no attempt history trigger for {vendor}")
    for statement in statements:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in POSTGRES_DROP if vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0012_bulk_operations_and_repeats'),
    ]

    operations = [
        migrations.AddField(
            model_name='subtaskinstance',
            name='key',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
        migrations.CreateModel(
            name='SubtaskAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempt', models.PositiveIntegerField()),
                ('operation', models.CharField(choices=[('EXECUTE', 'Execute'), ('RETRY', 'Retry'), ('ROLLBACK', 'Rollback'), ('SKIP', 'Skip'), ('ROLLBACK_SKIP', 'Rollback Skip'), ('CANCEL', 'Cancel')], max_length=16)),
                ('status', models.CharField(choices=[('PENDING', 'Pending'), ('READY', 'Ready'), ('RUNNING', 'Running'), ('CANCELING', 'Canceling'), ('FAILED', 'Failed'), ('SUCCESSFUL', 'Successful')], max_length=16)),
                ('executor', models.CharField(blank=True, max_length=255)),
                ('ready_at', models.DateTimeField(blank=True, null=True)),
                ('start_time', models.DateTimeField(blank=True, null=True)),
                ('finish_time', models.DateTimeField(blank=True, null=True)),
                ('subtask', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='past_attempts', to='tasks.subtaskinstance')),
                ('task', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tasks.taskinstance')),
            ],
            options={
                'indexes': [models.Index(fields=['task', 'subtask'], name='attempt_task_subtask')],
                'constraints': [models.UniqueConstraint(fields=('subtask', 'attempt'), name='attempt_subtask_number')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
