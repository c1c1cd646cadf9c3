"""The product's settings with the demo app installed: its definitions are the fixtures of
the engine, command and page tests.

Set as a variable rather than an override so that the processes the tests start (the
Celery worker, `manage.py` commands) install the demo too.
"""

import os

os.environ.setdefault("TASKCENTER_DEMO", "true")

from taskcenter.settings import *  # noqa: E402, F403
