"""The two paths that end an attempt (taskcenter.tasks.services.finish), as a fixture.

Tests of the state machine take `finish_path` to run over each path this database has:
on PostgreSQL the one-round-trip path (for the outcomes it handles) and the general path
alone; on SQLite only the general path exists.
"""

import pytest
from django.db import connection

FINISH_PATHS = ["one-trip", "general"] if connection.vendor == "postgresql" else ["general"]


@pytest.fixture(params=FINISH_PATHS)
def finish_path(request, monkeypatch) -> str:
    from taskcenter.tasks.services import finish

    monkeypatch.setattr(finish, "ONE_TRIP_ON_POSTGRESQL", request.param == "one-trip")
    return request.param
