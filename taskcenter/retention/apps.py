from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "taskcenter.retention"
    label = "retention"
    verbose_name = "Retention"

    def ready(self) -> None:
        from taskcenter.retention import prune
        from taskcenter.schedules import housekeeping

        housekeeping.register_daily("retention", prune.prune_scheduled)
