from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "taskcenter.runtime"
    label = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        # Every process (manage.py commands, serve's children, a Celery worker, the web
        # processes, the tests) passes here once before it serves anything: the one place
        # that covers them all, where calls at each entry point would miss the next one.
        from taskcenter.runtime import var_dir

        var_dir.prepare()
