from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "taskcenter.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        from taskcenter.engine import dispatch, worker  # noqa: F401  (worker connects receivers)

        dispatch.register()
