"""A node's row in ``gossip status``, in a module of its own.

``network`` surveys the nodes and fills these rows, ``render`` prints them: both import
it, so printing never imports the surveying side (its subprocesses and repair plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gossip.state import NodeEntry


@dataclass(frozen=True)
class NodeStatus:
    """One row of ``gossip status``: what the node says of itself, or that it is down."""

    entry: NodeEntry
    state: str
    """``up``, ``down`` (not answering), ``busy`` (it turned the connection away: all the
    connections it serves at once are open), ``failing`` (it answered, but not as a node of
    this network: why is the report's ``error``) or ``removed``."""
    report: dict[str, Any]
