"""Settings come from the environment and refuse malformed values; reading them writes
nothing, and the first process to start makes the var dir and a laptop's secret key."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from taskcenter.core.env import load_environment

ROOT = Path(__file__).resolve().parents[2]


def test_booleans_are_strict(monkeypatch):
    monkeypatch.setenv("DEBUG", " yes ")
    assert load_environment().DEBUG is True
    monkeypatch.setenv("DEBUG", "ture")
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be one of"):
        load_environment()


def test_numbers_are_strict_and_bounded(monkeypatch):
    monkeypatch.setenv("TASKCENTER_LOG_CAP_BYTES", "1O")
    with pytest.raises(ImproperlyConfigured, match="TASKCENTER_LOG_CAP_BYTES must be an integer"):
        load_environment()
    monkeypatch.delenv("TASKCENTER_LOG_CAP_BYTES")
    monkeypatch.setenv("DB_CONN_MAX_AGE", "-1")
    with pytest.raises(ImproperlyConfigured, match="DB_CONN_MAX_AGE must be at least 0"):
        load_environment()
    monkeypatch.delenv("DB_CONN_MAX_AGE")
    monkeypatch.setenv("TASKCENTER_HEARTBEAT_INTERVAL", "0.5")
    assert load_environment().TASKCENTER_HEARTBEAT_INTERVAL == 0.5
    monkeypatch.setenv("TASKCENTER_HEARTBEAT_INTERVAL", "nan")
    with pytest.raises(ImproperlyConfigured, match="TASKCENTER_HEARTBEAT_INTERVAL must be a"):
        load_environment()


def test_lists_and_defaults(monkeypatch):
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    assert load_environment().ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]", "testserver"]
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example, b.example ,")
    assert load_environment().ALLOWED_HOSTS == ["a.example", "b.example"]


def test_an_empty_value_takes_the_default(monkeypatch):
    monkeypatch.setenv("DEBUG", "")
    monkeypatch.setenv("SESSION_COOKIE_AGE", "  ")
    environment = load_environment()
    assert environment.DEBUG is False
    assert environment.SESSION_COOKIE_AGE == 8 * 3600


def test_every_bad_value_is_named_at_once(monkeypatch):
    monkeypatch.setenv("DEBUG", "ture")
    monkeypatch.setenv("SESSION_COOKIE_AGE", "10")
    with pytest.raises(ImproperlyConfigured) as refused:
        load_environment()
    assert "DEBUG must be one of" in str(refused.value)
    assert "SESSION_COOKIE_AGE must be at least 60, got '10'" in str(refused.value)


def _fresh_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """A process with only the var dir and the embedded defaults, as on a fresh clone."""
    return {
        "TASKCENTER_VAR_DIR": str(var_dir),
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        **extra,
    }


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_bad_database_url_stops_the_process(tmp_path):
    result = _python(_fresh_env(tmp_path, DATABASE_URL="nosuchdb://x"), "manage.py", "check")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_reading_the_settings_writes_nothing(tmp_path):
    var_dir = tmp_path / "var"
    read = _python(_fresh_env(var_dir), "-c", "import taskcenter.settings as s; print(s.VAR_DIR)")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == str(var_dir)
    assert not var_dir.exists()


def test_the_first_process_makes_the_var_dir_and_a_secret_key_every_later_one_reads(tmp_path):
    var_dir = tmp_path / "var"
    show_key = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _python(_fresh_env(var_dir), "manage.py", "shell", "-v", "0", "-c", show_key)
    assert first.returncode == 0, first.stderr
    key_file = var_dir / "secret_key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 50 and first.stdout.strip() == key
    for folder in ("metrics", "staticfiles", "broker/queue", "broker/processed", "broker/control"):
        assert (var_dir / folder).is_dir(), folder
    again = _python(_fresh_env(var_dir), "manage.py", "shell", "-v", "0", "-c", show_key)
    assert again.stdout.strip() == key
    assert [p.name for p in var_dir.iterdir() if p.name.startswith(".")] == []


def test_a_secret_key_from_the_environment_leaves_no_key_file(tmp_path):
    var_dir = tmp_path / "var"
    env = _fresh_env(var_dir, SECRET_KEY="from-the-environment-" + "x" * 40)
    show_key = "from django.conf import settings; print(settings.SECRET_KEY)"
    shown = _python(env, "manage.py", "shell", "-v", "0", "-c", show_key)
    assert shown.stdout.strip() == env["SECRET_KEY"], shown.stderr
    assert not (var_dir / "secret_key").exists()


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch):
    """The variables these tests set start unset, whatever the test run exported."""
    for name in ("DEBUG", "ALLOWED_HOSTS", "SESSION_COOKIE_AGE", "DB_CONN_MAX_AGE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("TASKCENTER_LOG_CAP_BYTES", "TASKCENTER_HEARTBEAT_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
