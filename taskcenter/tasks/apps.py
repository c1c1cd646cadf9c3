from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "taskcenter.tasks"
    label = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        # Fill the definition registry: demo definitions live with the engine.
        from taskcenter.demo import jobs  # noqa: F401  (HENGSHI job classes for schedules)
        from taskcenter.engine import demo  # noqa: F401
