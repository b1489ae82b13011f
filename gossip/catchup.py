"""One catch-up round with a peer, as a conversation the I/O drives (no I/O here).

The round compares digests (``/SYNC``); if they differ, it pages through the peer's ids
in the differing buckets (``/IDS``), pulls what this node lacks (``/PULL``, answered by
``/COPY`` frames) and pushes what the peer lacks (``/RELAY``), until a page is the last or
``MAX_TRADED`` messages were traded; the next round does the rest. The driver asks for
``request()``, sends it, and hands the peer's reply frames to ``take()``, which may set
off gossip (a pulled copy is passed on like a relayed one).
"""

from __future__ import annotations

from collections import deque

from gossip.commands import Command
from gossip.messages import MAX_LISTED_IDS, MAX_TRADED
from gossip.node import Node
from gossip.protocol import Frame, encode_frame, id_list, relay_fields
from gossip.sends import CatchUp, Send


class Round:
    """This node's side of one round with ``chore.peer``. Call it with the node's lock held."""

    def __init__(self, node: Node, chore: CatchUp) -> None:
        self.node = node
        self.peer = chore.peer
        self.address = chore.address
        self.pulled: list[str] = []
        self.pushed: list[str] = []
        """The ids of the messages taken from the peer, and given to it."""
        self.pages = 0
        """How many ``/IDS`` pages the round read: paging is what gets it past the first."""
        self.buckets: list[int] = []
        self.after = ""
        """The last id of the page before: the next page lists the ids after it."""
        self.more = True
        """Pages of differing ids remain to be read."""
        self.total = node.messages.digest.total
        """The digest this round's ``/SYNC`` carries: what a peer that answers "the same"
        holds. Messages the node takes while the question is out are not in it."""
        self._queue: deque[Send] = deque([self._send(Command.SYNC, {"total": self.total})])
        self._asked: Send | None = None
        self._gifts: deque[str] = deque()
        """The ids of the queued pushes, in order."""

    def request(self) -> Send | None:
        """The next frame to send the peer; None when the round is over."""
        self._asked = self._queue.popleft() if self._queue else None
        if self._asked is not None:
            self.node.counters.frames_out[self._asked.kind] += 1
        return self._asked

    def take(self, replies: list[Frame], now: float) -> list[Send]:
        """The peer's reply frames to the last request: the gossip they set off.

        Raises FrameError on a reply that breaks the protocol: the round ends there.
        """
        asked = self._asked
        if asked is None:
            return []
        self._asked = None
        answer = replies[-1].payload if replies and replies[-1].command == Command.OK else None
        if answer is None:
            self._queue.clear()  # refused, or did not arrive: the round ends
            return []
        gossip: list[Send] = []
        if asked.kind == Command.SYNC:
            self._compared(answer)
        elif asked.kind == Command.IDS:
            self._listed(answer, now)
        elif asked.kind == Command.PULL:
            gossip = self._pulled(replies)
        elif asked.kind == Command.RELAY:
            self.pushed.append(self._gifts.popleft())
        if not self._queue:
            if self._traded() >= MAX_TRADED:
                # A backlog (a node back after a while): the next round comes at once.
                self.node.next_sync = min(self.node.next_sync, now)
            elif self.more:
                self._queue.append(self._ids())
        return gossip

    def _compared(self, answer: dict[str, object]) -> None:
        if answer.get("same") is True:
            self.node.agree(self.peer, self.total)
        if answer.get("same") is not False:
            self.more = False  # the same messages (almost always), or a peer that says why not
            return
        theirs = answer.get("buckets")
        differing = self.node.messages.digest.differing
        self.buckets = differing(theirs if isinstance(theirs, list) else [])

    def _ids(self) -> Send:
        return self._send(Command.IDS, {"buckets": self.buckets, "after": self.after})

    def _listed(self, listing: dict[str, object], now: float) -> None:
        """One page of the peer's ids: queue the pull and the pushes it calls for."""
        self.pages += 1
        ids = id_list(listing, "ids", MAX_LISTED_IDS)
        complete = listing.get("complete") is True or not ids
        budget = MAX_TRADED - self._traded()
        messages = self.node.messages
        lack, extra = messages.compare(ids, complete, self.buckets, now, self.after)
        lack = lack[:budget]
        gifts = messages.offer(extra[: budget - len(lack)], self.peer)
        if lack:
            self._queue.append(self._send(Command.PULL, {"node": self.node.number, "ids": lack}))
        self._queue.extend(self._send(Command.RELAY, gift) for gift in gifts)
        self._gifts.extend(gift["id"] for gift in gifts)
        if complete or ids[-1] <= self.after:
            self.more = False  # the last page, or a peer that does not page: stop either way
        else:
            self.after = ids[-1]

    def _pulled(self, replies: list[Frame]) -> list[Send]:
        """The copies a pull brought: each taken as a copy the peer relayed. All are
        checked before any is taken: one refused midway lost the onward copies of those
        taken before it (their relay budget spent, their sends dropped with the round)."""
        copies = [relay_fields(f.payload) for f in replies if f.command == Command.COPY]
        self.node.messages.check_texts(copies)
        sends: list[Send] = []
        for fields in copies:
            self.node.counters.pulls += fields[0] not in self.node.messages
            sends += self.node.relay(*fields)
            self.pulled.append(fields[0])
        return sends

    def _traded(self) -> int:
        return len(self.pulled) + len(self.pushed)

    def _send(self, command: Command, payload: dict[str, object]) -> Send:
        return Send(self.peer, self.address, encode_frame(command, payload), command)
