"""The lab's pictures (matplotlib, imported only here, only when an experiment draws):
coverage over time, latency CDF and msgs/op bars, one series per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gossip.experiment import Result


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


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
    axes.legend()
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
