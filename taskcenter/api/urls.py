"""/api/: the OCP v2 task facade, its OpenAPI schema and API browser, and a JSON 404."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from taskcenter.api import views

app_name = "api"

TASK = "v2/tasks/instances/<str:taskInstanceId>"
SUBTASK = f"{TASK}/subtasks/<str:subtaskInstanceId>"

urlpatterns = [
    path("v2/info", views.info, name="info"),
    path("v2/tasks/instances", views.task_list, name="task-list"),
    path("v2/tasks/instances/creators", views.task_creators, name="task-creators"),
    path(TASK, views.task_detail, name="task-detail"),
    path(f"{TASK}/retry", views.task_retry, name="task-retry"),
    path(f"{TASK}/rollback", views.task_rollback, name="task-rollback"),
    path(f"{TASK}/downloadDiagnosis", views.task_download_diagnosis, name="task-diagnosis"),
    path(f"{SUBTASK}/retry", views.subtask_retry, name="subtask-retry"),
    path(f"{SUBTASK}/skip", views.subtask_skip, name="subtask-skip"),
    path(f"{SUBTASK}/cancel", views.subtask_cancel, name="subtask-cancel"),
    path(f"{SUBTASK}/log", views.subtask_log, name="subtask-log"),
    # The alias a Terraform provider polls; after the fixed paths above.
    path("v2/tasks/<str:taskInstanceId>", views.task_detail_alias, name="task-detail-alias"),
    path("schema", SpectacularAPIView.as_view(api_version="v2"), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a JSON 404 in the envelope, never an HTML page.
    re_path(r"^.*$", views.not_found, name="not-found"),
]
