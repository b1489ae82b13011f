"""What the sans-IO core asks its I/O to do: frames to deliver, and catch-up rounds to hold."""

from __future__ import annotations

from dataclasses import dataclass

from gossip.commands import Command

Address = tuple[str, int]
"""Where a node listens: host and port."""

Endpoint = tuple[int, Address]
"""A node's number and where to reach it."""


@dataclass(frozen=True)
class Send:
    """A frame the node wants delivered to node ``peer``, and the command it carries."""

    peer: int
    address: Address
    frame: bytes
    kind: Command


@dataclass(frozen=True)
class CatchUp:
    """Time to compare messages with this peer (a ``gossip.catchup.Round`` the I/O drives)."""

    peer: int
    address: Address
