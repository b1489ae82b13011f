"""A node's peers: who they are, whether they live, and how a lost one is replaced.

No I/O: methods take frames' fields and the time and return the frames to send. At
most ``max_peers`` peers at any moment, counting links still being made (``pending``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gossip.commands import Command
from gossip.journal import Journal
from gossip.protocol import encode_frame, endpoint_of
from gossip.sends import Address, Endpoint, Send
from gossip.timing import Timing

MISSES_TO_DROP = 3
"""Failed exchanges in a row after which a peer counts as dead (about a second of pings)."""

WALK_HOPS = 64
"""How far a walk goes before it gives up."""

ANY_SLOT_AFTER = 3
"""Walks that only a node short of peers itself may accept, before any free slot will do.
Pairing nodes that lost a peer first keeps the shape: a broken ring closes again."""


class LinkPlan(Enum):
    """What a node does when asked to link with a suggested peer (``/INTRODUCE``)."""

    ALREADY = "already"
    FULL = "full"
    TRY = "try"


@dataclass(frozen=True)
class Splice:
    """How a contact takes in a newcomer.

    With a ``partner``, the contact hands over its link with that peer: contact and
    partner each link with the newcomer instead of each other, so nobody gains a peer
    but the newcomer, and a ring grows by one. Without one, the contact links directly.
    """

    partner: int | None = None
    address: Address | None = None


class Membership:
    """Node ``number``'s peers, the links it is making, and what it knows of their health."""

    def __init__(
        self,
        number: int,
        max_peers: int,
        peers: dict[int, Address],
        *,
        address: Address,
        wanted: int | None,
        contacts: Sequence[Endpoint],
        journal: Journal,
        timing: Timing,
        clock: Callable[[], float],
        rng: random.Random,
        linked: Callable[[int], object] = lambda number: None,
    ) -> None:
        if len(peers) > max_peers:
            raise ValueError(f"node {number} given {len(peers)} peers, max_peers is {max_peers}")
        if number in peers:
            raise ValueError(f"node {number} cannot be its own peer")
        self.number = number
        self.max_peers = max_peers
        self.address = address
        self.peers: dict[int, Address] = dict(peers)
        self.pending: set[int] = set()
        """Peers this node has asked to link with and not heard back from: they hold a slot."""
        self.wanted = len(peers) if wanted is None else min(wanted, max_peers)
        """How many peers the node aims to hold: what it started with, or came to hold."""
        self.contacts = [c for c in contacts if c[0] != number]
        """Nodes to ask to take this node in while it has no peer (a restart, a new node)."""
        self.journal = journal
        self.timing = timing
        self._clock = clock
        self._rng = rng
        self._linked = linked
        """Told of every new peer (repair across cuts stops looking for it)."""
        self.started = clock()
        self.left = False
        self.heard: dict[int, float] = {}
        self.pinged: dict[int, float] = {}
        self.misses: dict[int, int] = {}
        self.walks = 0
        self.next_walk = self.started + timing.walk_first
        self.joining = False
        self.next_join = self.started

    def free_slots(self) -> int:
        return self.max_peers - len(self.peers) - len(self.pending)

    def looking(self) -> bool:
        """Short of the peers it aims for (it lost some), so it walks to find more."""
        return not self.left and len(self.peers) + len(self.pending) < self.wanted

    def add(self, number: int, address: Address) -> None:
        self._linked(number)
        self.peers[number] = address
        self.heard[number] = self._clock()
        self.wanted = max(self.wanted, len(self.peers))
        self.journal.peers_changed(self.peers, self.wanted)

    def drop(self, number: int) -> Address | None:
        """Forget a peer that left or died; its address if it was one. The node starts looking."""
        address = self.peers.pop(number, None)
        if address is None:
            return None
        self._forget(number)
        self.walks = 0
        self.next_walk = self._clock() + self.timing.walk_first
        self.journal.peers_changed(self.peers, self.wanted)
        return address

    def let_go(self) -> Endpoint:
        """Drop a peer at random to make room for a link across two parts."""
        number = self._rng.choice(sorted(self.peers))
        address = self.peers.pop(number)
        self._forget(number)
        return number, address

    def _forget(self, number: int) -> None:
        """Drop what the node tracked of a peer's health."""
        for table in (self.heard, self.pinged, self.misses):
            table.pop(number, None)

    def heard_from(self, number: int, now: float) -> None:
        if number in self.peers:
            self.heard[number] = now
            self.misses[number] = 0

    def missed(self, number: int) -> Address | None:
        """An exchange with a peer failed; its address if that made the node drop it as dead."""
        if number not in self.peers:
            return None
        self.misses[number] = self.misses.get(number, 0) + 1
        if self.misses[number] < MISSES_TO_DROP:
            return None
        return self.drop(number)

    def is_peer(self, number: int) -> bool:
        """Whether ``number`` holds a slot here, linked or being linked (what a ping asks)."""
        return number in self.peers or number in self.pending

    # Links asked for one at a time

    def plan_link(self, number: int) -> LinkPlan:
        """Before asking ``number`` to link: reserve a slot, or say why not to ask."""
        if number in self.peers or number == self.number:
            return LinkPlan.ALREADY
        if self.free_slots() <= 0 or self.left:
            return LinkPlan.FULL
        self.pending.add(number)
        return LinkPlan.TRY

    def finish_link(self, number: int, address: Address, accepted: bool) -> None:
        """The answer to a link request: release the reserved slot, keep the peer if accepted."""
        was_pending = number in self.pending
        self.pending.discard(number)
        if accepted and was_pending and number not in self.peers and not self.left:
            self.add(number, address)

    def accept_link(self, number: int, address: Address) -> bool:
        """Another node asks to become a peer: yes if there is room (or it already is one)."""
        if number == self.number or self.left:
            return False
        if number in self.peers:
            return True
        if number in self.pending:
            # Both sides asked each other at once: the one slot each reserved is this link.
            self.pending.discard(number)
        elif self.free_slots() <= 0:
            return False
        self.add(number, address)
        return True

    def walk(
        self,
        origin: int,
        address: Address,
        hops: int,
        visited: Sequence[int],
        any_slot: bool,
    ) -> list[Send]:
        """A walk from a node looking for a peer: offer it a link, or pass the walk on.

        A node takes the walker if it has a free slot, is not already its peer, and
        is short of peers itself (or the walker has given up on those: ``any_slot``).
        Otherwise the walk goes to a peer it has not visited, while hops remain.
        """
        if origin == self.number or self.left:
            return []
        taken = origin in self.peers or origin in self.pending
        if not taken and self.free_slots() > 0 and (any_slot or self.looking()):
            self.pending.add(origin)
            return [Send(origin, address, self.connect_frame(), Command.CONNECT)]
        if hops <= 1:
            return []
        came_from = visited[-1] if visited else origin
        seen = {*visited, origin, self.number}
        choices = sorted(p for p in self.peers if p not in seen) or sorted(
            p for p in self.peers if p not in (came_from, origin)
        )
        if not choices:
            return []
        nxt = self._rng.choice(choices)
        frame = walk_frame(origin, address, hops - 1, [*visited, self.number], any_slot)
        return [Send(nxt, self.peers[nxt], frame, Command.WALK)]

    # Joins: a node with no peers is taken in

    def plan_join(
        self, newcomer: int, address: Address, prefer: Sequence[int], slots: int
    ) -> Splice | None:
        """A node without peers asks to be taken in; how, or None to refuse.

        A newcomer with two free slots takes over one of this node's links (with a peer
        it names in ``prefer`` if there is one: a restarted node's old neighbours), so
        nobody exceeds ``max_peers`` even in a network where every slot is taken.
        """
        if newcomer == self.number or self.left:
            return None
        if newcomer in self.peers:
            return Splice()
        candidates = sorted(p for p in self.peers if p != newcomer)
        if slots >= 2 and candidates:
            liked = [p for p in prefer if p in candidates]
            partner = liked[0] if liked else self._rng.choice(candidates)
            return Splice(partner, self.peers[partner])
        if slots >= 1 and self.free_slots() > 0:
            self.add(newcomer, address)
            return Splice()
        return None

    def finish_join(
        self, newcomer: int, address: Address, splice: Splice, swapped: bool
    ) -> list[Endpoint]:
        """After asking the partner to swap this node for the newcomer: the newcomer's peers.
        A node that left while it asked (the ask is made without the node's lock) offers
        only the partner: a node that has left holds no peers."""
        linked: list[Endpoint] = []
        if splice.partner is not None and splice.address is not None and swapped:
            linked.append((splice.partner, splice.address))
            if self.peers.pop(splice.partner, None) is not None:
                self._forget(splice.partner)
        if not self.left and (newcomer in self.peers or self.free_slots() > 0):
            if newcomer not in self.peers:
                self.add(newcomer, address)
            linked.insert(0, (self.number, self.address))
        return linked

    def swap(self, old: int, new: int, address: Address) -> Address | None:
        """A peer hands over its link with this node to another: ``new`` replaces ``old``.
        The address of ``old`` if the swap was made."""
        if old not in self.peers or new in self.peers or new == self.number or self.left:
            return None
        old_address = self.peers.pop(old)
        self._forget(old)
        self.add(new, address)
        return old_address

    def joined(self, links: Iterable[Any]) -> None:
        """The contact's answer to a join: the peers this node now has, as [n, host, port]."""
        for item in links:
            peer = endpoint_of(item)
            if peer is None:
                continue
            number, address = peer
            fresh = number != self.number and number not in self.peers and not self.left
            if fresh and self.free_slots() > 0:
                self.add(number, address)
        if self.peers:
            self.contacts = []

    def leave(self) -> tuple[dict[int, Address], list[tuple[int, int]]]:
        """Stop being anyone's peer: the former peers, and which pairs of them to introduce."""
        former, self.peers = self.peers, {}
        self.pending.clear()
        self.left = True
        self.wanted = 0
        self.journal.peers_changed(self.peers, self.wanted)
        return former, leave_plan(former)

    # Time passes

    def chores(self, now: float) -> list[Send]:
        """Pings to peers silent for ``ping_every``; a join while alone; a walk while short."""
        timing = self.timing
        chores: list[Send] = []
        silences = {peer: now - self._last_word(peer) for peer in self.peers}
        if silences and max(silences.values()) >= timing.ping_every:
            # Peers silent for half the time are pinged too: one wake-up pings them all.
            for peer, silence in silences.items():
                if silence >= timing.ping_every / 2:
                    self.pinged[peer] = now
                    ping = encode_frame(Command.PING, {"node": self.number})
                    chores.append(Send(peer, self.peers[peer], ping, Command.PING))
        if not self.peers and self.contacts and not self.joining and now >= self.next_join:
            number, address = self.contacts[0]
            self.contacts.append(self.contacts.pop(0))
            self.joining = True
            self.next_join = now + timing.walk_every
            chores.append(Send(number, address, self._join_frame(), Command.JOIN))
        if self.peers and self.looking() and now >= self.next_walk:
            self.walks += 1
            self.next_walk = now + min(timing.walk_max, timing.walk_every * 2 ** (self.walks - 1))
            peer = self._rng.choice(sorted(self.peers))
            any_slot = self.walks > ANY_SLOT_AFTER
            frame = walk_frame(self.number, self.address, WALK_HOPS, [], any_slot)
            chores.append(Send(peer, self.peers[peer], frame, Command.WALK))
        return chores

    def next_due(self) -> float:
        """When ``chores`` next has something to do, as things stand (``inf``: never)."""
        pings = (self._last_word(peer) + self.timing.ping_every for peer in self.peers)
        due = min(pings, default=math.inf)
        if not self.peers and self.contacts and not self.joining:
            due = min(due, self.next_join)
        if self.peers and self.looking():
            due = min(due, self.next_walk)
        return due

    def _last_word(self, peer: int) -> float:
        """When this node last heard from ``peer`` or pinged it: its silence starts there."""
        return max(self.heard.get(peer, self.started), self.pinged.get(peer, 0.0))

    def connect_frame(self) -> bytes:
        """The request to link with this node, as a walk's end or an introduction sends it."""
        host, port = self.address
        return encode_frame(Command.CONNECT, {"node": self.number, "host": host, "port": port})

    def _join_frame(self) -> bytes:
        host, port = self.address
        payload = {
            "node": self.number,
            "host": host,
            "port": port,
            "prefer": [n for n, _ in self.contacts],
            "slots": self.free_slots(),
        }
        return encode_frame(Command.JOIN, payload)


def walk_frame(
    origin: int, address: Address, hops: int, visited: list[int], any_slot: bool
) -> bytes:
    host, port = address
    payload = {
        "node": origin,
        "host": host,
        "port": port,
        "hops": hops,
        "visited": visited,
        "any": any_slot,
    }
    return encode_frame(Command.WALK, payload)


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
