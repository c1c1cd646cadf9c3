from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "taskcenter.tasks"
    label = "tasks"
    verbose_name = "Tasks"
