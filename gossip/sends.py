"""What the sans-IO core asks its I/O to do: frames to deliver, and catch-up rounds to hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gossip.commands import Command

Address = tuple[str, int]
"""Where a node listens: host and port."""

Endpoint = tuple[int, Address]
"""A node's number and where to reach it."""


class Send(NamedTuple):
    """A frame the node wants delivered to node ``peer``, and the command it carries (a
    named tuple: a flood makes one for every copy to every peer)."""

    peer: int
    address: Address
    frame: bytes
    kind: Command


@dataclass(frozen=True)
class CatchUp:
    """Time to compare messages with this peer (a ``gossip.catchup.Round`` the I/O drives)."""

    peer: int
    address: Address
