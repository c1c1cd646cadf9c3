"""The API's JSON is DRF's JSONRenderer's, byte for byte, however fast it is written (a
float in exponent notation aside: the same number, spelled 1e-7 where DRF writes 1e-07)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from taskcenter.api.renderers import FastJSONRenderer
from taskcenter.tasks.models import TaskStatus
from tests.api.conftest import check_envelope
from tests.factories import make_task

AWKWARD = {
    "text": 'naïve café ✓ 任务 "quoted" back\\slash\ttab',
    "separators": "line\u2028paragraph\u2029end",
    "aware": datetime(2026, 12, 7, 20, 9, 14, 123456, tzinfo=UTC),
    "naive": datetime(2026, 12, 7, 20, 9, 14, 999),
    "date": date(2026, 12, 7),
    "time": time(20, 9, 14, 500),
    "duration": timedelta(minutes=3, microseconds=5),
    "decimal": Decimal("12.50"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": gettext_lazy("Not found."),
    "enum": TaskStatus.FAILED,
    "numbers": [0, -1, 2**63 - 1, 1.5, 0.1, 123456.789, True, False, None],
    "tuple": (1, "two"),
    "set": {"only"},
    "int keys": {1: "one", 2: {3: [4]}},
    "empty": [{}, [], ""],
}


def test_awkward_values_are_written_as_drf_writes_them():
    assert FastJSONRenderer().render(AWKWARD) == JSONRenderer().render(AWKWARD)


def test_a_float_in_exponent_notation_is_the_same_number():
    data = [1e-7, 1e300, -2.5e-12, 1e16]
    fast = FastJSONRenderer().render(data)
    assert json.loads(fast) == json.loads(JSONRenderer().render(data)) == data


def test_an_integer_past_64_bits_is_written_as_drf_writes_it():
    data = {"big": 2**64 + 1, "negative": -(2**70)}
    assert (
        FastJSONRenderer().render(data)
        == JSONRenderer().render(data)
        == (b'{"big":18446744073709551617,"negative":-1180591620717411303424}')
    )


def test_nothing_is_no_body():
    assert FastJSONRenderer().render(None) == b""


def test_an_indent_asked_for_is_drfs_indented_json():
    rendered = FastJSONRenderer().render(AWKWARD, "application/json; indent=2")
    assert rendered == JSONRenderer().render(AWKWARD, "application/json; indent=2")
    assert rendered.startswith(b'{\n  "text"')


def test_a_task_detail_through_the_api_is_drfs_json(as_viewer):
    task = make_task(["SUCCESSFUL", "FAILED", "PENDING"], name="Détail ✓")
    response = as_viewer.get(f"/api/v2/tasks/instances/{task.pk}")
    body = check_envelope(response)
    assert [sub["status"] for sub in body["data"]["subtasks"]] == [
        "SUCCESSFUL",
        "FAILED",
        "PENDING",
    ]
    assert response.content == JSONRenderer().render(response.data)
    listed = as_viewer.get("/api/v2/tasks/instances?size=10")
    assert listed.content == JSONRenderer().render(listed.data)
