"""The product's settings with the demo app installed, and what only tests want.

The demo's definitions are the fixtures of the engine, command and page tests. It is set
as a variable rather than an override so that the processes the tests start (the Celery
worker, `manage.py` commands) install the demo too; those processes inherit
DJANGO_SETTINGS_MODULE=tests.settings from pytest-django, so they hash as fast as the
tests do.
"""

import os
from pathlib import Path

os.environ.setdefault("TASKCENTER_DEMO", "true")

# Under pytest-xdist each test process (gw0, gw1, ...) gets a var folder of its own: its
# Prometheus files, broker folder default and secrets never mix with another process's.
# Set in the environment, before the product's settings read it, so that the processes a
# test starts use the same folder; they inherit TASKCENTER_TEST_XDIST_VAR too, and so keep
# the folder they are given (a test may give one of its own).
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _xdist_worker and "TASKCENTER_TEST_XDIST_VAR" not in os.environ:
    _var = Path(os.environ.get("TASKCENTER_VAR_DIR") or Path(__file__).parent.parent / "var")
    _var = _var / _xdist_worker
    os.environ["TASKCENTER_VAR_DIR"] = os.environ["TASKCENTER_TEST_XDIST_VAR"] = str(_var)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != "":  # empty: turned off
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_var / "metrics")

from taskcenter.settings import *  # noqa: E402, F403

# Every persona signs in or sends HTTP Basic credentials; PBKDF2's million rounds per check
# would be most of the suite's time. The production hasher is not under test here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
