"""Repair across cuts: peers dropped for silence, looked for, and linked with again.

A peer dropped for silence may be dead, or on the far side of a network cut that heals
later. The node remembers it (``Lost``), searches for it through the network (``/SEEK``):
found, it is in this part and nothing needs mending; not found, the node asks it to link
across (``/MERGE``), making room on both ends if need be. No I/O, as ``Membership``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gossip.commands import Command
from gossip.membership import Membership
from gossip.protocol import encode_frame, endpoint_of
from gossip.sends import Address, Endpoint, Send
from gossip.timing import Timing

SEEK_HOPS = 32
SEEN_SEEKS = 1024
"""How far a search for a lost peer floods, and how many searches a node remembers."""

REFUSALS_TO_FORGET = 3
"""A lost peer whose port refuses this many times in a row is dead, not cut off."""


@dataclass
class Lost:
    """A peer dropped for silence: dead, or cut off by the network and perhaps back later;
    or let go to join two parts, in case that split a part."""

    address: Address
    since: float
    next_try: float
    asks: bool
    """This end tries to get back; as a rule the other end of the link does not, so the two
    seldom ask each other at once (and refuse each other if they do)."""
    tries: int = 0
    seek: str = ""
    """The search under way for it through the network, and when it ends (``seek_until``)."""
    seek_until: float = 0.0
    refusals: int = 0


class Cuts:
    """The peers a node lost and may link with again, and the searches it runs for them."""

    def __init__(
        self,
        members: Membership,
        timing: Timing,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.members = members
        self.timing = timing
        self._clock = clock
        self._rng = rng
        self.lost: dict[int, Lost] = {}
        """Peers dropped for silence, to link with again if they turn up (a healed cut)."""
        self.merging: int | None = None
        """The lost peer this node is asking to link again, if any: one at a time."""
        self.seen_seeks: dict[str, None] = {}
        self._seek_ids = itertools.count(1)

    @property
    def number(self) -> int:
        return self.members.number

    def remember(
        self,
        number: int,
        address: Address,
        asks: bool,
        now: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Keep a lost peer in mind, to be looked for after ``delay`` if this end ``asks``."""
        now = self._clock() if now is None else now
        delay = self.timing.merge_first if delay is None else delay
        self.lost[number] = Lost(address, now, now + delay, asks)

    def accept_merge(self, number: int, address: Address) -> tuple[bool, Endpoint | None]:
        """A peer this node lost is back and asks to link again: whether it may, and the
        peer this node let go to make room, if it was full (the asker pairs it up).

        Two parts of a network cut apart heal each on its own side, so both ends may be
        full by the time the cut heals. Then each lets one peer go, and those two link
        with each other: the four nodes keep their number of peers, the parts join.
        """
        members = self.members
        if number == self.number or members.left:
            return False, None
        if self.merging == number and number > self.number:
            # Both asking each other at once: the lower number's ask is the one taken (two
            # refusals could repeat in step, as both ends retry on the same schedule).
            return False, None
        if number in members.peers:
            return True, None
        members.pending.discard(number)
        if members.free_slots() > 0:
            members.add(number, address)
            return True, None
        if not members.peers:
            return False, None  # every slot is promised to a link still being made
        orphan = self._let_go(self.timing.merge_first + self.timing.stagger)
        members.add(number, address)
        return True, orphan

    def merge_answered(self, send: Send, reply: dict[str, Any]) -> list[Send]:
        """The answer to this node's ``/MERGE``: link if the lost peer agreed."""
        self.merging = None
        if send.peer in self.lost:
            self.lost[send.peer].refusals = 0
        if reply.get("accepted") is not True:
            return []
        return self._merged(send.peer, send.address, endpoint_of(reply.get("orphan")))

    def merge_failed(self, send: Send, refused: bool) -> None:
        """A ``/MERGE`` did not arrive; a peer whose port keeps refusing is dead: forget it."""
        self.merging = None
        lost = self.lost.get(send.peer)
        if lost is not None:
            lost.refusals = lost.refusals + 1 if refused else 0
            if lost.refusals >= REFUSALS_TO_FORGET:
                del self.lost[send.peer]

    def _merged(self, number: int, address: Address, orphan: Endpoint | None) -> list[Send]:
        """A lost peer agreed to link again: link, making room if need be, and pair the
        peer let go here with the one it let go (``orphan``) by a swap on each."""
        members = self.members
        members.pending.discard(number)
        if number in members.peers or members.left:
            self.lost.pop(number, None)
            return []
        if members.free_slots() > 0:
            members.add(number, address)
            return []
        if not members.peers:
            return []  # every slot is promised to a link still being made: try again later
        mine = self._let_go(self.timing.merge_first)
        members.add(number, address)
        if orphan is None or orphan[0] == mine[0]:
            leave = encode_frame(Command.LEAVE, {"node": self.number})
            return [Send(mine[0], mine[1], leave, Command.LEAVE)]
        return [swap_send(mine, self.number, orphan), swap_send(orphan, number, mine)]

    def _let_go(self, delay: float) -> Endpoint:
        """Drop a peer, at random, to make room for a link across; it is told by its new one.

        If the two parts were one already (two merges at once), trading links can split
        it: the peer let go is remembered as lost, to be looked for after ``delay``, so a
        split is found and mended alike.
        """
        number, address = self.members.let_go()
        self.remember(number, address, asks=True, delay=delay)
        return number, address

    def seek(self, seek: str, target: int, origin: int, address: Address, hops: int) -> list[Send]:
        """A search for node ``target`` on behalf of ``origin``, which lost it: answer if this
        node is or knows the target, else pass the search on to every peer (once)."""
        if seek in self.seen_seeks or self.members.left:
            return []
        self._saw_seek(seek)
        if target == self.number or target in self.members.peers:
            found = encode_frame(Command.FOUND, {"seek": seek, "target": target})
            return [Send(origin, address, found, Command.FOUND)]
        if hops <= 1:
            return []
        return [
            Send(peer, at, seek_frame(seek, target, origin, address, hops - 1), Command.SEEK)
            for peer, at in sorted(self.members.peers.items())
            if peer != origin
        ]

    def _saw_seek(self, seek: str) -> None:
        self.seen_seeks[seek] = None
        while len(self.seen_seeks) > SEEN_SEEKS:
            del self.seen_seeks[next(iter(self.seen_seeks))]

    def found(self, seek: str, target: int) -> None:
        """A lost peer is reachable through the network after all: nothing to mend."""
        lost = self.lost.get(target)
        if lost is not None and lost.seek == seek:
            del self.lost[target]

    def chores(self, now: float) -> list[Send]:
        """Try to get back to one lost peer when its turn comes; forget it after ``lost_for``.

        First search for it through the network (``/SEEK``): found, it is in this part
        and nothing needs mending. Not found within ``seek_wait``, it is cut off (or
        dead): ask it to link across (``/MERGE``), one at a time.
        """
        timing = self.timing
        peers = self.members.peers
        for number, lost in list(self.lost.items()):
            if now - lost.since > timing.lost_for:
                del self.lost[number]
            elif lost.seek and now >= lost.seek_until:
                lost.seek = ""
                if self.merging is None:
                    return [self._merge(number, lost)]
            elif lost.asks and not lost.seek and self.merging is None and now >= lost.next_try:
                lost.tries += 1
                lost.next_try = now + min(timing.merge_max, timing.merge_first * 2**lost.tries)
                if not peers:
                    return [self._merge(number, lost)]
                started = int(self.members.started * 1e6)
                lost.seek = f"{self.number}-{started}-{next(self._seek_ids)}"
                lost.seek_until = now + timing.seek_wait
                self._saw_seek(lost.seek)
                frame = seek_frame(lost.seek, number, self.number, self.members.address, SEEK_HOPS)
                return [Send(p, a, frame, Command.SEEK) for p, a in sorted(peers.items())]
        return []

    def next_due(self) -> float:
        """When ``chores`` next has something to do, as things stand (``inf``: never)."""
        due = math.inf
        for lost in self.lost.values():
            due = min(due, lost.since + self.timing.lost_for)
            if lost.seek:
                due = min(due, lost.seek_until)
            elif lost.asks and self.merging is None:
                due = min(due, lost.next_try)
        return due

    def _merge(self, number: int, lost: Lost) -> Send:
        self.merging = number
        host, port = self.members.address
        merge = encode_frame(Command.MERGE, {"node": self.number, "host": host, "port": port})
        return Send(number, lost.address, merge, Command.MERGE)


def swap_send(to: Endpoint, old: int, new: Endpoint) -> Send:
    """Ask ``to`` to take ``new`` as its peer in place of ``old``, to join two parts."""
    number, (host, port) = new
    payload = {"old": old, "node": number, "host": host, "port": port, "merge": True}
    return Send(to[0], to[1], encode_frame(Command.SWAP, payload), Command.SWAP)


def seek_frame(seek: str, target: int, origin: int, address: Address, hops: int) -> bytes:
    host, port = address
    payload = {"seek": seek, "target": target, "node": origin, "host": host, "port": port}
    return encode_frame(Command.SEEK, {**payload, "hops": hops})
