from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "taskcenter.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        # worker and presence connect Celery's signal receivers.
        from taskcenter.engine import dispatch, presence, worker  # noqa: F401

        dispatch.register()
