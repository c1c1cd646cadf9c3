import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

app = Celery("taskcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's Celery tasks live in its `celery_tasks` module (only the engine has one), a name
# that cannot be mistaken for the tasks app.
app.autodiscover_tasks(related_name="celery_tasks")
