"""Names that look unused to vulture but are used: by Django, Celery, DRF, django-filter
or drf-spectacular, which find them by a dotted path in the settings, by a naming rule or
by a metaclass; or by the templates. Checked with `vulture` in the lint step (configured
in pyproject.toml, [tool.vulture]).

Each name counts as used wherever it is defined, so an entry covers every definition of
that name. Framework conventions that hold for every app (management commands, app
configs, Meta options, URL modules, migrations) are in [tool.vulture] instead, so a new
command or app needs no entry here. Add a name only with the place that uses it.
"""

# ruff: noqa

_ = object()

# --- Settings read by Django, Celery, DRF, drf-spectacular and whitenoise, not by our code
ALLOWED_HOSTS
CSRF_TRUSTED_ORIGINS
SECURE_HSTS_SECONDS
SESSION_COOKIE_AGE
CELERY_WORKER_PREFETCH_MULTIPLIER
CELERY_DB_REUSE_MAX
MIDDLEWARE
ROOT_URLCONF
WSGI_APPLICATION
ASGI_APPLICATION
TEMPLATES
DATABASES
DEFAULT_AUTO_FIELD
AUTH_PASSWORD_VALIDATORS
AUTHENTICATION_BACKENDS
LOGIN_URL
LOGIN_REDIRECT_URL
LOGOUT_REDIRECT_URL
CSRF_FAILURE_VIEW
LANGUAGE_CODE
USE_I18N
USE_TZ
STATIC_URL
STATICFILES_DIRS
STORAGES
WHITENOISE_USE_FINDERS
SESSION_COOKIE_SECURE
CSRF_COOKIE_SECURE
SECURE_SSL_REDIRECT
SECURE_HSTS_INCLUDE_SUBDOMAINS
SECURE_HSTS_PRELOAD
SECURE_PROXY_SSL_HEADER
SESSION_COOKIE_HTTPONLY
X_FRAME_OPTIONS
REST_FRAMEWORK
SPECTACULAR_SETTINGS
LOGGING
CELERY_BROKER_TRANSPORT
CELERY_TASK_DEFAULT_QUEUE
CELERY_TASK_SERIALIZER
CELERY_ACCEPT_CONTENT
CELERY_TASK_IGNORE_RESULT
CELERY_TASK_ACKS_LATE
CELERY_WORKER_HIJACK_ROOT_LOGGER
CELERY_WORKER_CONSUMER
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP
CELERY_BROKER_CONNECTION_RETRY
CELERY_BROKER_CONNECTION_MAX_RETRIES
CELERY_BROKER_CONNECTION_TIMEOUT
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS
CELERY_TASK_PUBLISH_RETRY_POLICY

# --- Classes and functions the settings name by dotted path
ReaderTimeZoneMiddleware  # MIDDLEWARE
RequestMetricsMiddleware
TraceIdMiddleware
DatabaseUnavailableMiddleware
ApiErrorMiddleware
ReleaseApiResponseMiddleware
LogPollShortcutMiddleware
TextInputMiddleware
ContentSecurityPolicyMiddleware
process_exception  # Django's middleware hook
TraceIdFilter  # LOGGING
ThrottledModelBackend  # AUTHENTICATION_BACKENDS
_.get_user
AccessKeyAuthentication  # REST_FRAMEWORK
CachedBasicAuthentication
_.keyword
_.authenticate_header
preferences  # TEMPLATES' context processors
top_bar
csrf_failure  # CSRF_FAILURE_VIEW
EngineCollector  # TASKCENTER_METRICS_COLLECTORS
FiresCollector
DeliveriesCollector
fanned_out  # notifications.Event: read and set through querysets (outbox.fan_out)
SuperuserAdminSite  # SuperuserAdminConfig.default_site
_.login_form
_.has_permission
ocp_endpoints  # drf-spectacular PREPROCESSING_HOOKS (taskcenter/api/urls.py)
hengshi_endpoints

# --- drf-spectacular finds its extensions by subclassing (taskcenter/api/schema.py)
AccessKeyScheme
CachedBasicScheme
_.target_class
_.get_security_definition
auto_schema  # the extension method's signature

