"""The log panel's views: one attempt's log, its poll, its download, and colours."""

from __future__ import annotations

import re

from django.urls import reverse

from taskcenter.demo.history import attempts_not_sent
from taskcenter.tasks import services, verbs
from taskcenter.tasks.models import SubtaskInstance
from tests.conftest import client_for
from tests.factories import drive, start

HX = {"HTTP_HX_REQUEST": "true"}


def retried_copy(operator):
    """Migrate tenant whose copy step failed once, then was retried and is running."""
    task = drive(start(creator=operator), fail={"Copy tenant data"})
    copy = task.subtasks.get(name="Copy tenant data")
    verbs.subtask_retry(task_id=task.pk, subtask_id=copy.pk, actor=operator)
    task = drive(task, stop_at={"Copy tenant data"})
    copy = SubtaskInstance.objects.get(pk=copy.pk)
    services.log_append(subtask_id=copy.pk, attempt=copy.attempt, data=b"second run line\n")
    return task, SubtaskInstance.objects.get(pk=copy.pk)


def test_the_page_shows_the_latest_attempt_and_another_one_when_asked(db, operator, viewer):
    task, copy = retried_copy(operator)
    assert copy.attempt == 2
    client = client_for(viewer)
    latest = client.get(f"/tasks/{task.pk}/?view=log&subtask={copy.pk}").content.decode()
    assert "second run line" in latest and "failed on purpose" not in latest
    assert (
        '<option value="2" selected id="log-attempt-option-2">' in latest
        and "Download attempt 2" in latest
    )
    first = client.get(f"/tasks/{task.pk}/?view=log&subtask={copy.pk}&attempt=1").content.decode()
    assert "second run line" not in first
    assert (
        '<option value="1" selected id="log-attempt-option-1">' in first
        and "data-attempt-pinned" in first
    )
    # Attempt 1 has ended: its log does not poll.
    assert 'id="log-poller" hidden></div>' in first


def test_an_attempt_that_does_not_exist_is_a_400_naming_it(db, operator):
    task, copy = retried_copy(operator)
    client = client_for(operator)
    response = client.get(f"/tasks/{task.pk}/?view=log&subtask={copy.pk}&attempt=7")
    assert response.status_code == 400
    assert "attempt" in response.content.decode()
    for bad in ("x", "-1", "3", "99999999999999"):
        url = reverse("dashboard:subtask_log", args=[task.pk, copy.pk])
        assert client.get(f"{url}?offset=0&attempt={bad}", **HX).status_code == 400
    download = reverse("dashboard:subtask_log_download", args=[task.pk, copy.pk])
    assert client.get(f"{download}?attempt=3").status_code == 400
    poll = reverse("dashboard:subtask_log", args=[task.pk, copy.pk])
    assert client.get(f"{poll}?offset=0&sgr=31m", **HX).status_code == 400


def test_the_poll_of_an_attempt_reads_only_its_lines(db, operator):
    task, copy = retried_copy(operator)
    client = client_for(operator)
    url = reverse("dashboard:subtask_log", args=[task.pk, copy.pk])
    body = client.get(f"{url}?offset=0&attempt=2", **HX).content.decode()
    assert "second run line" in body and "failed on purpose" not in body
    assert f"offset={copy.log_size}&amp;attempt=2" in body
    old = client.get(f"{url}?offset=0&attempt=1", **HX)
    assert old.status_code == 286  # that attempt has ended: its poll stops
    assert "failed on purpose" in old.content.decode()


def test_the_download_follows_the_attempt(db, operator):
    task, copy = retried_copy(operator)
    url = reverse("dashboard:subtask_log_download", args=[task.pk, copy.pk])
    response = client_for(operator).get(f"{url}?attempt=1")
    assert response["Content-Disposition"].endswith('-attempt-1.log"')
    first = b"".join(response.streaming_content)
    expected = b"".join(bytes(c.data) for c in copy.chunks.filter(attempt=1).order_by("offset"))
    assert first == expected and b"failed on purpose" in first
    whole = b"".join(client_for(operator).get(url).streaming_content)
    assert whole.startswith(first) and whole.endswith(b"second run line\n")


def test_a_colour_split_across_polls_is_drawn_whole(db, operator):
    task, copy = retried_copy(operator)
    client = client_for(operator)
    url = reverse("dashboard:subtask_log", args=[task.pk, copy.pk])
    start_at = copy.log_size
    services.log_append(subtask_id=copy.pk, attempt=2, data=b"\x1b[32mgreen\n\x1b[1")
    body = client.get(f"{url}?offset={start_at}&attempt=2", **HX).content.decode()
    assert '<span class="sgr-32">green\n</span>' in body and "\\x1b" not in body
    held = start_at + len(b"\x1b[32mgreen\n")  # the unfinished sequence waits for its end
    assert f"offset={held}&amp;attempt=2&amp;sgr=32" in body
    services.log_append(subtask_id=copy.pk, attempt=2, data=b"mbold green\n")
    body = client.get(f"{url}?offset={held}&attempt=2&sgr=32", **HX).content.decode()
    assert '<span class="sgr-32 sgr-bold">bold green\n</span>' in body


def test_the_attempt_picker_learns_when_a_retry_first_writes(db, operator, viewer):
    # Opened while the retry has written nothing, the picker reads "no output"; the poll
    # that brings the retry's first lines brings its label with the time it began too.
    task = drive(start(creator=operator), fail={"Copy tenant data"})
    copy = task.subtasks.get(name="Copy tenant data")
    with attempts_not_sent():  # queued: attempt 2 has not begun
        verbs.subtask_retry(task_id=task.pk, subtask_id=copy.pk, actor=operator)
    assert SubtaskInstance.objects.get(pk=copy.pk).attempt == 2
    client = client_for(viewer)
    page = client.get(f"/tasks/{task.pk}/?view=log&subtask={copy.pk}").content.decode()
    assert "Attempt 2 · no output · latest</option>" in page
    poll = (
        re.search(r'id="log-poller" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    )
    assert "quiet=2" in poll

    services.log_append(subtask_id=copy.pk, attempt=2, data=b"second run line\n")
    body = client.get(poll, **HX).content.decode()
    assert "second run line" in body
    option = re.search(
        r'<option value="2" selected id="log-attempt-option-2" hx-swap-oob="true">([^<]*)</option>',
        body,
    )
    assert option and re.fullmatch(r"Attempt 2 · \d\d:\d\d:\d\d · latest", option.group(1)), body
    following = re.search(r'id="log-poller" hidden hx-swap-oob="true" hx-get="([^"]+)"', body)
    assert following and "quiet=" not in following.group(1)
    # Later output changes nothing in the picker.
    services.log_append(subtask_id=copy.pk, attempt=2, data=b"third line\n")
    later = client.get(following.group(1).replace("&amp;", "&"), **HX).content.decode()
    assert "third line" in later and "<option" not in later
