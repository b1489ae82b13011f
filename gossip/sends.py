"""What the sans-IO core asks its I/O to do: frames to deliver, and catch-up rounds to hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gossip.commands import Command
from gossip.protocol import RELAY_HEAD, relays_frames

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


def batched(sends: list[Send]) -> list[Send]:
    """``sends``, each peer's ``/RELAY`` frames run together as ``/RELAYS`` frames
    (``relays_frames``), in order; other frames as they are."""
    runs: dict[tuple[int, Address], list[bytes]] = {}
    others: list[Send] = []
    for send in sends:
        if send.kind == Command.RELAY:
            runs.setdefault((send.peer, send.address), []).append(send.frame)
        else:
            others.append(send)
    for (peer, address), frames in runs.items():
        for frame in relays_frames(frames):
            kind = Command.RELAY if frame.startswith(RELAY_HEAD) else Command.RELAYS
            others.append(Send(peer, address, frame, kind))
    return others
