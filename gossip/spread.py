"""How one message spread, from what the nodes recorded: the first-arrival tree.

Every node keeps the path of the first copy that reached it; the node before it on that
path is its parent. Together those edges form a tree rooted at the origin: the route
the message actually took to each node first. Pure data, so the CLI can print it and
the plot can draw it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gossip.protocol import MessageView


@dataclass(frozen=True)
class Arrival:
    """When and how a message first reached one node."""

    node: int
    parent: int | None
    """The node it came from first (None at the origin)."""
    hops: int
    delay_ms: float
    """Milliseconds after the message was sent."""


def first_arrivals(held: dict[int, MessageView]) -> list[Arrival]:
    """Each holder's first arrival of the same message, earliest first."""
    arrivals = []
    for number, view in held.items():
        first = view.copies[0]
        parent = first.path[-2] if len(first.path) > 1 else None
        delay = max(0.0, (first.arrived - view.sent) * 1000)
        arrivals.append(Arrival(number, parent, len(first.path) - 1, delay))
    return sorted(arrivals, key=lambda a: (a.delay_ms, a.hops, a.node))


def timeline(arrivals: list[Arrival], width: int = 100, indent: str = "") -> list[str]:
    """``node (+ms)`` entries in arrival order, in lines of at most ``width`` after ``indent``."""
    lines: list[str] = []
    current = ""
    for arrival in arrivals:
        entry = f"{arrival.node} (+{arrival.delay_ms:.1f} ms)"
        candidate = f"{current}, {entry}" if current else entry
        if current and len(candidate) > width:
            lines.append(current + ",")
            candidate = entry
        current = candidate
    if current:
        lines.append(current)
    return [indent + line for line in lines]