# --- DRF, Django and kombu hooks, overridden by name
_.to_representation
media_type  # Parser.parse's signature
_.get_exception_handler  # set on the view class api_view builds (api/hengshi.py)
_._has_been_logged  # tells Django's request logging the line is written
_.has_add_permission  # ModelAdmin (accounts/admin.py)
_.has_change_permission
_.list_display
_.list_filter
_.search_fields
_.revoke  # ModelAdmin.actions
_.redirect_authenticated_user  # LoginView
_.get_default_redirect_url
_.input_type  # a form widget's attribute
_.format_value
_.lookup_name  # a custom Lookup (tasks/filters.py)
_.prepare_rhs
_.output_field  # an ORM expression's type, read by Django (tasks/sql.py EpochMicros)
_.as_postgresql
_._put  # kombu's filesystem Channel
_.basic_ack  # a channel's, replaced on a lost connection (engine/worker.py)
_.basic_reject
frame  # a signal handler's signature (serve)
_._blank_is_unset  # pydantic validators (core/env.py)
_._parse_routes
_.model_config

# --- Declared fields: DRF serializers (the API's keys), forms and filter sets
dryRun
createdAt
repeatOf
finishedAt
obClusterId
obTenantId
clusterId
clusterName
tenantId
tenantName
hostId
seriesId
runTime
retryCount
nodeType
paralleIdx
parallelIdx
prohibitRollback
createTime
startTime
finishTime
tenantInfo
subtaskTotal
subtaskSuccessful
taskDefinitionId
totalElements
totalPages
nextOffset
buildVersion
buildTime
apiVersion
timeZone
server
successful
timestamp
traceId
debugMessage
subErrors
createdFrom
createdTo
keyword
password1
password2
_.field_class
_.filter_name  # django-filter's method="filter_name"
_.filter_host
_.filter_keyword

# --- Model fields read in raw SQL (tasks/sql.py) or by string in queries
upstreams_left
heartbeat_at
rollback_pending
followed_up

# --- Read by the templates
log_poller  # template tags: dashboard/_log.html
log_state
refused_at_start  # dashboard/bulk_detail.html
grant_labels  # accounts/user_list.html
short  # dashboard/_value.html
clipped
confirm_url  # dashboard/_button.html
confirm_label  # dashboard/_confirm.html, _schedule_confirm.html
help  # dashboard/job_detail.html, _job_params.html
utc  # dashboard/_cron_preview.html
offset_change
_.text_fields  # dashboard/schedule_form.html
_.input  # dashboard/_param_fields.html
_.raw_error
_.shown_reason  # dashboard/_audit_results.html

# --- Called by name from elsewhere
undo  # a demo rollback, registered as "demo.undo" and named in definitions
hengshi_step  # registered as "demo.hengshi_step"
forget_all  # the log poll cache's reset, for tests and benchmarks
_.subtask_name  # the context a definition's callables receive (engine/runner.py)

# --- Approval gates and the fleet's drill-down
starterMayApprove  # api/serializers.py: the schema's fields of an approval
onTimeout
expiresAt
approval
approvals_timed_out  # engine/reaper.py's report, read by tests and logs
died  # dashboard/fleet_worker.html
# --- uvicorn's h11 protocol calls this override (taskcenter.webserver.GuardedH11Protocol)
send_400_response

# --- The client library's public API (taskcenter/client), used by scripts
__getattr__  # taskcenter/__init__.py: the Celery app, loaded lazily
_.skip  # Subtasks.skip
_.cancel  # Tasks.cancel, Subtasks.cancel
_.enable  # Schedules.enable, Schedules.disable
_.disable
_.reject  # Subtasks.approve, Subtasks.reject
_.iterate_deliveries  # Notifications.iterate_deliveries (sync and async)
_.__doc__  # the help text of the command's generated commands

# --- Read by Django's database wrapper: the log poll's shortcut sets it (dashboard/log_poll.py)
_.health_check_done
