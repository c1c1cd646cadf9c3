from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "taskcenter.engine"
    label = "engine"
    verbose_name = "Engine"
