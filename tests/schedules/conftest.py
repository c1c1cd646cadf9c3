"""Fixtures for the schedule tests: a controllable clock, and the API clients and broker
stand-in of the API tests (plans are built by `tests.factories.make_plan`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

# The API tests' fixtures: personas by Basic auth, sends recorded not made.
from tests.api.conftest import (  # noqa: F401
    as_admin,
    as_operator,
    as_viewer,
    sends_recorded,
)
from tests.factories import T0


class Clock:
    """The scheduler's `now`, moved by the test."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
