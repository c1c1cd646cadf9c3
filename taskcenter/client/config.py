"""The command's profiles: server URL and credentials, stored in the user's config
directory ($TASKCENTER_CONFIG, else $XDG_CONFIG_HOME/taskcenter/config.json, else
~/.config/taskcenter/config.json) with 0600 permissions, one entry per named profile.
The environment (TASKCENTER_URL, TASKCENTER_ACCESS_KEY_ID, TASKCENTER_ACCESS_KEY_SECRET)
is put over the profile's values.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_PROFILE = "default"


class ConfigError(Exception):
    """The config file cannot be read."""


@dataclass
class Profile:
    url: str = ""
    access_key_id: str = ""
    access_key_secret: str = ""
    username: str = ""
    password: str = ""


def config_path() -> Path:
    explicit = os.environ.get("TASKCENTER_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "taskcenter" / "config.json"


def _read() -> dict:
    path = config_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as error:
        raise ConfigError(f"Cannot read the profiles in {path}: {error}") from None


def load(name: str = DEFAULT_PROFILE) -> Profile:
    stored = _read().get("profiles", {}).get(name, {})
    profile = Profile(**{k: v for k, v in stored.items() if k in Profile.__dataclass_fields__})
    for field, variable in (
        ("url", "TASKCENTER_URL"),
        ("access_key_id", "TASKCENTER_ACCESS_KEY_ID"),
        ("access_key_secret", "TASKCENTER_ACCESS_KEY_SECRET"),
        ("username", "TASKCENTER_USERNAME"),
        ("password", "TASKCENTER_PASSWORD"),
    ):
        if os.environ.get(variable):
            setattr(profile, field, os.environ[variable])
    return profile


def save(name: str, profile: Profile) -> Path:
    """Store the profile, the file created (or rewritten) readable by its owner only."""
    data = _read()
    data.setdefault("profiles", {})[name] = {k: v for k, v in asdict(profile).items() if v}
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path
