from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "taskcenter.runtime"
    label = "runtime"
    verbose_name = "Runtime"
