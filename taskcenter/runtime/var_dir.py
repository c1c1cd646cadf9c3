"""What this machine's processes share on disk, made when the first of them starts.

The var dir (the SQLite file, collected static files), the Prometheus multiprocess folder,
the filesystem broker's folders, and on a laptop (no SECRET_KEY in the environment) the
secret key generated once. The settings only name these; making them here, at start,
keeps reading the settings free of writes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings

_BROKER_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def folders() -> list[Path]:
    """Every folder the processes expect to exist."""
    wanted = [Path(settings.VAR_DIR), Path(settings.STATIC_ROOT)]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        wanted.append(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    broker = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    wanted.extend(Path(broker[key]) for key in _BROKER_FOLDERS if broker.get(key))
    return wanted


def laptop_secret_key(key_file: Path) -> str:
    """The key in `key_file`, generated first if there is none.

    Written to a temporary file and linked into place, which fails if the file already
    exists: two processes starting at once both end up reading the one key that won.
    """
    if not key_file.exists():
        draft = key_file.with_name(f".{key_file.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(50))
        draft.chmod(0o600)
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text().strip()


def prepare() -> None:
    for folder in folders():
        folder.mkdir(parents=True, exist_ok=True)
    if settings.TASKCENTER_SECRET_KEY_FILE is not None:
        settings.SECRET_KEY = laptop_secret_key(Path(settings.TASKCENTER_SECRET_KEY_FILE))
