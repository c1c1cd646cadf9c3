"""What a prune removes, written first to gzip-compressed JSON lines.

One file per kind and pass, `<kind>-<UTC time>.jsonl.gz` in TASKCENTER_RETENTION_EXPORT_DIR,
one JSON object per pruned row (a task with its subtasks and their logs). Each batch is
written and flushed before its rows are deleted, so a row that is gone has been exported;
a pass cut short between the two exports a batch that the next pass exports again.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder


class Exporter:
    def __init__(self, folder: Path, started: datetime):
        self.folder = folder
        self.stamp = started.strftime("%Y%m%dT%H%M%SZ")
        self.files: dict[str, Path] = {}
        self._open: dict[str, IO[str]] = {}

    def write(self, kind: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        handle = self._open.get(kind)
        if handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{kind}-{self.stamp}.jsonl.gz"
            handle = gzip.open(path, "at", encoding="utf-8")
            self.files[kind], self._open[kind] = path, handle
        for row in rows:
            handle.write(json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n")
        handle.flush()

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
