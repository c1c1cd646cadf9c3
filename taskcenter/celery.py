import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")


class DjangoCelerySettings(Mapping):
    """Django's CELERY_* settings, copied into a dict at Celery's first look.

    Celery looks its settings up many times for each message it sends or runs (seven for a
    send). Read through django.conf.settings, every lookup of a setting the project leaves
    unset raised and caught an AttributeError inside Django's lazy settings: sending one
    message cost 0.3 ms of CPU, the most of it there. A plain mapping answers at dict speed.
    The settings are fixed once a process has started, so one copy is enough.
    """

    def __init__(self) -> None:
        self._copy: dict[str, Any] | None = None

    def _settings(self) -> dict[str, Any]:
        if self._copy is None:
            from django.conf import settings

            self._copy = {
                name: getattr(settings, name)
                for name in dir(settings)
                if name.startswith("CELERY_")
            }
        return self._copy

    def __getitem__(self, key: str) -> Any:
        return self._settings()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings())

    def __len__(self) -> int:
        return len(self._settings())


app = Celery("taskcenter")
app.config_from_object(DjangoCelerySettings(), namespace="CELERY")
# Each app's Celery tasks live in its `celery_tasks` module (only the engine has one), a name
# that cannot be mistaken for the tasks app.
app.autodiscover_tasks(related_name="celery_tasks")
