"""The schedule tests' controllable clock, for plans whose runs are pruned."""

from tests.schedules.conftest import clock  # noqa: F401
