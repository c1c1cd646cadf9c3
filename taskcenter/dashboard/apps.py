from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "taskcenter.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
