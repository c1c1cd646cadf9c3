import sys

from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults

from taskcenter.core.metrics import metrics_view
from taskcenter.core.middleware import database_unavailable_response, is_database_unavailable
from taskcenter.engine.dispatch import broker_answers


def healthz(request):
    """The process is alive and answers; says nothing of the database or the broker."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready to serve: the database and the broker both answer (503 otherwise, saying which)."""
    checks = {"database": _database_answers(), "broker": broker_answers()}
    ready = all(checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        **{name: "ok" if answered else "unavailable" for name, answered in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not now"
        connection.close()  # a broken connection is opened again on the next request
        return False
    return True


def server_error(request):
    """handler500: a database that went away mid-request is a 503 with a clear message."""
    if is_database_unavailable(sys.exception()):
        return database_unavailable_response(request)
    return defaults.server_error(request)


handler500 = server_error

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/", include("taskcenter.api.urls")),
    path("", include("taskcenter.accounts.urls")),
    path("", include("taskcenter.dashboard.urls")),
]
