"""/api/: the OCP v2 task facade and its Jobs API, the HENGSHI schedules and contexts facade, their OpenAPI
schemas and API browser, and a JSON 404."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from taskcenter.api import approvals, bulk, jobs, notifications, schedules, views

app_name = "api"

TASK = "v2/tasks/instances/<str:taskInstanceId>"
SUBTASK = f"{TASK}/subtasks/<str:subtaskInstanceId>"
PLAN = "schedules/<str:scheduleId>"
CONTEXT = "contexts/<str:contextId>"
OCP_SCHEMA = {"PREPROCESSING_HOOKS": ["taskcenter.api.hengshi.ocp_endpoints"]}
HENGSHI_SCHEMA = {
    "TITLE": "taskcenter schedules API",
    "DESCRIPTION": "HENGSHI-compatible execution plans and contexts (seed 003), in "
    "HENGSHI's envelope {code, msg, data, version}.",
    "VERSION": "1",
    "PREPROCESSING_HOOKS": ["taskcenter.api.hengshi.hengshi_endpoints"],
}

urlpatterns = [
    path("v2/info", views.info, name="info"),
    path("v2/tasks/instances", views.task_list, name="task-list"),
    path("v2/tasks/instances/creators", views.task_creators, name="task-creators"),
    path("v2/tasks/instances/filters", views.task_filter_options, name="task-filters"),
    # Bulk operations: before the task paths, whose id segment would take "bulk".
    path("v2/tasks/instances/bulk/retry", bulk.bulk_retry, name="bulk-retry"),
    path("v2/tasks/instances/bulk/rollback", bulk.bulk_rollback, name="bulk-rollback"),
    path("v2/tasks/instances/bulk/cancel", bulk.bulk_cancel, name="bulk-cancel"),
    path("v2/tasks/instances/bulk/<str:bulkId>", bulk.bulk_detail, name="bulk-detail"),
    path("v2/tasks/instances/bulk/<str:bulkId>/stop", bulk.bulk_stop, name="bulk-stop"),
    path(TASK, views.task_detail, name="task-detail"),
    path(f"{TASK}/retry", views.task_retry, name="task-retry"),
    path(f"{TASK}/rollback", views.task_rollback, name="task-rollback"),
    path(f"{TASK}/cancel", views.task_cancel, name="task-cancel"),
    path(f"{TASK}/downloadDiagnosis", views.task_download_diagnosis, name="task-diagnosis"),
    path(f"{SUBTASK}/retry", views.subtask_retry, name="subtask-retry"),
    path(f"{SUBTASK}/skip", views.subtask_skip, name="subtask-skip"),
    path(f"{SUBTASK}/cancel", views.subtask_cancel, name="subtask-cancel"),
    path(f"{SUBTASK}/approve", views.subtask_approve, name="subtask-approve"),
    path(f"{SUBTASK}/reject", views.subtask_reject, name="subtask-reject"),
    path(f"{SUBTASK}/log", views.subtask_log, name="subtask-log"),
    # The alias a Terraform provider polls; after the fixed paths above.
    path("v2/tasks/<str:taskInstanceId>", views.task_detail_alias, name="task-detail-alias"),
    # Jobs: task definitions with their declared parameters, and starting runs of them.
    path("v2/approvals", approvals.approval_list, name="approval-list"),
    path("v2/jobs", jobs.job_list, name="job-list"),
    path("v2/jobs/<str:name>", jobs.job_detail, name="job-detail"),
    path("v2/jobs/<str:name>/runs", jobs.job_run, name="job-run"),
    # Notifications: channels, rules, deliveries.
    path("v2/notifications/channels", notifications.channels, name="notification-channels"),
    path(
        "v2/notifications/channels/<str:channelId>",
        notifications.channel,
        name="notification-channel",
    ),
    path(
        "v2/notifications/channels/<str:channelId>/test",
        notifications.channel_test,
        name="notification-channel-test",
    ),
    path("v2/notifications/rules", notifications.rules, name="notification-rules"),
    path("v2/notifications/rules/<str:ruleId>", notifications.rule, name="notification-rule"),
    path("v2/notifications/deliveries", notifications.deliveries, name="notification-deliveries"),
    # HENGSHI's schedules and contexts (seed 003).
    path("schedules", schedules.schedules, name="schedules"),
    path("schedules/users", schedules.schedule_users, name="schedule-users"),
    path("schedules/cancel", schedules.schedule_cancel_by_entity, name="schedule-cancel-entity"),
    path(PLAN, schedules.schedule, name="schedule"),
    path(f"{PLAN}/enable", schedules.schedule_enable, name="schedule-enable"),
    path(f"{PLAN}/disable", schedules.schedule_disable, name="schedule-disable"),
    path(f"{PLAN}/cancel", schedules.schedule_cancel, name="schedule-cancel"),
    path("contexts", schedules.contexts, name="contexts"),
    path("contexts/users", schedules.context_users, name="context-users"),
    path(CONTEXT, schedules.context, name="context"),
    path(f"{CONTEXT}/logs", schedules.context_logs, name="context-logs"),
    path(f"{CONTEXT}/results", schedules.context_results, name="context-results"),
    # Two schemas: OCP's v2 API, and HENGSHI's schedules and contexts.
    path(
        "schema",
        SpectacularAPIView.as_view(api_version="v2", custom_settings=OCP_SCHEMA),
        name="schema",
    ),
    path(
        "schedules-schema",
        SpectacularAPIView.as_view(custom_settings=HENGSHI_SCHEMA),
        name="schedules-schema",
    ),
    # The split view serves its start-up script as a file: no inline script (the CSP).
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    # Anything else under /api/ is a JSON 404 in the envelope, never an HTML page.
    re_path(r"^.*$", views.not_found, name="not-found"),
]
