"""Plots of the benchmark figures for docs/benchmarks.md.

Reads a JSON of figures (default docs/benchmarks/figures.json: each benchmark's latest
figures, copied from its printed output) and writes one PNG per benchmark into
docs/benchmarks/. A benchmark missing from the JSON is skipped.

Usage, from the project root (matplotlib is the docs' own need, not the project's:
`.venv/bin/pip install matplotlib`):
    .venv/bin/python benchmarks/plot.py [--figures docs/benchmarks/figures.json]
        [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BLUE, ORANGE, GREY, RED = "#4C72B0", "#DD8452", "#8C8C8C", "#C44E52"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _target(ax, value: float | None, label: str, *, horizontal: bool = False) -> None:
    if value is None:
        return
    draw = ax.axvline if horizontal else ax.axhline
    draw(value, color=RED, linestyle="--", linewidth=1, label=label)


def _paired_bars(ax, labels, first, second, names, *, horizontal: bool = True) -> None:
    """Two bars per label (first in blue, second in orange), labelled with their values."""
    positions = range(len(labels))
    height = 0.38
    draw = ax.barh if horizontal else ax.bar
    for offset, values, name, colour in (
        (-height / 2, first, names[0], BLUE),
        (height / 2, second, names[1], ORANGE),
    ):
        bars = draw([p + offset for p in positions], values, height, label=name, color=colour)
        ax.bar_label(bars, fmt="%g", padding=2, fontsize=8)
    # A margin of about a bar's width at either end, however many bars there are.
    ax.margins(x=0.12, y=min(0.12, 1 / len(labels))) if horizontal else ax.margins(y=0.12)
    if horizontal:
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
    else:
        ax.set_xticks(list(positions), labels)


def _legend_below(ax) -> None:
    """The legend under the axes, where it hides no bar and no label."""
    handles, labels = ax.get_legend_handles_labels()
    # Half an inch under the axes (below the x label), however tall the axes are.
    axes_inches = ax.get_position().height * ax.figure.get_figheight()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.5 / axes_inches),
        ncol=len(labels),
        fontsize=8,
        frameon=False,
    )


def _save(fig, out: Path, name: str) -> None:
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def _finish_single(fig, ax, title: str, out: Path, name: str) -> None:
    """A one-plot figure: its run in the title, the legend below, saved."""
    ax.set_title(title, fontsize=10)
    _legend_below(ax)
    _save(fig, out, name)


def engine_overhead(figures: dict, out: Path) -> None:
    """Wall times of the latest run, and the ratio before and after the latest change when
    the rows carry the earlier run (before_plain_s, before_taskcenter_s)."""
    rows = figures["rows"]
    labels = [f"{r['setup']}\n{r['shape']}" for r in rows]
    ratios = [_median(r["taskcenter_s"]) / _median(r["plain_s"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    _paired_bars(
        left,
        labels,
        [round(_median(r["plain_s"]), 2) for r in rows],
        [round(_median(r["taskcenter_s"]), 2) for r in rows],
        ("plain Celery", "taskcenter"),
    )
    left.set_xlabel("wall time, s (median of the runs)")
    left.set_title("Same DAG: plain Celery canvas vs taskcenter")
    _legend_below(left)
    if all("before_taskcenter_s" in r for r in rows):
        before = [_median(r["before_taskcenter_s"]) / _median(r["before_plain_s"]) for r in rows]
        _paired_bars(
            right,
            labels,
            [round(value, 2) for value in before],
            [round(value, 2) for value in ratios],
            ("before", "after"),
        )
    else:
        bars = right.barh(range(len(rows)), [round(r, 2) for r in ratios], color=GREY)
        right.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
    _target(right, figures.get("target_ratio"), f"target {figures.get('target_ratio')}x",
            horizontal=True)  # fmt: skip
    _target(right, figures.get("chain_target_ratio"), "chain target 1.0x", horizontal=True)
    right.lines[-1].set_color(ORANGE)
    right.set_xlabel("taskcenter / plain Celery")
    right.set_title("Overhead ratio")
    _legend_below(right)
    _save(fig, out, "engine_overhead")


def engine_scale_out(figures: dict, out: Path) -> None:
    """A wide fan-out on 1, 2, 4 worker processes: subtasks per second, and the machine's
    CPU per subtask, for both systems."""
    rows = figures["rows"]
    workers = [r["workers"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for key, name, colour in (
        ("plain", "plain Celery", BLUE),
        ("taskcenter", "taskcenter", ORANGE),
    ):
        left.plot(workers, [figures["subtasks"] / r[f"{key}_s"] for r in rows], "o-",
                  color=colour, label=name)  # fmt: skip
        right.plot(workers, [r[f"{key}_cpu_ms"] for r in rows], "o-", color=colour, label=name)
    left.set_xticks(workers)
    left.set_xlabel("worker processes (one node each)")
    left.set_ylabel("subtasks per second")
    left.set_ylim(bottom=0)
    left.set_title(f"1 -> {figures['subtasks'] - 2:,} -> 1 fan-out")
    left.legend()
    right.set_xticks(workers)
    right.set_xlabel("worker processes (one node each)")
    right.set_ylabel("machine CPU ms per subtask")
    right.set_ylim(bottom=0)
    right.set_title("Machine CPU per subtask (database, broker included)")
    right.legend()
    _save(fig, out, "engine_scale_out")


def log_tail(figures: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for database, colour in (("SQLite", BLUE), ("PostgreSQL", ORANGE)):
        rows = [r for r in figures["rows"] if r["database"] == database]
        sizes = [r["log_mb"] for r in rows]
        ax.plot(sizes, [r["tail_ms"] for r in rows], "o-", color=colour, label=f"{database}, tail")
        ax.plot(
            sizes, [r["middle_ms"] for r in rows], "s--", color=colour, label=f"{database}, middle"
        )
    ax.set_xscale("log")
    ax.set_xticks([1, 100], ["1 MB", "100 MB"])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("log size")
    ax.set_ylabel("64 KB read, ms (median of 50)")
    ax.set_title("Log reads stay flat as the log grows")
    ax.legend()
    _save(fig, out, "log_tail")


def api_list(figures: dict, out: Path) -> None:
    """p50 and p95 of each request, or p95 before and after the latest change when the
    rows carry the earlier run's (before_p95_ms); bare SQL as black marks."""
    rows = figures["rows"]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 2.5))
    if all("before_p95_ms" in r for r in rows):
        values = ([r["before_p95_ms"] for r in rows], [r["p95_ms"] for r in rows])
        names = ("p95 before", "p95 after")
    else:
        values = ([r["p50_ms"] for r in rows], [r["p95_ms"] for r in rows])
        names = ("p50", "p95")
    _paired_bars(ax, [r["request"] for r in rows], *values, names)
    ax.scatter(
        [r["sql_ms"] for r in rows],
        range(len(rows)),
        color="black",
        marker="|",
        s=200,
        label="bare SQL p50 (after)",
        zorder=3,
    )
    _target(ax, figures.get("target_p95_ms"), "p95 target (size 10)", horizontal=True)
    ax.set_xscale("log")
    ax.set_xlabel("ms through the whole API stack (log scale)")
    ax.set_title("API list and detail at 1,000,001 tasks (PostgreSQL)")
    _legend_below(ax)
    _save(fig, out, "api_list")


