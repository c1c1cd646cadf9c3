from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "taskcenter.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from taskcenter.core import loops
        from taskcenter.notifications import drain, recorder
        from taskcenter.tasks import events

        events.register_recorder(recorder.record)
        loops.register_loop("notifications", drain.drain, drain.interval)
        loops.register_loop("notification watchers", drain.watch, drain.watch_interval)
