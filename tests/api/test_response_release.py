"""An API response is freed once the server has sent it, not at the garbage collector's
next full pass (which then walked all it held, a large task's detail included)."""

from __future__ import annotations

import base64
import gc
import weakref

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import RequestFactory

from tests.api.conftest import PASSWORD
from tests.factories import make_task


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def served(path: str, username: str):
    """The response to `path` from the WSGI handler the server runs, closed as the server
    closes it once sent (the test client keeps references of its own)."""
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    environ = RequestFactory()._base_environ(PATH_INFO=path, HTTP_AUTHORIZATION=f"Basic {token}")
    started = []
    # As the test client does: the test's database connection stays open across requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(environ, lambda status, headers: started.append(status))
        assert started == ["200 OK"], response.content[:300]
        response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return response


@pytest.mark.parametrize("path", ["/api/v2/tasks/instances/{task}", "/api/v2/tasks/instances"])
def test_a_sent_api_response_is_freed_at_once(viewer, collector_off, path):
    task = make_task(["SUCCESSFUL"] * 30)
    response = served(path.format(task=task.pk), "viewer")
    gone = weakref.ref(response)  # its data, a dict, is held by it alone
    del response
    assert gone() is None, "the response, and with it its data, outlived its sending"
