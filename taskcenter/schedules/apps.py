from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "taskcenter.schedules"
    label = "schedules"
    verbose_name = "Schedules"
