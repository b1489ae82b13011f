"""The lab's pictures (matplotlib, through ``gossip.canvas``, only when an experiment
draws): coverage over time, latency CDF and msgs/op bars, one series per strategy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gossip.canvas import heading, pyplot, save
from gossip.errors import GossipError
from gossip.experiment import Result


def prepare(directory: Path) -> None:
    """Make the directory the pictures go to, or a GossipError saying why it cannot be:
    before the experiment runs, so its results are not lost to a wrong ``-o`` at the end."""
    if directory.exists() and not directory.is_dir():
        raise GossipError(f"{directory} is not a directory: give -o a directory for the pictures")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GossipError(
            f"cannot make {directory} for the pictures ({exc.strerror}): give -o another directory"
        ) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise GossipError(f"cannot write in {directory}: give -o a directory you can write to")


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    figure, axes = pyplot().subplots(figsize=(7, 4.2), dpi=100)
    axes.set_title(heading(title))
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    return save(pyplot(), figure, path)


def coverage(results: list[Result], path: Path, title: str) -> Path:
    """Fraction of the live nodes holding a message against ms after it was sent, averaged
    over the messages: how fast each strategy spreads."""
    figure, axes = _axes(f"{title}: coverage over time", "ms after sending", "fraction of nodes")
    end = max((t for r in results for s in r.spreads for t in s), default=1.0)
    steps = [end * i / 400 for i in range(401)]
    for result in results:
        if not result.spreads or not result.live:
            continue
        curve = [
            sum(sum(1 for t in s if t <= x) for s in result.spreads)
            / (len(result.spreads) * result.live)
            for x in steps
        ]
        axes.plot(steps, curve, label=result.strategy)
    axes.set_ylim(0, 1.02)
    axes.legend()
    return _save(figure, path)


def latency_cdf(results: list[Result], path: Path, title: str) -> Path:
    """The share of messages that reached every live node within x ms."""
    figure, axes = _axes(f"{title}: latency to all nodes", "ms", "share of messages")
    for result in results:
        done = result.all_reached()
        if done:
            shares = [(i + 1) / result.submitted for i in range(len(done))]
            axes.step(done, shares, where="post", label=result.strategy)
    axes.set_ylim(0, 1.02)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    else:  # nothing to draw (all lost): say so, where matplotlib warned of an empty legend
        note = "no message reached every live node"
        axes.text(0.5, 0.5, note, ha="center", va="center", transform=axes.transAxes)
    return _save(figure, path)


def msgs_per_op(results: list[Result], path: Path, title: str) -> Path:
    """Frames that spread messages, sent network-wide per message submitted."""
    figure, axes = _axes(f"{title}: cost", "strategy", "frames sent per message (msgs/op)")
    names = [r.strategy for r in results]
    values = [r.msgs_per_op for r in results]
    bars = axes.bar(names, values, color="#2f6db5")
    axes.bar_label(bars, fmt="%.1f")
    return _save(figure, path)


def draw_all(results: list[Result], directory: Path, name: str) -> list[Path]:
    return [
        coverage(results, directory / f"{name}-coverage.png", name),
        latency_cdf(results, directory / f"{name}-latency.png", name),
        msgs_per_op(results, directory / f"{name}-msgs-per-op.png", name),
    ]
