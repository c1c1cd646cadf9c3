"""The append-only log store: offsets, tails, attempts and the size cap."""

import zoneinfo
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import LogChunk, SubtaskInstance
from taskcenter.tasks.services.logs import format_log_line
from taskcenter.tasks.sql import LOG_CHUNK_MAX


@pytest.fixture
def subtask(db):
    task = verbs.task_start(definition_name="Reinstall OCP agent")
    return selectors.task_subtasks(task=task)[0]


def reload(subtask):
    return SubtaskInstance.objects.get(pk=subtask.pk)


def test_reading_from_an_offset_returns_the_rest_and_the_next_offset(subtask):
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"line one\n")
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"line two\n")
    whole = selectors.log_read(subtask=reload(subtask))
    assert (whole.text, whole.next_offset, whole.size) == ("line one\nline two\n", 18, 18)
    rest = selectors.log_read(subtask=reload(subtask), offset=9)
    assert (rest.text, rest.offset, rest.next_offset) == ("line two\n", 9, 18)
    nothing_new = selectors.log_read(subtask=reload(subtask), offset=18)
    assert (nothing_new.text, nothing_new.next_offset) == ("", 18)
    middle = selectors.log_read(subtask=reload(subtask), offset=5, limit=6)
    assert middle.text == "one\nli"


def test_large_writes_are_split_into_bounded_chunks_and_tail_reads_few(subtask):
    payload = b"".join(f"{i:07d}\n".encode() for i in range(100_000))  # 800 KB
    services.log_append(subtask_id=subtask.pk, attempt=1, data=payload)
    assert LogChunk.objects.filter(subtask_id=subtask.pk).count() == -(
        -len(payload) // LOG_CHUNK_MAX
    )
    current = reload(subtask)
    with CaptureQueriesContext(connection) as queries:
        tail = selectors.log_tail(subtask=current, max_bytes=16)
    assert tail.text == "0099998\n0099999\n"
    assert len(queries) == 1
    piece = selectors.log_read(subtask=reload(subtask), offset=400_000, limit=16)
    assert piece.text == payload[400_000:400_016].decode()


def test_log_is_capped_with_a_visible_marker(subtask, settings):
    settings.TASKCENTER_LOG_CAP_BYTES = 1024
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"x" * 1000)
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"y" * 1000)
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"z" * 1000)
    log = selectors.log_read(subtask=reload(subtask))
    assert log.truncated
    assert log.text.startswith("x" * 1000 + "y" * 24)
    assert "[log truncated: reached the limit of 1024 bytes" in log.text
    assert "z" not in log.text


def test_log_is_split_by_attempt_for_downloads(subtask):
    services.log_append(subtask_id=subtask.pk, attempt=1, data=b"first run\n")
    services.log_append(subtask_id=subtask.pk, attempt=2, data=b"second run\n")
    assert selectors.log_attempts(subtask=reload(subtask)) == [
        (1, b"first run\n"),
        (2, b"second run\n"),
    ]


def test_a_log_line_is_stamped_in_the_servers_time_zone_whoever_writes_it(settings):
    """Lines written while a user's zone is active (a request) read like the worker's."""
    settings.TIME_ZONE = "Asia/Shanghai"  # clears Django's cached default zone
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        line = format_log_line("retry requested").decode()
    local = timezone.localtime(timezone=zoneinfo.ZoneInfo("Asia/Shanghai"))

    stamp, rest = line[:23], line[23:]
    written = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
    assert abs((local.replace(tzinfo=None) - written).total_seconds()) < 5
    assert rest.endswith(" retry requested\n")
