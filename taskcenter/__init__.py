"""taskcenter: the Django project, and `taskcenter.client` (its HTTP client and command,
which import nothing of Django).

The Celery app is loaded lazily, so that importing the client does not load Celery or
Django: `celery -A taskcenter` finds it through `taskcenter.celery`, and the engine's
AppConfig.ready() imports it whenever Django starts (so shared tasks bind to it).
"""


def __getattr__(name: str):
    if name == "celery_app":
        from taskcenter.celery import app

        return app
    raise AttributeError(f"module 'taskcenter' has no attribute {name!r}")


__all__ = ["celery_app"]
