"""A node's state and decisions, with no I/O (the sans-IO core).

Everything a node decides lives here: which copies to record, which peers to pass a
copy to, when a silent peer counts as dead, how to find a replacement, which messages
to trade with a peer during catch-up, and how a newcomer is taken in. Methods take
inputs (frames' fields, the time, how an earlier send went) and return what to send;
the server does the sending and reports back with ``sent`` or ``failed``.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gossip.digest import Digest, bucket_of
from gossip.protocol import (
    MAX_RELAYS,
    Copy,
    FrameError,
    MessageView,
    address_fields,
    encode_frame,
)

Address = tuple[str, int]
Peer = tuple[int, Address]

PING_EVERY = 1.0
"""Seconds of silence from a peer before the node pings it. A dead peer is noticed sooner:
its link breaks and its port refuses; pings are for a peer that hangs."""

MISSES_TO_DROP = 3
"""Failed exchanges in a row after which a peer counts as dead (about a second of pings)."""

WALK_FIRST = 0.25
"""Seconds between losing a peer and the first walk, leaving room for a leaving peer's
introductions, which restore the old shape exactly."""

WALK_EVERY = 0.4
WALK_MAX = 5.0
"""A node that keeps failing to find a peer walks again, each time waiting twice as long,
up to this many seconds."""

WALK_HOPS = 64
"""How far a walk goes before it gives up."""

ANY_SLOT_AFTER = 3
"""Walks that only a node short of peers itself may accept, before any free slot will do.
Pairing nodes that lost a peer first keeps the shape: a broken ring closes again."""

SYNC_EVERY = 1.0
"""Seconds between catch-up rounds, each with the next peer in turn."""

SETTLE = 1.0
"""Seconds a message is held before catch-up offers it, so catch-up does not race gossip."""

MAX_LISTED_IDS = 1000
"""Most ids one catch-up reply lists (with quoting, well inside a frame)."""

MAX_TRADED = 100
"""Most messages pulled or pushed in one catch-up round; the next round does the rest."""

LOST_FOR = 600.0
"""Seconds a node keeps trying to get back to a peer it dropped for silence: a host cut off
by the network looks dead to its peers until its link comes back."""

MERGE_FIRST = 1.0
MERGE_MAX = 5.0
"""Seconds between tries to get back to a lost peer: doubling from first to max."""

SEEK_WAIT = 0.5
"""Seconds a node waits for news that a lost peer is still reachable through the network
before it takes it for a part cut off, and asks to link across."""

SEEK_HOPS = 32
SEEN_SEEKS = 1024
"""How far a search for a lost peer floods, and how many searches a node remembers."""

REFUSALS_TO_FORGET = 3
"""A lost peer whose port refuses this many times in a row is dead, not cut off."""

STAGGER = 2.0
"""Extra seconds before the asked end of a merge looks for the peer it let go, after the
asking end looks for its own: one search at a time finds a split, not two at once."""


@dataclass(frozen=True)
class Send:
    """A frame the node wants delivered, and the command it carries."""

    peer: int
    address: Address
    frame: bytes
    kind: str


@dataclass(frozen=True)
class CatchUp:
    """Time to compare messages with this peer (a conversation the server drives)."""

    peer: int
    address: Address


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


class Journal:
    """Where a node writes down what it must not forget; this one forgets everything.

    ``gossip.store.Store`` keeps it in SQLite, so a restarted node has its history.
    """

    def message_added(self, message: Message) -> None:
        """A message this node did not hold before (its copies follow)."""

    def copy_added(self, message_id: str, copy: Copy) -> None:
        """Another copy of a held message arrived."""

    def marked_read(self, ids: list[str]) -> None:
        """A client read these messages."""

    def peers_changed(self, peers: dict[int, Address], wanted: int) -> None:
        """The node's peers now, and how many it aims to hold."""


class Link(Enum):
    """What a node does when asked to link with a suggested peer."""

    ALREADY = "already"
    FULL = "full"
    TRY = "try"


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


@dataclass(frozen=True)
class Splice:
    """How a contact takes in a newcomer.

    With a ``partner``, the contact hands over its link with that peer: contact and
    partner each link with the newcomer instead of each other, so nobody gains a peer
    but the newcomer, and a ring grows by one. Without one, the contact links directly.
    """

    partner: int | None = None
    address: Address | None = None


