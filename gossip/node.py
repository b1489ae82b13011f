"""A node's state and decisions, with no I/O (the sans-IO core).

Everything a node decides lives here: which copies to record, which peers to pass a
copy to, which peers it holds, and how it helps the network heal when it leaves.
Methods take inputs and return what to send; the server does the sending.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from gossip.protocol import MAX_RELAYS, Copy, FrameError, MessageView, encode_frame

Address = tuple[str, int]


@dataclass(frozen=True)
class Send:
    """A frame the node wants delivered to one peer."""

    peer: int
    address: Address
    frame: bytes


@dataclass
class Message:
    """What a node holds of one message: every copy that reached it, in arrival order."""

    id: str
    text: str
    sent: float
    relays: int
    copies: list[Copy]
    read: bool = False
    relayed: dict[int, int] = field(default_factory=dict)
    """How many copies this node has sent to each peer, bounded by ``relays``."""

    def view(self) -> MessageView:
        return MessageView(self.id, self.text, self.sent, tuple(self.copies), self.read)


class Link(Enum):
    """What a node does when asked to link with a suggested peer."""

    ALREADY = "already"
    FULL = "full"
    TRY = "try"


class Node:
    """One gossip node: its peers (at most ``max_peers``) and the messages it holds."""

    def __init__(
        self,
        number: int,
        max_peers: int,
        peers: dict[int, Address],
        *,
        new_id: Callable[[], str] = lambda: os.urandom(16).hex(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(peers) > max_peers:
            raise ValueError(f"node {number} given {len(peers)} peers, max_peers is {max_peers}")
        if number in peers:
            raise ValueError(f"node {number} cannot be its own peer")
        self.number = number
        self.max_peers = max_peers
        self.peers: dict[int, Address] = dict(peers)
        self.pending: set[int] = set()
        """Peers this node has asked to link with and not heard back from: they hold a slot."""
        self.messages: dict[str, Message] = {}
        self._new_id = new_id
        self._clock = clock

    # Messages

    def submit(self, text: str, relays: int) -> tuple[str, list[Send]]:
        """A client's new message: record it with the path [self], copy it to every peer."""
        if not 1 <= relays <= MAX_RELAYS:
            raise FrameError(f"relays must be between 1 and {MAX_RELAYS}")
        now = self._clock()
        message = Message(self._new_id(), text, now, relays, [])
        self.messages[message.id] = message
        return message.id, self._accept_copy(message, (), now)

    def relay(
        self, message_id: str, text: str, path: tuple[int, ...], relays: int, sent: float
    ) -> list[Send]:
        """A copy from a peer: record its path and pass it on where the relay budget allows.

        A path that already holds this node is neither recorded nor forwarded, which is
        what bounds the spread: every path is a walk without repeats.
        """
        if self.number in path:
            return []
        message = self.messages.get(message_id)
        if message is None:
            message = Message(message_id, text, sent, relays, [])
            self.messages[message_id] = message
        elif message.text != text:
            raise FrameError(f"message {message_id} already held with another text")
        return self._accept_copy(message, path, self._clock())

    def _accept_copy(self, message: Message, path: tuple[int, ...], now: float) -> list[Send]:
        walk = (*path, self.number)
        message.copies.append(Copy(walk, now))
        targets = [
            (peer, address)
            for peer, address in self.peers.items()
            if peer not in walk and message.relayed.get(peer, 0) < message.relays
        ]
        if not targets:
            return []
        payload = {
            "id": message.id,
            "text": message.text,
            "path": list(walk),
            "relays": message.relays,
            "sent": message.sent,
        }
        frame = encode_frame("RELAY", payload)
        for peer, _ in targets:
            message.relayed[peer] = message.relayed.get(peer, 0) + 1
        return [Send(peer, address, frame) for peer, address in targets]

    def read(self, which: str, mark: bool = True) -> list[MessageView]:
        """Messages oldest first, filtered by read state; with ``mark`` they are now read."""
        chosen = [
            m for m in self.messages.values() if which == "all" or (which == "read") == m.read
        ]
        views = [m.view() for m in chosen]
        if mark:
            for message in chosen:
                message.read = True
        return views

    # Peers and healing

    def free_slots(self) -> int:
        return self.max_peers - len(self.peers) - len(self.pending)

    def drop_peer(self, number: int) -> bool:
        """Forget a peer that left; True if it was one."""
        return self.peers.pop(number, None) is not None

    def plan_link(self, number: int) -> Link:
        """Before asking ``number`` to link: reserve a slot, or say why not to ask."""
        if number in self.peers or number == self.number:
            return Link.ALREADY
        if self.free_slots() <= 0:
            return Link.FULL
        self.pending.add(number)
        return Link.TRY

    def finish_link(self, number: int, address: Address, accepted: bool) -> None:
        """The answer to a link request: release the reserved slot, keep the peer if accepted."""
        self.pending.discard(number)
        if accepted:
            self.peers[number] = address

    def accept_link(self, number: int, address: Address) -> bool:
        """Another node asks to become a peer: yes if there is room (or it already is one)."""
        if number == self.number:
            return False
        if number in self.peers:
            return True
        if number in self.pending:
            # Both sides asked each other at once: the one slot each reserved is this link.
            self.pending.discard(number)
        elif self.free_slots() <= 0:
            return False
        self.peers[number] = address
        return True

    def leave(self) -> tuple[dict[int, Address], list[tuple[int, int]]]:
        """Stop being anyone's peer: the former peers, and which pairs of them to introduce."""
        former, self.peers = self.peers, {}
        return former, leave_plan(former)


def leave_plan(former_peers: Iterable[int]) -> list[tuple[int, int]]:
    """Pairs of a leaving node's former peers to introduce to each other, in order.

    Every former peer loses one slot's worth of peer when the node goes. Introducing them
    along a chain first (p1-p2, p2-p3, ...) keeps them connected where slots allow; the
    other pairs then fill any slots left. Each link is accepted only where both ends have
    room, so a ring closes and nobody exceeds ``max_peers``.
    """
    peers = sorted(former_peers)
    chain = list(itertools.pairwise(peers))
    rest = [(a, b) for i, a in enumerate(peers) for b in peers[i + 2 :]]
    return chain + rest
