"""Log store: reading 64 KB of a subtask's log must not depend on how long the log is.

For each size (default 1 MB and 100 MB, MB = 2**20 bytes) one subtask of a real task
(started with verbs.task_start and claimed with services.attempt_claim, as a worker
would) gets its log written through services.log_append in --write-size pieces (default
4 KB), or, with --bulk, as LogChunk rows of exactly the layout log_append makes. Then,
with all logs built, the sizes take turns (so background load hits them alike) for:

* tail:   selectors.log_tail(subtask=...)                 (the last 64 KB)
* middle: selectors.log_read(subtask=..., offset=size // 2, limit=65536)

Printed: the median time of --reads reads, the largest tracemalloc peak of a read, and
the growth of the process's max RSS while reading, at each size.

Targets: median(largest size) / median(smallest size) <= 1.2 for tail and for middle,
and the memory of a read stays flat (peak at the largest size <= 1.2 x the smallest + 128 KB).

Usage, from the project root:
    .venv/bin/python benchmarks/log_tail.py [--database sqlite|postgres|URL]
        [--sizes 1MB,100MB] [--write-size 4096] [--reads 50] [--bulk]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import common

READ_BYTES = 64 * 1024
TARGET_RATIO = 1.2
LINE = "2026-01-01 00:00:00.000 [bench-host] step output {:010d}: the quick brown fox jumps\n"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64KB, 1MB, 100MB)")
    number, unit = match.groups()
    return int(float(number) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit])


def human(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def log_pieces(total: int, piece: int):
    """Worker-like output: numbered lines, cut into `piece`-byte writes."""
    line_len = len(LINE.format(0))
    lines_per_piece = piece // line_len + 2
    written, number, carry = 0, 0, b""
    while written < total:
        text = "".join(LINE.format(number + i) for i in range(lines_per_piece))
        number += lines_per_piece
        data = carry + text.encode()
        while len(data) >= piece and written < total:
            out, data = data[: min(piece, total - written)], data[piece:]
            written += len(out)
            yield out
        carry = data


@dataclass
class Log:
    size: int
    subtask_id: int = 0
    task_id: int = 0
    chunks: int = 0
    build_seconds: float = 0.0
    times: dict[str, list[float]] = field(default_factory=lambda: {"tail": [], "middle": []})
    peak: dict[str, int] = field(default_factory=lambda: {"tail": 0, "middle": 0})
    maxrss_growth_kb: int = 0


def build_log(log: Log, write_size: int, bulk: bool) -> None:
    from django.db import transaction

    from taskcenter.tasks import services, verbs
    from taskcenter.tasks.models import LogChunk, SubtaskInstance

    task = verbs.task_start(definition_name="Benchmark chain", parameters={"length": 1})
    subtask = task.subtasks.get()
    claimed = services.attempt_claim(subtask_id=subtask.pk, attempt=subtask.attempt,
                                     executor="log-benchmark")  # fmt: skip
    assert claimed is not None, "could not claim the benchmark subtask"
    log.task_id, log.subtask_id = task.pk, subtask.pk
    attempt = claimed.attempt
    started = time.perf_counter()
    if not bulk:
        for piece in log_pieces(log.size, write_size):
            services.log_append(subtask_id=subtask.pk, attempt=attempt, data=piece)
    else:
        # The layout _log_append makes for one write: one chunk (pieces <= LOG_CHUNK_MAX)
        # at the running offset, then log_size on the subtask.
        assert write_size <= services.LOG_CHUNK_MAX
        offset, batch = 0, []
        with transaction.atomic():
            for piece in log_pieces(log.size, write_size):
                batch.append(LogChunk(subtask_id=subtask.pk, attempt=attempt, offset=offset,
                                      length=len(piece), data=piece))  # fmt: skip
                offset += len(piece)
                if len(batch) == 1000:
                    LogChunk.objects.bulk_create(batch)
                    batch = []
            LogChunk.objects.bulk_create(batch)
            SubtaskInstance.objects.filter(pk=subtask.pk).update(log_size=offset)
    log.build_seconds = time.perf_counter() - started
    row = SubtaskInstance.objects.filter(pk=subtask.pk).values("log_size", "log_truncated").get()
    log.chunks = LogChunk.objects.filter(subtask_id=subtask.pk).count()
    if row["log_size"] != log.size or row["log_truncated"]:
        raise SystemExit(f"log of {human(log.size)} came out as {row}")


def read(log: Log, which: str):
    from taskcenter.tasks import selectors
    from taskcenter.tasks.models import SubtaskInstance

    subtask = SubtaskInstance.objects.get(pk=log.subtask_id)
    if which == "tail":
        return selectors.log_tail(subtask=subtask, max_bytes=READ_BYTES)
    return selectors.log_read(subtask=subtask, offset=log.size // 2, limit=READ_BYTES)


def check(log: Log, which: str, piece) -> None:
    want_offset = log.size - READ_BYTES if which == "tail" else log.size // 2
    want_bytes = min(READ_BYTES, log.size - want_offset)
    if len(piece.text) != want_bytes or piece.offset != want_offset:
        raise SystemExit(
            f"{which} read of the {human(log.size)} log returned {len(piece.text)} bytes "
            f"at {piece.offset}, expected {want_bytes} at {want_offset}"
        )


def measure_reads(logs: list[Log], reads: int) -> None:
    """Timed reads, sizes taking turns; then tracemalloc peaks; then the max RSS growth."""
    kinds = ("tail", "middle")
    for log in logs:  # warm-up and correctness
        for which in kinds:
            for _ in range(3):
                check(log, which, read(log, which))
    gc.collect()
    for _ in range(reads):
        for which in kinds:
            for log in logs:
                started = time.perf_counter()
                read(log, which)
                log.times[which].append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        for _ in range(5):
            for which in kinds:
                for log in logs:
                    gc.collect()
                    base, _ = tracemalloc.get_traced_memory()
                    tracemalloc.reset_peak()
                    read(log, which)
                    _, peak = tracemalloc.get_traced_memory()
                    log.peak[which] = max(log.peak[which], peak - base)
    finally:
        tracemalloc.stop()
    for log in sorted(logs, key=lambda item: item.size):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(10):
            read(log, "tail")
            read(log, "middle")
        log.maxrss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before


def report(logs: list[Log], bulk: bool, write_size: int) -> bool:
    how = "bulk LogChunk rows" if bulk else f"services.log_append, {write_size} B writes"
    rows = []
    for log in logs:
        mb = log.size / 2**20
        rows.append([
            human(log.size), str(log.chunks), f"{log.build_seconds:.1f}",
            f"{mb / log.build_seconds:.1f}" if log.build_seconds else "-",
            f"{1000 * common.median(log.times['tail']):.3f}",
            f"{1000 * common.median(log.times['middle']):.3f}",
            f"{log.peak['tail'] / 1024:.0f}", f"{log.peak['middle'] / 1024:.0f}",
            str(log.maxrss_growth_kb),
        ])  # fmt: skip
    print(f"\nBuilt with {how}; 64 KB reads, median of {len(logs[0].times['tail'])}.")
    common.print_table(
        ["log size", "chunks", "build s", "build MB/s", "tail ms", "middle ms",
         "tail peak KB", "middle peak KB", "maxrss growth KB"],
        rows,
    )  # fmt: skip
    small, large = logs[0], logs[-1]
    verdicts = []
    print(f"\nTargets ({human(large.size)} vs {human(small.size)}):")
    for which in ("tail", "middle"):
        ratio = common.median(large.times[which]) / common.median(small.times[which])
        verdicts.append(ratio <= TARGET_RATIO)
        print(f"  {which:<6} time ratio {ratio:5.2f}  (<= {TARGET_RATIO})  "
              f"{common.verdict(ratio <= TARGET_RATIO)}")  # fmt: skip
    for which in ("tail", "middle"):
        # Slack of two reads' worth: a read of a small log may touch fewer chunks.
        flat = large.peak[which] <= TARGET_RATIO * small.peak[which] + 2 * READ_BYTES
        verdicts.append(flat)
        print(f"  {which:<6} peak memory {small.peak[which] / 1024:.0f} KB -> "
              f"{large.peak[which] / 1024:.0f} KB  (flat)  {common.verdict(flat)}")  # fmt: skip
    print(f"\nOverall: {common.verdict(all(verdicts))}")
    return all(verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="sqlite (temp file, default) | postgres | a URL")
    parser.add_argument("--sizes", default="1MB,100MB", help="comma-separated, e.g. 1MB,100MB")
    parser.add_argument("--write-size", type=parse_size, default=4096, help="bytes per append")
    parser.add_argument("--reads", type=int, default=50, help="timed reads per size and kind")
    parser.add_argument("--bulk", action="store_true", help="write chunk rows in bulk")
    parser.add_argument("--keep-temp", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    if sizes[0] < READ_BYTES or len(sizes) < 2:
        parser.error(f"give at least two sizes of {human(READ_BYTES)} or more")

    common.exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="taskcenter-logbench-"))
    database = common.database_url(args.database, tmp)
    # Our own filesystem broker in tmp: task_start enqueues the (never run) attempt there.
    common.prepare_environment(tmp=tmp, database=database, broker=f"filesystem://{tmp / 'broker'}")
    os.environ["TASKCENTER_LOG_CAP_BYTES"] = str(sizes[-1] + 2**20)  # the cap is not measured
    logs = [Log(size) for size in sizes]
    try:
        common.setup_django(database)
        print(f"log_tail: database {common.describe_database(database)}, sizes "
              f"{', '.join(human(s) for s in sizes)}", flush=True)  # fmt: skip
        for log in logs:
            build_log(log, args.write_size, args.bulk)
            print(f"  built {human(log.size)}: {log.chunks} chunks in {log.build_seconds:.1f} s",
                  flush=True)  # fmt: skip
        measure_reads(logs, args.reads)
        ok = report(logs, args.bulk, args.write_size)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        cleanup(database, logs)
        if args.keep_temp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if args.strict and not ok else 0


def cleanup(database: str, logs: list[Log]) -> None:
    """Delete the benchmark's tasks from a database that outlives the run (PostgreSQL)."""
    ids = [log.task_id for log in logs if log.task_id]
    if database.startswith("sqlite") or not ids:
        return
    try:
        from taskcenter.tasks.models import TaskInstance

        TaskInstance.objects.filter(pk__in=ids).delete()
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
        print(f"(could not delete the benchmark tasks: {exc})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