class Node:
    """One gossip node: its peers (at most ``max_peers``) and the messages it holds."""

    def __init__(
        self,
        number: int,
        max_peers: int,
        peers: dict[int, Address],
        *,
        address: Address = ("127.0.0.1", 0),
        wanted: int | None = None,
        messages: Iterable[Message] = (),
        contacts: Sequence[tuple[int, Address]] = (),
        journal: Journal | None = None,
        new_id: Callable[[], str] = lambda: os.urandom(16).hex(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
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
        self.messages: dict[str, Message] = {m.id: m for m in messages}
        self.digest = Digest(self.messages)
        self.journal = journal or Journal()
        self._new_id = new_id
        self._clock = clock
        self._rng = rng or random.Random()
        self.started = clock()
        self.left = False
        self.received = 0
        """Copies that reached this node, recorded or not: what the network spent on it."""
        self.heard: dict[int, float] = {}
        self.pinged: dict[int, float] = {}
        self.misses: dict[int, int] = {}
        self.walks = 0
        self.next_walk = self.started + WALK_FIRST
        self.next_sync = self.started + self._rng.uniform(0, SYNC_EVERY)
        self.syncs = 0
        self.joining = False
        self.next_join = self.started
        self.lost: dict[int, Lost] = {}
        """Peers dropped for silence, to link with again if they turn up (a healed cut)."""
        self.merging: int | None = None
        """The lost peer this node is asking to link again, if any: one at a time."""
        self.seen_seeks: dict[str, None] = {}
        self._seek_ids = itertools.count(1)

    # Messages

    def submit(
        self, text: str, relays: int, message_id: str | None = None
    ) -> tuple[str, list[Send]]:
        """A client's new message: record it with the path [self], copy it to every peer.

        A client that retries gives the id it chose the first time: a message this node
        already holds under that id is the same submission, recorded and sent once.
        """
        if not 1 <= relays <= MAX_RELAYS:
            raise FrameError(f"relays must be between 1 and {MAX_RELAYS}")
        held = self.messages.get(message_id) if message_id else None
        if held is not None:
            if held.text != text:
                raise FrameError(f"message id {message_id} is taken by another message")
            return held.id, []
        now = self._clock()
        message = self._new_message(message_id or self._new_id(), text, now, relays)
        return message.id, self._accept_copy(message, (), now)

    def discard(self, message_id: str) -> None:
        """Forget a message whose submission failed (it could not be stored): a message
        spreads only once it is durable at its origin."""
        if self.messages.pop(message_id, None) is not None:
            self.digest.remove(message_id)

    def relay(
        self, message_id: str, text: str, path: tuple[int, ...], relays: int, sent: float
    ) -> list[Send]:
        """A copy from a peer: record its path and pass it on where the relay budget allows.

        A path that already holds this node is neither recorded nor forwarded, which is
        what bounds the spread: every path is a walk without repeats.
        """
        self.received += 1
        if self.number in path:
            return []
        message = self.messages.get(message_id)
        if message is None:
            message = self._new_message(message_id, text, sent, relays)
        elif message.text != text:
            raise FrameError(f"message {message_id} already held with another text")
        elif any(c.path[:-1] == path for c in message.copies):
            return []  # the same walk again (catch-up crossing gossip): one copy took it
        return self._accept_copy(message, path, self._clock())

    def _new_message(self, message_id: str, text: str, sent: float, relays: int) -> Message:
        message = Message(message_id, text, sent, relays, [])
        self.digest.add(message_id)
        self.messages[message_id] = message
        self.journal.message_added(message)
        return message

    def _accept_copy(self, message: Message, path: tuple[int, ...], now: float) -> list[Send]:
        walk = (*path, self.number)
        copy = Copy(walk, now)
        message.copies.append(copy)
        self.journal.copy_added(message.id, copy)
        targets = [
            (peer, address)
            for peer, address in self.peers.items()
            if peer not in walk and message.relayed.get(peer, 0) < message.relays
        ]
        if not targets:
            return []
        frame = encode_frame("RELAY", _relay_payload(message, walk))
        for peer, _ in targets:
            message.relayed[peer] = message.relayed.get(peer, 0) + 1
        return [Send(peer, address, frame, "RELAY") for peer, address in targets]

    def read(self, which: str, mark: bool = True) -> list[MessageView]:
        """Messages oldest first, filtered by read state; with ``mark`` they are now read."""
        chosen = [
            m for m in self.messages.values() if which == "all" or (which == "read") == m.read
        ]
        views = [m.view() for m in chosen]
        if mark:
            fresh = [m.id for m in chosen if not m.read]
            for message in chosen:
                message.read = True
            if fresh:
                self.journal.marked_read(fresh)
        return views

    # Catch-up: compare holdings with a peer, then trade what one side lacks

    def settled_ids(
        self, buckets: Iterable[int], now: float, after: str = ""
    ) -> tuple[list[str], bool]:
        """Ids in these digest buckets held long enough to offer, in id order after ``after``.

        At most MAX_LISTED_IDS of them; the flag says whether that was the last of them.
        The caller pages on from the last id listed.
        """
        ids = self._settled(buckets, now, after)
        return ids[:MAX_LISTED_IDS], len(ids) <= MAX_LISTED_IDS

    def _settled(self, buckets: Iterable[int], now: float, after: str) -> list[str]:
        wanted = set(buckets)
        return sorted(
            m.id
            for m in self.messages.values()
            if m.id > after and now - m.copies[0].arrived >= SETTLE and bucket_of(m.id) in wanted
        )

    def compare(
        self,
        theirs: list[str],
        complete: bool,
        buckets: Iterable[int],
        now: float,
        after: str = "",
    ) -> tuple[list[str], list[str]]:
        """From one page of a peer's ids: the ones to pull, and the ones to push to it.

        The page covers the ids after ``after`` up to its last one (or on, if it is the
        last page); what this node holds in that span and the page lacks, the peer lacks.
        """
        lack = [i for i in theirs if i not in self.messages][:MAX_TRADED]
        mine = self._settled(buckets, now, after)
        if not complete:
            mine = [i for i in mine if theirs and i <= theirs[-1]]
        known = set(theirs)
        return lack, [i for i in mine if i not in known][:MAX_TRADED]

    def offer(self, ids: Iterable[str], to: int) -> list[dict[str, Any]]:
        """``/RELAY`` payloads handing these messages to node ``to`` during catch-up.

        Each carries the path of the first copy that did not pass through ``to``, so
        the receiver records a path the message really took: here, then to it. If every
        copy here passed through ``to`` (it lost its store), it gets back the part of the
        first path that led to it: for a message it sent itself, the empty path.
        """
        payloads = []
        for message_id in ids:
            message = self.messages.get(message_id)
            if message is None or not message.copies:
                continue
            copy = next((c for c in message.copies if to not in c.path), None)
            if copy is not None:
                payloads.append(_relay_payload(message, copy.path))
            else:
                first = message.copies[0].path
                payloads.append(_relay_payload(message, first[: first.index(to)]))
        return payloads

    # Peers: who they are, whether they live, how to replace one

    def free_slots(self) -> int:
        return self.max_peers - len(self.peers) - len(self.pending)

    def looking(self) -> bool:
        """Short of the peers it aims for (it lost some), so it walks to find more."""
        return not self.left and len(self.peers) + len(self.pending) < self.wanted

    def _add_peer(self, number: int, address: Address) -> None:
        self.lost.pop(number, None)
        self.peers[number] = address
        self.heard[number] = self._clock()
        self.wanted = max(self.wanted, len(self.peers))
        self.journal.peers_changed(self.peers, self.wanted)

    def drop_peer(self, number: int) -> bool:
        """Forget a peer that left or died; True if it was one. The node starts looking."""
        self.lost.pop(number, None)
        if self.peers.pop(number, None) is None:
            return False
        self._forget(number)
        self.walks = 0
        self.next_walk = self._clock() + WALK_FIRST
        self.journal.peers_changed(self.peers, self.wanted)
        return True

    def _forget(self, number: int) -> None:
        """Drop what the node tracked of a peer's health."""
        for table in (self.heard, self.pinged, self.misses):
            table.pop(number, None)

    def heard_from(self, number: int, now: float) -> None:
        if number in self.peers:
            self.heard[number] = now
            self.misses[number] = 0

    def missed(self, number: int, now: float) -> bool:
        """An exchange with a peer failed; True if that made the node drop it as dead."""
        address = self.peers.get(number)
        if address is None:
            return False
        self.misses[number] = self.misses.get(number, 0) + 1
        if self.misses[number] < MISSES_TO_DROP:
            return False
        self.drop_peer(number)
        self._remember(number, address, asks=number > self.number, now=now)
        return True

    def _remember(
        self,
        number: int,
        address: Address,
        asks: bool,
        now: float | None = None,
        delay: float = MERGE_FIRST,
    ) -> None:
        """Keep a lost peer in mind, to be looked for after ``delay`` if this end ``asks``."""
        now = self._clock() if now is None else now
        self.lost[number] = Lost(address, now, now + delay, asks)

    def sent(self, send: Send, reply: dict[str, Any], now: float) -> list[Send]:
        """A send went through and this was the reply: learn from it; what to send next."""
        self.heard_from(send.peer, now)
        if send.kind == "MERGE":
            self.merging = None
            if send.peer in self.lost:
                self.lost[send.peer].refusals = 0
            if reply.get("accepted") is True:
                return self._merged(send.peer, send.address, _as_peer(reply.get("orphan")))
        if send.kind == "CONNECT":
            self.finish_link(send.peer, send.address, reply.get("accepted") is True)
        elif send.kind == "PING" and reply.get("peer") is False and send.peer in self.peers:
            # It dropped this node: keep links two-way. It may have taken this node for
            # dead while a cut lasted, and not be looking for it: this end looks.
            self.drop_peer(send.peer)
            self._remember(send.peer, send.address, asks=True, now=now)
        elif send.kind == "JOIN":
            self.joining = False
            links = reply.get("peers")
            self.joined(links if isinstance(links, list) else [])
        return []

    def failed(
        self, send: Send, now: float, counted: bool = True, refused: bool = False
    ) -> list[Send]:
        """A send did not go through; a peer dropped as dead is told so, in case it lives.

        Not ``counted`` when the link that carried it reports the loss once for all the
        sends it lost (a broken connection is one sign of death, however busy it was).
        ``refused``: the port refused, so the node is dead, not cut off.
        """
        if send.kind == "CONNECT":
            self.finish_link(send.peer, send.address, False)
        elif send.kind == "JOIN":
            self.joining = False
        elif send.kind == "MERGE":
            self.merging = None
            lost = self.lost.get(send.peer)
            if lost is not None:
                lost.refusals = lost.refusals + 1 if refused else 0
                if lost.refusals >= REFUSALS_TO_FORGET:
                    del self.lost[send.peer]
        if counted and self.missed(send.peer, now):
            leave = encode_frame("LEAVE", {"node": self.number})
            return [Send(send.peer, send.address, leave, "LEAVE")]
        return []

    def plan_link(self, number: int) -> Link:
        """Before asking ``number`` to link: reserve a slot, or say why not to ask."""
        if number in self.peers or number == self.number:
            return Link.ALREADY
        if self.free_slots() <= 0 or self.left:
            return Link.FULL
        self.pending.add(number)
        return Link.TRY

    def finish_link(self, number: int, address: Address, accepted: bool) -> None:
        """The answer to a link request: release the reserved slot, keep the peer if accepted."""
        was_pending = number in self.pending
        self.pending.discard(number)
        if accepted and was_pending and number not in self.peers and not self.left:
            self._add_peer(number, address)

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
        self._add_peer(number, address)
        return True

    def accept_merge(self, number: int, address: Address) -> tuple[bool, Peer | None]:
        """A peer this node lost is back and asks to link again: whether it may, and the
        peer this node let go to make room, if it was full (the asker pairs it up).

        Two parts of a network cut apart heal each on its own side, so both ends may be
        full by the time the cut heals. Then each lets one peer go, and those two link
        with each other: the four nodes keep their number of peers, the parts join.
        """
        if number == self.number or self.left or self.merging == number:
            return False, None  # (both asking each other at once: the retries will differ)
        if number in self.peers:
            return True, None
        self.pending.discard(number)
        if self.free_slots() > 0:
            self._add_peer(number, address)
            return True, None
        if not self.peers:
            return False, None  # every slot is promised to a link still being made
        orphan = self._let_go(MERGE_FIRST + STAGGER)
        self._add_peer(number, address)
        return True, orphan

    def _merged(self, number: int, address: Address, orphan: Peer | None) -> list[Send]:
        """A lost peer agreed to link again: link, making room if need be, and pair the
        peer let go here with the one it let go (``orphan``) by a swap on each."""
        self.pending.discard(number)
        if number in self.peers or self.left:
            self.lost.pop(number, None)
            return []
        if self.free_slots() > 0:
            self._add_peer(number, address)
            return []
        if not self.peers:
            return []  # every slot is promised to a link still being made: try again later
        mine = self._let_go(MERGE_FIRST)
        self._add_peer(number, address)
        if orphan is None or orphan[0] == mine[0]:
            leave = encode_frame("LEAVE", {"node": self.number})
            return [Send(mine[0], mine[1], leave, "LEAVE")]
        return [_swap(mine, self.number, orphan), _swap(orphan, number, mine)]

    def _let_go(self, delay: float) -> Peer:
        """Drop a peer, at random, to make room for a link across; it is told by its new one.

        If the two parts were one already (two merges at once), trading links can split
        it: the peer let go is remembered as lost, to be looked for after ``delay``, so a
        split is found and mended alike.
        """
        number = self._rng.choice(sorted(self.peers))
        address = self.peers.pop(number)
        self._forget(number)
        self._remember(number, address, asks=True, delay=delay)
        return number, address

    def seek(self, seek: str, target: int, origin: int, address: Address, hops: int) -> list[Send]:
        """A search for node ``target`` on behalf of ``origin``, which lost it: answer if this
        node is or knows the target, else pass the search on to every peer (once)."""
        if seek in self.seen_seeks or self.left:
            return []
        self._saw_seek(seek)
        if target == self.number or target in self.peers:
            found = encode_frame("FOUND", {"seek": seek, "target": target})
            return [Send(origin, address, found, "FOUND")]
        if hops <= 1:
            return []
        return [
            Send(peer, peer_address, _seek_frame(seek, target, origin, address, hops - 1), "SEEK")
            for peer, peer_address in sorted(self.peers.items())
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
            return [Send(origin, address, self.connect_frame(), "CONNECT")]
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
        frame = _walk_frame(origin, address, hops - 1, [*visited, self.number], any_slot)
        return [Send(nxt, self.peers[nxt], frame, "WALK")]

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
            self._add_peer(newcomer, address)
            return Splice()
        return None

    def finish_join(
        self, newcomer: int, address: Address, splice: Splice, swapped: bool
    ) -> list[tuple[int, Address]]:
        """After asking the partner to swap this node for the newcomer: the newcomer's peers."""
        linked: list[tuple[int, Address]] = []
        if splice.partner is not None and splice.address is not None and swapped:
            linked.append((splice.partner, splice.address))
            if self.peers.pop(splice.partner, None) is not None:
                self._forget(splice.partner)
        if newcomer in self.peers or self.free_slots() > 0:
            if newcomer not in self.peers:
                self._add_peer(newcomer, address)
            linked.insert(0, (self.number, self.address))
        return linked

    def swap(self, old: int, new: int, address: Address, remember: bool = False) -> bool:
        """A peer hands over its link with this node to another: ``new`` replaces ``old``.

        ``remember``: the swap joins two parts; ``old`` is remembered as lost (the end
        that let this node go will look for it).
        """
        if old not in self.peers or new in self.peers or new == self.number or self.left:
            return False
        old_address = self.peers.pop(old)
        self._forget(old)
        if remember:
            self._remember(old, old_address, asks=False)
        self._add_peer(new, address)
        return True

    def joined(self, links: Iterable[Any]) -> None:
        """The contact's answer to a join: the peers this node now has, as [n, host, port]."""
        for item in links:
            peer = _as_peer(item)
            if peer is None:
                continue
            number, address = peer
            fresh = number != self.number and number not in self.peers and not self.left
            if fresh and self.free_slots() > 0:
                self._add_peer(number, address)
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

    def tick(self, now: float) -> list[Send | CatchUp]:
        """What the node should do of its own accord now: ping, walk, join, catch up."""
        if self.left:
            return []
        chores: list[Send | CatchUp] = []
        for peer, address in self.peers.items():
            last = max(self.heard.get(peer, self.started), self.pinged.get(peer, 0.0))
            if now - last >= PING_EVERY:
                self.pinged[peer] = now
                ping = encode_frame("PING", {"node": self.number})
                chores.append(Send(peer, address, ping, "PING"))
        if not self.peers and self.contacts and not self.joining and now >= self.next_join:
            number, address = self.contacts[0]
            self.contacts.append(self.contacts.pop(0))
            self.joining = True
            self.next_join = now + WALK_EVERY
            chores.append(Send(number, address, self._join_frame(), "JOIN"))
        if self.peers and self.looking() and now >= self.next_walk:
            self.walks += 1
            self.next_walk = now + min(WALK_MAX, WALK_EVERY * 2 ** (self.walks - 1))
            peer = self._rng.choice(sorted(self.peers))
            any_slot = self.walks > ANY_SLOT_AFTER
            frame = _walk_frame(self.number, self.address, WALK_HOPS, [], any_slot)
            chores.append(Send(peer, self.peers[peer], frame, "WALK"))
        chores += self._try_lost(now)
        if self.peers and now >= self.next_sync:
            self.next_sync = now + SYNC_EVERY
            order = sorted(self.peers)
            peer = order[self.syncs % len(order)]
            self.syncs += 1
            chores.append(CatchUp(peer, self.peers[peer]))
        return chores

    def _try_lost(self, now: float) -> list[Send]:
        """Try to get back to one lost peer when its turn comes; forget it after ``LOST_FOR``.

        First search for it through the network (``/SEEK``): found, it is in this part
        and nothing needs mending. Not found within ``SEEK_WAIT``, it is cut off (or
        dead): ask it to link across (``/MERGE``), one at a time.
        """
        for number, lost in list(self.lost.items()):
            if now - lost.since > LOST_FOR:
                del self.lost[number]
            elif lost.seek and now >= lost.seek_until:
                lost.seek = ""
                if self.merging is None:
                    return [self._merge(number, lost)]
            elif lost.asks and not lost.seek and self.merging is None and now >= lost.next_try:
                lost.tries += 1
                lost.next_try = now + min(MERGE_MAX, MERGE_FIRST * 2**lost.tries)
                if not self.peers:
                    return [self._merge(number, lost)]
                lost.seek = f"{self.number}-{int(self.started * 1e6)}-{next(self._seek_ids)}"
                lost.seek_until = now + SEEK_WAIT
                self._saw_seek(lost.seek)
                frame = _seek_frame(lost.seek, number, self.number, self.address, SEEK_HOPS)
                return [Send(p, a, frame, "SEEK") for p, a in sorted(self.peers.items())]
        return []

    def _merge(self, number: int, lost: Lost) -> Send:
        self.merging = number
        host, port = self.address
        merge = encode_frame("MERGE", {"node": self.number, "host": host, "port": port})
        return Send(number, lost.address, merge, "MERGE")

    def status(self) -> dict[str, Any]:
        """What ``gossip status`` shows of this node."""
        unread = sum(1 for m in self.messages.values() if not m.read)
        return {
            "node": self.number,
            "peers": sorted(self.peers),
            "wanted": self.wanted,
            "messages": len(self.messages),
            "unread": unread,
            "received": self.received,
            "started": self.started,
        }

    def connect_frame(self) -> bytes:
        """The request to link with this node, as a walk's end or an introduction sends it."""
        host, port = self.address
        return encode_frame("CONNECT", {"node": self.number, "host": host, "port": port})

    def _join_frame(self) -> bytes:
        host, port = self.address
        payload = {
            "node": self.number,
            "host": host,
            "port": port,
            "prefer": [n for n, _ in self.contacts],
            "slots": self.free_slots(),
        }
        return encode_frame("JOIN", payload)


def _relay_payload(message: Message, path: tuple[int, ...]) -> dict[str, Any]:
    return {
        "id": message.id,
        "text": message.text,
        "path": list(path),
        "relays": message.relays,
        "sent": message.sent,
    }


def _swap(to: Peer, old: int, new: Peer) -> Send:
    """Ask ``to`` to take ``new`` as its peer in place of ``old``, to join two parts."""
    number, (host, port) = new
    payload = {"old": old, "node": number, "host": host, "port": port, "merge": True}
    return Send(to[0], to[1], encode_frame("SWAP", payload), "SWAP")


def _seek_frame(seek: str, target: int, origin: int, address: Address, hops: int) -> bytes:
    host, port = address
    payload = {"seek": seek, "target": target, "node": origin, "host": host, "port": port}
    return encode_frame("SEEK", {**payload, "hops": hops})


def _as_peer(item: Any) -> Peer | None:
    """A peer as frames list one, ``[node, host, port]``; None if it is not one."""
    try:
        return address_fields(dict(zip(("node", "host", "port"), item, strict=True)))
    except (FrameError, TypeError, ValueError):
        return None


def _walk_frame(
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
    return encode_frame("WALK", payload)


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
