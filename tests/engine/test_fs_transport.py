"""The zero-configuration broker writes each message atomically."""

import json
import os

from kombu import Connection

from taskcenter.engine.fs_transport import Transport


def test_messages_appear_whole_and_leave_no_temporary_files(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
    }
    (tmp_path / "control").mkdir()
    with Connection(transport=Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        for n in range(200):
            queue.put({"n": n})
        names = os.listdir(tmp_path)
        messages = [name for name in names if name.endswith(".q.msg")]
        assert len(messages) == 200
        assert not [name for name in names if name.endswith(".tmp")]
        for name in messages:
            assert json.loads((tmp_path / name).read_bytes())["body"]
        received = [queue.get(timeout=1).payload["n"] for _ in range(200)]
        assert sorted(received) == list(range(200))
        queue.close()


def test_default_settings_use_the_atomic_transport(settings):
    from taskcenter.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        return  # the suite is running on Redis or RabbitMQ
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)
