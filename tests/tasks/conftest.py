import pytest

from tests.finish_paths import finish_path  # noqa: F401  (the state machine's two finish paths)


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, int]]:
    """The (subtask id, attempt) messages that committed transactions hand to the broker."""
    from taskcenter.engine import dispatch

    messages: list[tuple[int, int]] = []
    monkeypatch.setattr(dispatch, "_send_all", messages.extend)
    return messages