def dashboard(figures: dict, out: Path) -> None:
    rows = figures["rows"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [2, 1]})
    _paired_bars(
        left,
        [r["measure"] for r in rows],
        [r["sqlite"][1] for r in rows],
        [r["postgres"][1] for r in rows],
        ("SQLite p95", "PostgreSQL p95"),
    )
    _target(left, 300, "detail target 300 ms", horizontal=True)
    _target(left, 100, "list target 100 ms", horizontal=True)
    left.lines[-1].set_color(ORANGE)
    left.set_xlabel("server render, ms (p95)")
    left.set_title("Dashboard pages")
    _legend_below(left)
    browser = figures["browser_ms"]
    _paired_bars(
        right,
        [r["measure"].replace(", ", "\n") for r in browser],
        [r["sqlite"] for r in browser],
        [r["postgres"] for r in browser],
        ("SQLite", "PostgreSQL"),
        horizontal=False,
    )
    _target(right, 1000, "target 1 s")
    right.set_ylabel("Chromium: navigation to clickable node, ms")
    right.set_title("Browser")
    _legend_below(right)
    _save(fig, out, "dashboard")


def auth_concurrency(figures: dict, out: Path) -> None:
    kinds = ["session", "Basic"]
    fig, ax = plt.subplots(figsize=(7, 4))
    _paired_bars(
        ax,
        kinds,
        [round(figures[k]["p50_ms"]) for k in kinds],
        [round(figures[k]["p95_ms"]) for k in kinds],
        ("p50", "p95"),
        horizontal=False,
    )
    _target(ax, 2 * figures["session"]["p95_ms"], "target: 2x session p95")
    ax.set_yscale("log")  # a miss can be 100 times the session's time
    ax.set_ylabel("ms per call, 20 at once (log scale)")
    title = (
        f"20 concurrent API calls: Basic vs session (ratio {figures['ratio_p95']:.2f}, "
        f"load {figures['load_average']:g})"
    )
    _finish_single(fig, ax, title, out, "auth_concurrency")


