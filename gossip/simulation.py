"""A network of sans-IO nodes in one process: frames carried synchronously, time simulated.

It runs the shipped core exactly as the server does, with no sockets: each frame goes
through the receiver's ``gossip.answers.answer``, each outcome back to the sender's
``Node.sent`` or ``Node.failed``, and catch-up through ``gossip.catchup.Round``. So a
sweep over thousands of seeded runs tests what ships. A dead node's port refuses; its
peers notice once a step, as the server's peer connections report a broken link.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from gossip.answers import answer
from gossip.catchup import Round
from gossip.commands import Command
from gossip.node import Node
from gossip.protocol import Frame, decode_frame, encode_frame
from gossip.sends import Address, CatchUp, Send
from gossip.strategy import DEFAULT, Strategy
from gossip.timing import Timing

STEP = 0.05
"""Simulated seconds between ticks."""

MAX_CHAIN = 10_000
"""Frames one send may set off before the simulation calls it an endless chain."""


class StillClock:
    """Simulated time: it moves only when told to, so ages and deadlines are exact."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def address(number: int) -> Address:
    """Where node ``number`` listens in a simulation (nothing listens there)."""
    return ("127.0.0.1", 7000 + number)


class Simulation:
    """Nodes with a shared clock, some of them dead, linked as ``neighbours`` says.

    After every frame it checks that neither end holds more peers (pending links
    included) than ``max_peers``.
    """

    def __init__(
        self,
        neighbours: Mapping[int, Iterable[int]],
        max_peers: int = 3,
        seed: int = 0,
        timing: Timing | None = None,
        strategy: Strategy = DEFAULT,
    ) -> None:
        self.clock = StillClock()
        self.strategy = strategy
        self.max_peers = max_peers
        self.seed = seed
        self.timing = timing or Timing()
        self.nodes = {n: self.node(n, peers) for n, peers in neighbours.items()}
        self.dead: set[int] = set()
        self.queue: deque[tuple[int, Send]] = deque()
        self.rounds: list[Round] = []
        """Every catch-up round held, in order."""

    def node(self, number: int, peers: Iterable[int], **options: Any) -> Node:
        """A node as this simulation makes them: seeded, on the shared clock."""
        return Node(
            number,
            self.max_peers,
            {p: address(p) for p in peers},
            address=address(number),
            clock=self.clock,
            rng=random.Random(self.seed * 1000 + number),
            timing=self.timing,
            strategy=self.strategy,
            **options,
        )

    @property
    def now(self) -> float:
        return self.clock.now

    def live(self) -> dict[int, Node]:
        return {n: node for n, node in self.nodes.items() if n not in self.dead}

    def start(self, number: int, **options: Any) -> Node:
        """A fresh node (a restart or a new one) with no peers; it is alive from now on."""
        node = self.node(number, [], **options)
        self.nodes[number] = node
        self.dead.discard(number)
        return node

    def kill(self, number: int) -> None:
        self.dead.add(number)

    def run(self, seconds: float) -> None:
        """Let time pass, step by step: each live node's chores, and all they set off."""
        for _ in range(round(seconds / STEP)):
            self.clock.now = round(self.clock.now + STEP, 6)
            for number, node in sorted(self.live().items()):
                for peer in sorted(node.peers.keys() & self.dead):
                    node.missed(peer, self.now)
                for chore in node.tick(self.now):
                    if isinstance(chore, CatchUp):
                        self.catch_up(number, chore)
                    else:
                        self.send(number, chore)

    def send(self, sender: int, send: Send) -> None:
        """Carry ``send`` and everything that follows from it, in order."""
        self.queue.append((sender, send))
        carried = 0
        while self.queue:
            carried += 1
            assert carried <= MAX_CHAIN, "one send set off an endless chain of frames"
            sender, send = self.queue.popleft()
            node = self.nodes[sender]
            node.counters.sent([send])
            reply, refused = self.carry(sender, send)
            if reply is None:
                self.queue.extend((sender, s) for s in node.failed(send, self.now, refused=refused))
            else:
                self.queue.extend((sender, s) for s in node.sent(send, reply, self.now))
            self.check(sender)

    def carry(self, sender: int, send: Send) -> tuple[dict[str, Any] | None, bool]:
        """The reply to one send (None if it did not arrive), and whether it was refused.
        Here only a dead node fails, and its port refuses; a simulation of cuts says more."""
        reply = self.call(send.peer, send.frame)
        return reply, reply is None

    def call(self, target: int, frame: bytes) -> dict[str, Any] | None:
        """The payload of ``target``'s last reply to ``frame``; None if it is dead."""
        replies = self.exchange(target, frame)
        return replies[-1].payload if replies else None

    def exchange(self, target: int, frame: bytes) -> list[Frame]:
        """``target``'s reply frames to ``frame``, as its server would carry out its answer;
        none if it is dead. The frames the answer sends are queued."""
        if target in self.dead:
            return []
        reply = answer(self.nodes[target], decode_frame(frame), self.now)
        while True:
            self.queue.extend((target, s) for s in reply.sends)
            if reply.acked is not None:
                reply = reply.acked(any(s.peer not in self.dead for s in reply.sends))
            elif reply.then is not None:
                self.nodes[target].counters.sent(reply.calls)
                reply = reply.then([self.call(c.peer, c.frame) for c in reply.calls])
            else:
                break
        self.check(target)
        replies = list(reply.replies)
        if reply.written is not None:
            replies += reply.written()
        return [decode_frame(r) for r in replies]

    def catch_up(self, number: int, chore: CatchUp) -> Round:
        """Node ``number`` holds a catch-up round with its peer; the gossip it sets off is
        queued (carried with the next send, or by ``flush``)."""
        trade = Round(self.nodes[number], chore)
        while (request := trade.request()) is not None:
            gossip = trade.take(self.exchange(chore.peer, request.frame), self.now)
            self.queue.extend((number, s) for s in gossip)
        self.rounds.append(trade)
        return trade

    def flush(self) -> None:
        """Carry everything queued."""
        if self.queue:
            self.send(*self.queue.popleft())

    def remove(self, number: int) -> dict[str, Any] | None:
        """``/REMOVE`` node ``number``: goodbyes, then introductions; then it is gone."""
        reply = self.call(number, encode_frame(Command.REMOVE))
        self.dead.add(number)
        self.flush()
        return reply

    def check(self, number: int) -> None:
        node = self.nodes[number]
        held = len(node.peers) + len(node.members.pending)
        assert held <= node.members.max_peers, f"node {number} holds {held} at {self.now}"

    def links(self) -> set[frozenset[int]]:
        """The links between live nodes; every link must be known to both ends."""
        live = self.live()
        found = set()
        for number, node in live.items():
            for peer in node.peers:
                if peer in live:
                    assert number in live[peer].peers, f"{number}-{peer} is one-sided"
                    found.add(frozenset((number, peer)))
        return found
