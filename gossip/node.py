"""One gossip node, with no I/O (the sans-IO core): the front that owns its three concerns.

``Messages`` holds what the node knows, ``Membership`` whom it is linked with, ``Cuts``
the peers it lost and may link with again. ``Node`` wires them together and keeps the
decisions that span them: a copy goes to the current peers, a peer dropped for silence
is remembered, each tick brings pings, walks, joins, searches and catch-up rounds.
``gossip.answers.answer`` turns any frame into calls on it; the server and
``gossip.simulation`` drive the node through that, ``tick``, ``sent``, ``failed`` and
``missed``, and hold catch-up rounds through ``gossip.catchup.Round``.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gossip.commands import Command
from gossip.conditions import PERFECT, Conditions
from gossip.counters import Counters
from gossip.cuts import Cuts
from gossip.journal import Journal, Message
from gossip.membership import Membership
from gossip.messages import Messages
from gossip.protocol import FrameError, encode_frame
from gossip.sends import Address, CatchUp, Endpoint, Send
from gossip.strategy import DEFAULT, Strategy
from gossip.timing import Timing

EAGER_SYNCS = 4
"""How many times as often a node just taken back in holds catch-up rounds."""


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
        contacts: Sequence[Endpoint] = (),
        journal: Journal | None = None,
        timing: Timing | None = None,
        strategy: Strategy = DEFAULT,
        new_id: Callable[[], str] = lambda: os.urandom(16).hex(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.number = number
        self.strategy = strategy
        self.timing = strategy.timing(timing or Timing())
        self.journal = journal or Journal()
        rng = rng or random.Random()
        self.counters = Counters()
        self.members = Membership(
            number,
            max_peers,
            peers,
            address=address,
            wanted=wanted,
            contacts=contacts,
            journal=self.journal,
            timing=self.timing,
            clock=clock,
            rng=rng,
            linked=self._linked,
        )
        self.cuts = Cuts(self.members, self.timing, clock, rng)
        self.messages = Messages(
            number, messages, self.journal, self.timing, new_id, clock, strategy, rng
        )
        self.loaded = len(self.messages)
        """The messages it started with, from its store: what a restart brought back, before
        catch-up adds what it missed."""
        self._clock = clock
        self.conditions: Conditions = PERFECT
        """What the network does to the frames this node sends (``/CONDITIONS``)."""
        self.due: list[Send] = []
        """Relays held for the next round (a strategy with an interval)."""
        self.next_round = self.members.started + strategy.interval
        self.next_sync = self.members.started + rng.uniform(0, self.timing.sync_every)
        self.syncs = 0
        self.eager_until = 0.0
        """Until then, catch-up rounds come four times as often: a node just taken back in
        has missed messages, which its peers offer only once they settled."""
        self.agreed: dict[int, str] = {}
        """Per peer, the digest this node held when a catch-up round found the peer held
        the same. While the node's digest stays so, a round with that peer is skipped: if
        the peer got something since, its digest changed, and it starts the round. An idle
        network trades no digests."""

    @property
    def peers(self) -> dict[int, Address]:
        return self.members.peers

    @property
    def address(self) -> Address:
        return self.members.address

    @address.setter
    def address(self, address: Address) -> None:
        """The server binds first when the port is 0, then tells the node where it listens."""
        self.members.address = address

    # Messages go to the peers of the moment

    def submit(
        self, text: str, relays: int, message_id: str | None = None
    ) -> tuple[str, list[Send]]:
        """A client's new message: its id, and its copies to every peer.

        FrameError once the node has left the network: between its goodbye and its end it
        still listens, and a message taken then would have no peer to go to, and leave
        with it, acknowledged and lost.
        """
        if self.members.left:
            raise FrameError(
                f"node {self.number} has left the network: send the message to another node"
            )
        retry = message_id is not None and message_id in self.messages
        submitted = self.messages.submit(text, relays, message_id, self.members.peers)
        self.counters.submitted += not retry
        return submitted

    def relay(
        self, message_id: str, text: str, path: tuple[int, ...], relays: int, sent: float
    ) -> list[Send]:
        """A copy from a peer: recorded, and passed on to the peers it has not been through."""
        self.counters.copies += 1
        self.counters.duplicates += message_id in self.messages
        sends = self.messages.relay(message_id, text, path, relays, sent, self.members.peers)
        if self.strategy.interval and sends:
            self.due += sends  # relayed in the next round; a client's own copies go at once
            return []
        return sends

    def copy_can_wait(self, message_id: str) -> bool:
        """Whether a copy of this message may be taken a while after it came.

        With the default strategy and no lab conditions, a copy of a message the node
        already holds only adds a path: every peer it could pass it to held the message
        or was sent it when the first copy came (a peer linked since gets it a little
        later, or by catch-up). Taking it later leaves the node free for first copies,
        which carry a message on, while a message spreads."""
        return (
            message_id in self.messages and self.strategy is DEFAULT and not self.conditions.active
        )

    def relay_all(self, copies: list[tuple[str, str, tuple[int, ...], int, float]]) -> list[Send]:
        """Copies that came in one frame (``/RELAYS``), each taken as ``relay`` takes it;
        FrameError, and none taken, if one contradicts another or what the node holds."""
        self.messages.check_texts(copies)
        sends: list[Send] = []
        for copy in copies:
            sends += self.relay(*copy)
        return sends

    # Losing a peer: gone for good, or perhaps cut off

    def drop_peer(self, number: int) -> bool:
        """Forget a peer that left; True if it was one. The node starts looking for another."""
        self.cuts.lost.pop(number, None)
        dropped = self.members.drop(number) is not None
        self.counters.link_breaks += dropped
        return dropped

    def taken_for_dead(self, number: int, now: float) -> bool:
        """A peer dropped this node for silence and said so (``/LEAVE`` with ``silent``);
        True if it was still a peer. Either way it is remembered as this node's own drop
        would remember it: the goodbye gets through only once the silence is over (a short
        cut), and forgetting the sender left neither end asking to link again."""
        lost = self.cuts.lost.get(number)
        address = self.peers.get(number) or (lost.address if lost else None)
        dropped = self.drop_peer(number)
        if address is not None:
            self.cuts.remember(number, address, asks=number > self.number, now=now)
        return dropped

    def missed(self, number: int, now: float) -> bool:
        """An exchange with a peer failed; True if that made the node drop it as dead. It is
        remembered: the end with the lower number asks to link again if it turns up."""
        address = self.members.missed(number)
        if address is None:
            return False
        self.counters.link_breaks += 1
        self.cuts.remember(number, address, asks=number > self.number, now=now)
        return True

    def swap(self, old: int, new: int, address: Address, remember: bool = False) -> bool:
        """A peer hands over its link with this node to another: ``new`` replaces ``old``.

        ``remember``: the swap joins two parts; ``old`` is remembered as lost (the end
        that let this node go will look for it).
        """
        old_address = self.members.swap(old, new, address)
        if old_address is not None and remember:
            self.cuts.remember(old, old_address, asks=False)
        return old_address is not None

    def _linked(self, peer: int) -> None:
        """A new peer: no longer lost; counted as a merge (a lost peer back) or a heal."""
        if self.cuts.lost.pop(peer, None) is not None:
            self.counters.merges += 1
        elif len(self.members.peers) < self.members.wanted:
            self.counters.heals += 1

    # Time passes

    def tick(self, now: float) -> list[Send | CatchUp]:
        """What the node should do of its own accord now: ping, walk, join, search, catch up."""
        if self.members.left:
            return []
        chores: list[Send | CatchUp] = [*self.members.chores(now), *self.cuts.chores(now)]
        if self.strategy.interval and now >= self.next_round:
            self.next_round = now + self.strategy.interval
            chores += self.due
            self.due = []
        peers = self.members.peers
        due = self._unagreed()
        if due and now >= self.next_sync:
            eager = now < self.eager_until
            self.next_sync = now + self.timing.sync_every / (EAGER_SYNCS if eager else 1)
            peer = due[self.syncs % len(due)]
            self.syncs += 1
            chores.append(CatchUp(peer, peers[peer]))
        return chores

    def round_due(self) -> float:
        """When the copies held for the strategy's next round go out (``inf``: none held)."""
        return self.next_round if self.due else math.inf

    def next_due(self) -> float:
        """When ``tick`` next has something to do, as things stand (``inf``: never). The
        I/O sleeps until then, or until something happens that may bring it forward."""
        if self.members.left:
            return math.inf
        due = min(self.members.next_due(), self.cuts.next_due(), self.round_due())
        return min(due, self.next_sync) if self._unagreed() else due

    def agree(self, peer: int, total: str) -> None:
        """A catch-up round found ``peer`` holding the same messages as this node held when
        it asked, whose digest was ``total``. Not the digest now: a message taken while the
        question was out (its copy to the peer perhaps lost) would count as agreed, and no
        round with that peer would come until another message did."""
        self.agreed[peer] = total

    def _unagreed(self) -> list[int]:
        """The peers to run catch-up rounds with, in turn."""
        total = self.messages.digest.total
        return [p for p in sorted(self.members.peers) if self.agreed.get(p) != total]

    def sent(self, send: Send, reply: dict[str, Any], now: float) -> list[Send]:
        """A send went through and this was the reply: learn from it; what to send next."""
        self.members.heard_from(send.peer, now)
        if send.kind == Command.MERGE:
            return self.cuts.merge_answered(send, reply)
        if send.kind == Command.CONNECT:
            self.members.finish_link(send.peer, send.address, reply.get("accepted") is True)
        elif send.kind == Command.PING and reply.get("peer") is False and send.peer in self.peers:
            # It dropped this node: keep links two-way. It may have taken this node for
            # dead while a cut lasted, and not be looking for it: this end looks.
            self.drop_peer(send.peer)
            self.cuts.remember(send.peer, send.address, asks=True, now=now)
        elif send.kind == Command.JOIN:
            self.members.joining = False
            links = reply.get("peers")
            self.members.joined(links if isinstance(links, list) else [])
            if self.peers:
                self.next_sync = now  # back in: catch up on what it missed at once
                self.eager_until = now + 2 * self.timing.settle
        return []

    def failed(
        self, send: Send, now: float, counted: bool = True, refused: bool = False
    ) -> list[Send]:
        """A send did not go through; a peer dropped as dead is told so, in case it lives.

        Not ``counted`` when the connection that carried it reports the loss once for all
        the sends it lost (a broken connection is one sign of death, however busy it was).
        ``refused``: the port refused, so the node is dead, not cut off.
        """
        if send.kind == Command.CONNECT:
            self.members.finish_link(send.peer, send.address, False)
        elif send.kind == Command.JOIN:
            self.members.joining = False
        elif send.kind == Command.MERGE:
            self.cuts.merge_failed(send, refused)
        if counted and self.missed(send.peer, now):
            leave = encode_frame(Command.LEAVE, {"node": self.number, "silent": True})
            return [Send(send.peer, send.address, leave, Command.LEAVE)]
        return []

    def status(self) -> dict[str, Any]:
        """What ``gossip status`` shows of this node."""
        return {
            "node": self.number,
            "peers": sorted(self.members.peers),
            "wanted": self.members.wanted,
            "messages": len(self.messages),
            "loaded": self.loaded,
            "unread": self.messages.unread(),
            "received": self.counters.copies,
            "started": self.members.started,
            "counters": self.counters.report(),
            "strategy": self.strategy.as_dict(),
            "conditions": self.conditions.as_dict(),
        }
