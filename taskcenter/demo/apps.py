from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo definitions and the seed_demo command; installed only when asked for (see
    TASKCENTER_DEMO in settings)."""

    name = "taskcenter.demo"
    label = "demo"
    verbose_name = "Demo"

    def ready(self) -> None:
        # Registering at import fills the definition and callable registries of every
        # process that installs this app: web, worker, scheduler and commands alike.
        from taskcenter.demo import definitions, jobs  # noqa: F401  (jobs: HENGSHI job classes)
