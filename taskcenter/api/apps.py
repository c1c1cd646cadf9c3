from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "taskcenter.api"
    label = "api"
    verbose_name = "API"
