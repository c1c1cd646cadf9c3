from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "taskcenter.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        from taskcenter.engine import worker  # noqa: F401  (connects its signal receivers)
