from django.contrib.auth import views as auth_views
from django.urls import path

from taskcenter.dashboard import (
    approvals,
    bulk,
    fleet,
    jobs,
    notifications_views,
    retention,
    schedules_views,
    verb_views,
    views,
)

app_name = "dashboard"
urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/live/", views.task_list_live, name="task_list_live"),
    path("live/counts/", views.nav_counts_live, name="nav_counts_live"),
    path("tasks/bulk/<uuid:bulk_id>/", bulk.bulk_detail, name="bulk_detail"),
    path("tasks/bulk/<uuid:bulk_id>/progress/", bulk.bulk_progress, name="bulk_progress"),
    path("tasks/bulk/<uuid:bulk_id>/stop/", bulk.bulk_stop, name="bulk_stop"),
    path("tasks/bulk/<str:operation>/", bulk.bulk_dry_run, name="bulk_dry_run"),
    path("tasks/<int:task_id>/", views.task_detail, name="task_detail"),
    path("tasks/<int:task_id>/live/", views.task_live, name="task_live"),
    path("tasks/<int:task_id>/confirm/", verb_views.confirm, name="confirm"),
    path("tasks/<int:task_id>/diagnosis/", views.task_diagnosis, name="task_diagnosis"),
    path("tasks/<int:task_id>/<str:op>/", verb_views.task_operate, name="task_operate"),
    path(
        "tasks/<int:task_id>/subtasks/<int:subtask_id>/",
        views.subtask_panel,
        name="subtask_panel",
    ),
    path(
        "tasks/<int:task_id>/subtasks/<int:subtask_id>/log/",
        views.subtask_log,
        name="subtask_log",
    ),
    path(
        "tasks/<int:task_id>/subtasks/<int:subtask_id>/log/download/",
        views.subtask_log_download,
        name="subtask_log_download",
    ),
    path(
        "tasks/<int:task_id>/subtasks/<int:subtask_id>/<str:op>/",
        verb_views.subtask_operate,
        name="subtask_operate",
    ),
    path("audit/", views.audit, name="audit"),
    path("approvals/", approvals.approvals, name="approvals"),
    path("fleet/", fleet.fleet, name="fleet"),
    path("fleet/workers/<int:worker_id>/", fleet.fleet_worker, name="fleet_worker"),
    path("fleet/queues/<str:queue>/", fleet.fleet_queue, name="fleet_queue"),
    path("fleet/banner/", fleet.worker_banner, name="worker_banner"),
    path("manage/retention/", retention.retention, name="retention"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<str:key>/", jobs.job_detail, name="job_detail"),
    path("schedules/", schedules_views.schedule_list, name="schedule_list"),
    path("schedules/new/", schedules_views.schedule_new, name="schedule_new"),
    path("schedules/preview/", schedules_views.schedule_preview, name="schedule_preview"),
    path("schedules/live/", schedules_views.schedule_list_live, name="schedule_list_live"),
    path(
        "schedules/<int:plan_id>/live/",
        schedules_views.schedule_detail_live,
        name="schedule_detail_live",
    ),
    path("schedules/job-params/", schedules_views.schedule_job_params, name="schedule_job_params"),
    path("schedules/<int:plan_id>/", schedules_views.schedule_detail, name="schedule_detail"),
    path("schedules/<int:plan_id>/edit/", schedules_views.schedule_edit, name="schedule_edit"),
    path(
        "schedules/<int:plan_id>/confirm/",
        schedules_views.schedule_confirm,
        name="schedule_confirm",
    ),
    path(
        "schedules/<int:plan_id>/<str:key>/",
        schedules_views.schedule_action,
        name="schedule_action",
    ),
]

urlpatterns += [
    path("notifications/", notifications_views.inbox, name="notification_inbox"),
    path("notifications/bell/", notifications_views.bell, name="notification_bell"),
    path("notifications/events/", notifications_views.events, name="notification_events"),
    path("notifications/watch/", notifications_views.watch, name="notification_watch"),
    path("notifications/mine/", notifications_views.my_rules, name="notification_my_rules"),
    path(
        "notifications/mine/new/",
        notifications_views.my_rule_create,
        name="notification_my_rule_create",
    ),
    path("notifications/channels/", notifications_views.channels, name="notification_channels"),
    path(
        "notifications/channels/<int:channel_id>/edit/",
        notifications_views.channel_edit,
        name="notification_channel_edit",
    ),
    path(
        "notifications/channels/<int:channel_id>/test/",
        notifications_views.channel_test,
        name="notification_channel_test",
    ),
    path(
        "notifications/channels/<int:channel_id>/delete/",
        notifications_views.channel_delete,
        name="notification_channel_delete",
    ),
    path(
        "notifications/channels/<int:channel_id>/deliveries/",
        notifications_views.deliveries,
        name="notification_deliveries",
    ),
    path(
        "notifications/deliveries/<int:delivery_id>/redeliver/",
        notifications_views.redeliver,
        name="notification_redeliver",
    ),
    path(
        "notifications/rules/",
        notifications_views.team_rule_create,
        name="notification_rule_create",
    ),
    path(
        "notifications/rules/<int:rule_id>/delete/",
        notifications_views.rule_delete,
        name="notification_rule_delete",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notifications_views.unsubscribe,
        name="notification_unsubscribe",
    ),
]