def load_locust(figures: dict, out: Path) -> None:
    """p95 per kind of request, before and after when the figures carry a "before" run."""
    names = [k for k, v in figures.items() if isinstance(v, dict) and "p95_ms" in v and k != "all"]
    before = figures.get("before")
    fig, ax = plt.subplots(figsize=(9, 5.2))
    if before:
        names = [n for n in names if n in before]
        _paired_bars(
            ax,
            [f"{n} ({before[n]['requests']} / {figures[n]['requests']})" for n in names],
            [round(before[n]["p95_ms"]) for n in names],
            [round(figures[n]["p95_ms"]) for n in names],
            ("p95 before", "p95 after"),
        )
        ax.set_xlabel("ms (requests before / after in brackets)")
    else:
        _paired_bars(
            ax,
            [f"{n} ({figures[n]['requests']})" for n in names],
            [round(figures[n]["p50_ms"]) for n in names],
            [round(figures[n]["p95_ms"]) for n in names],
            ("p50", "p95"),
        )
        ax.set_xlabel("ms (number of requests in brackets)")
    _target(ax, 300, "p95 target 300 ms", horizontal=True)
    total = figures["all"]
    title = (
        f"locust: {figures.get('users', '50 operators + 200 log tails')}, "
        f"{figures['minutes']:g} min; errors {total['errors']}/{total['requests']}, "
        f"load {figures['load_average']:g}"
    )
    _finish_single(fig, ax, title, out, "load_locust")


def scheduler_throughput(figures: dict, out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    fire = figures["fire"]
    names = ("taskcenter", figures["peer"])
    _paired_bars(
        left,
        [r["measure"] for r in fire],
        [r["taskcenter"] for r in fire],
        [r["peer"] for r in fire],
        names,
    )
    _target(left, figures.get("aim_all_s"), "aim: all 1,000 in 2 s", horizontal=True)
    left.set_xlabel("seconds, 1,000 crontabs due at one minute")
    left.set_title("A burst of fires")
    _legend_below(left)
    idle = figures["idle"]
    _paired_bars(
        right,
        [f"{r['plans']:,} plans" for r in idle],
        [r["taskcenter"] for r in idle],
        [r["peer"] for r in idle],
        names,
        horizontal=False,
    )
    right.set_ylabel("scheduler CPU s per minute, idle")
    right.set_title("Idle cost")
    _legend_below(right)
    _save(fig, out, "scheduler_throughput")


PLOTS = {
    "engine_overhead": engine_overhead,
    "engine_scale_out": engine_scale_out,
    "log_tail": log_tail,
    "api_list": api_list,
    "dashboard": dashboard,
    "auth_concurrency": auth_concurrency,
    "load_locust": load_locust,
    "scheduler_throughput": scheduler_throughput,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, default=ROOT / "docs/benchmarks/figures.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks")
    args = parser.parse_args()
    figures = json.loads(args.figures.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, plot in PLOTS.items():
        if name in figures:
            plot(figures[name], args.out)


if __name__ == "__main__":
    main()
