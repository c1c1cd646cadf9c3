"""Settings come from the environment and refuse malformed values."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from taskcenter.core.env import env_bool, env_float, env_int, env_list


def test_booleans_are_strict(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be one of"):
        env_bool("X_FLAG", False)


def test_numbers_are_strict_and_bounded(monkeypatch):
    monkeypatch.setenv("X_NUM", "1O")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("X_NUM", 1, 0)
    monkeypatch.setenv("X_NUM", "0.5")
    assert env_float("X_NUM", 1.0) == 0.5


def test_lists_and_defaults(monkeypatch):
    monkeypatch.delenv("X_LIST", raising=False)
    assert env_list("X_LIST", ["a"]) == ["a"]
    monkeypatch.setenv("X_LIST", " a.example, b.example ,")
    assert env_list("X_LIST", []) == ["a.example", "b.example"]


def test_bad_database_url_stops_the_process(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={
            "DATABASE_URL": "nosuchdb://x",
            "TASKCENTER_VAR_DIR": str(tmp_path),
            "PATH": "/usr/bin",
        },
        capture_output=True,
        text=True,
        cwd=__file__.rsplit("/tests/", 1)[0],
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
