"""Starting and supervising taskcenter's processes, and its command-line tools.

`serve` runs the web processes, a Celery worker and the scheduler in one terminal and
restarts a child that dies (`supervise`); `run_task` starts a task from a terminal and
follows it. The app has no models: it only drives the others.
"""
