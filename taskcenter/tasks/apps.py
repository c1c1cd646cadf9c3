from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "taskcenter.tasks"
    label = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from taskcenter.core import loops
        from taskcenter.tasks.services import counts

        loops.register_loop("task counts", counts.fold_task_counts, counts.fold_interval)
