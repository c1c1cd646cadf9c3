from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "taskcenter.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        # The project's Celery app, which shared tasks bind to (taskcenter/__init__.py
        # loads it lazily so that the client does not).
        import taskcenter.celery  # noqa: F401

        # worker and presence connect Celery's signal receivers.
        from taskcenter.engine import dispatch, presence, worker  # noqa: F401

        dispatch.register()
