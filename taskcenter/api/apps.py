from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "taskcenter.api"
    label = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from taskcenter.api import schema  # noqa: F401 - registers the OpenAPI extension
