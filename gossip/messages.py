"""The messages a node holds: copies and their paths, read marks, and what catch-up trades.

No I/O: methods take frames' fields and the time and return the relays to send.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice, takewhile
from typing import Any

from gossip.commands import Command
from gossip.digest import Digest
from gossip.journal import Journal, Message
from gossip.protocol import (
    MAX_FRAME_BYTES,
    MAX_RELAYS,
    Copy,
    FrameError,
    MessageView,
    encoded_row,
    messages_frames,
    new_tuple,
    relay_frame,
)
from gossip.sends import Address, Send
from gossip.strategy import DEFAULT, Strategy
from gossip.timing import Timing

MAX_LISTED_IDS = 1000
"""Most ids one catch-up reply lists (with quoting, well inside a frame)."""

LISTING_KEPT = 0.5
"""Seconds a catch-up listing of ids is reused, and never as long as ``Timing.settle``."""

MAX_SHARED_WALKS = 4096
"""Most walks a node keeps to share between copies (a few hundred KiB at most)."""

MAX_COPIES = 1024
"""Most copies of one message a node records. Each peer sends a message at most
``relays`` times, so only a peer that lies reaches this: past it, checking each new walk
against every recorded one held the node's lock for seconds."""

MAX_TRADED = 500
"""Most messages pulled or pushed in one catch-up round; the next round does the rest."""


class Messages(Mapping[str, Message]):
    """Node ``number``'s messages by id, with their digest; read like a dict."""

    def __init__(
        self,
        number: int,
        messages: Iterable[Message],
        journal: Journal,
        timing: Timing,
        new_id: Callable[[], str],
        clock: Callable[[], float],
        strategy: Strategy = DEFAULT,
        rng: random.Random | None = None,
    ) -> None:
        self.number = number
        self.strategy = strategy
        self._rng = rng or random.Random()
        self.held: dict[str, Message] = {m.id: m for m in messages}
        self.digest = Digest(self.held)
        self.journal = journal
        self.timing = timing
        self._new_id = new_id
        self._clock = clock
        self._listing: tuple[frozenset[int], float, list[str]] | None = None
        """The last listing ``_settled_from`` sorted: its buckets, when, the ids."""
        self._walks: dict[tuple[int, ...], tuple[int, ...]] = {}
        """Each walk a copy took, once: in a network that keeps its shape, copies of every
        message take the same few walks, and a node holds thousands of copies."""

    def __getitem__(self, message_id: str) -> Message:
        return self.held[message_id]

    def __contains__(self, message_id: object) -> bool:
        return message_id in self.held  # Mapping's would look it up and catch a KeyError

    def __iter__(self) -> Iterator[str]:
        return iter(self.held)

    def __len__(self) -> int:
        return len(self.held)

    def submit(
        self, text: str, relays: int, message_id: str | None, peers: dict[int, Address]
    ) -> tuple[str, list[Send]]:
        """A client's new message: record it with the path [self], copy it to every peer.

        A client that retries gives the id it chose the first time: a message this node
        already holds under that id is the same submission, recorded and sent once.
        """
        if not 1 <= relays <= MAX_RELAYS:
            raise FrameError(f"relays must be between 1 and {MAX_RELAYS}")
        held = self.held.get(message_id) if message_id else None
        if held is not None:
            if held.text != text:
                raise FrameError(f"message id {message_id} is taken by another message")
            return held.id, []
        now = self._clock()
        message = Message(message_id or self._new_id(), text, now, relays, [])
        return message.id, self._accept_copy(message, (), now, peers)

    def discard(self, message_id: str) -> None:
        """Forget a message whose submission failed (it could not be stored): a message
        spreads only once it is durable at its origin."""
        if self.held.pop(message_id, None) is not None:
            self.digest.remove(message_id)

    def relay(
        self,
        message_id: str,
        text: str,
        path: tuple[int, ...],
        relays: int,
        sent: float,
        peers: dict[int, Address],
    ) -> list[Send]:
        """A copy from a peer: record its path and pass it on where the relay budget allows.

        A path that already holds this node is neither recorded nor forwarded, which is
        what bounds the spread: every path is a walk without repeats.
        """
        if self.number in path:
            return []
        message = self.held.get(message_id)
        if message is None:
            message = Message(message_id, text, sent, relays, [])
        elif message.text != text:
            raise FrameError(f"message {message_id} already held with another text")
        elif len(message.copies) >= MAX_COPIES:
            return []  # enough walks recorded: more would only cost the node time and memory
        elif any(c.path[:-1] == path for c in message.copies):
            return []  # the same walk again (catch-up crossing gossip): one copy took it
        return self._accept_copy(message, path, self._clock(), peers)

    def check_texts(self, copies: list[tuple[str, str, tuple[int, ...], int, float]]) -> None:
        """FrameError if one of these copies gives a message another text than the node
        holds, or than another of them: checked before any of a frame's copies is taken."""
        texts: dict[str, str] = {}
        for message_id, text, *_ in copies:
            held = self.held.get(message_id)
            if texts.setdefault(message_id, text if held is None else held.text) != text:
                raise FrameError(f"message {message_id} already held with another text")

    def _accept_copy(
        self, message: Message, path: tuple[int, ...], now: float, peers: dict[int, Address]
    ) -> list[Send]:
        """Record the copy, and a ``message`` not held yet, and pass it on. The frame that
        passes it on is made first: a copy whose onward frame would not fit (a walk of
        thousands) is refused with nothing kept, as one kept could be neither passed on,
        nor traded in catch-up, nor listed."""
        walk = (*path, self.number)
        targets = [
            (peer, address)
            for peer, address in peers.items()
            if peer not in walk and message.relayed.count(peer) < message.relays
        ]
        if self.strategy is not DEFAULT:
            first = not message.copies
            targets = self.strategy.choose(targets, len(path), first, self._rng)
        frame = b""
        # A copy passed on (a path), not a client's own: no one waits on its answer. One
        # passed on to no one is framed only if it might not fit (each character of its
        # text is 6 bytes at most, each node of its walk 11), to be refused if it does not.
        if targets or 6 * len(message.text) + 11 * len(walk) + 256 > MAX_FRAME_BYTES:
            frame = relay_frame(
                message.id, message.text, walk, message.relays, message.sent, later=bool(path)
            )
        if message.id not in self.held:
            self.digest.add(message.id)
            self.held[message.id] = message
            self.journal.message_added(message)
        walk = self._walks.get(walk) or self._walk_kept(walk)
        copy = new_tuple(Copy, (walk, now))
        message.copies.append(copy)
        self.journal.copy_added(message.id, copy)
        if not targets:
            return []
        message.relayed += tuple(peer for peer, _ in targets)
        return [new_tuple(Send, (peer, address, frame, Command.RELAY)) for peer, address in targets]

    def _walk_kept(self, walk: tuple[int, ...]) -> tuple[int, ...]:
        """``walk``, kept to be shared by the copies that take it later, while room lasts."""
        if len(self._walks) < MAX_SHARED_WALKS:
            self._walks[walk] = walk
        return walk

    def listing(self, which: str, mark: bool = True) -> Listing:
        """Messages oldest first, filtered by read state, as the rows of ``/MSGS`` frames:
        those a read already encoded, if still right, and the rest to encode when the
        frames are made (outside the node's lock). A network watched by polling reads each
        message over and over. With ``mark``, they are marked read once the reader has
        them (``Listing.written``): a read that failed leaves them unread."""
        chosen = self._chosen(which)
        rows: list[tuple[Message, MessageView | None, bytes]] = []
        for m in chosen:
            kept = m.row
            if kept is not None and kept[0] == len(m.copies) and kept[1] == m.read:
                rows.append((m, None, kept[2]))
            else:
                rows.append((m, m.view(), b""))
        return Listing(rows, (lambda: self._mark(chosen)) if mark else None)

    def _chosen(self, which: str) -> list[Message]:
        return [m for m in self.held.values() if which == "all" or (which == "read") == m.read]

    def mark_read(self, ids: Iterable[str]) -> int:
        """Mark these messages read (a reader showed them); how many were unread. Ids
        the node does not hold are passed over."""
        return self._mark([m for i in dict.fromkeys(ids) if (m := self.held.get(i)) is not None])

    def _mark(self, chosen: list[Message]) -> int:
        fresh = [m.id for m in chosen if not m.read]
        for message in chosen:
            message.read = True
        if fresh:
            self.journal.marked_read(fresh)
        return len(fresh)

    def unread(self) -> int:
        return sum(1 for m in self.held.values() if not m.read)

    # Catch-up: compare holdings with a peer, then trade what one side lacks

    def settled_ids(
        self, buckets: Iterable[int], now: float, after: str = ""
    ) -> tuple[list[str], bool]:
        """Ids in these digest buckets held long enough to offer, in id order after ``after``.

        At most MAX_LISTED_IDS of them; the flag says whether that was the last of them.
        The caller pages on from the last id listed.
        """
        settled = self._settled_from(buckets, now, after)
        page = list(islice(settled, MAX_LISTED_IDS))
        return page, next(settled, None) is None

    def _settled_from(self, buckets: Iterable[int], now: float, after: str) -> Iterator[str]:
        """The ids in these buckets after ``after`` held at least ``settle``, in id order.

        A round pages through them, each page asking again: the sorted ids of the buckets
        are kept for ``LISTING_KEPT`` seconds, less than ``settle`` (an id that came since
        cannot have settled yet), so a flood's rounds sort them once, not once a page.
        Whether each has settled is asked now: one the listing left out, its peer would
        take for missing and push again.
        """
        chosen = frozenset(buckets)
        kept = self._listing
        fresh_for = min(LISTING_KEPT, self.timing.settle)  # pull mode settles at once
        if kept is None or kept[0] != chosen or not 0 <= now - kept[1] < fresh_for:
            kept = self._listing = (chosen, now, sorted(self.digest.in_buckets(chosen)))
        ids, settle, held = kept[2], self.timing.settle, self.held
        for i in islice(ids, bisect_right(ids, after), None):
            message = held.get(i)
            if message is not None and now - message.copies[0].arrived >= settle:
                yield i

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
        lack = [i for i in theirs if i not in self.held][:MAX_TRADED]
        mine = self._settled_from(buckets, now, after)
        if not complete:
            mine = takewhile(lambda i: bool(theirs) and i <= theirs[-1], mine)
        known = set(theirs)
        return lack, list(islice((i for i in mine if i not in known), MAX_TRADED))

    def offer(self, ids: Iterable[str], to: int) -> list[dict[str, Any]]:
        """``/RELAY`` payloads handing these messages to node ``to`` during catch-up.

        Each carries the path of the first copy that did not pass through ``to``, so
        the receiver records a path the message really took: here, then to it. If every
        copy here passed through ``to`` (it lost its store), it gets back the part of the
        first path that led to it: for a message it sent itself, the empty path.
        """
        payloads = []
        for message_id in ids:
            message = self.held.get(message_id)
            if message is None or not message.copies:
                continue
            copy = next((c for c in message.copies if to not in c.path), None)
            if copy is not None:
                payloads.append(relay_payload(message, copy.path))
            else:
                first = message.copies[0].path
                payloads.append(relay_payload(message, first[: first.index(to)]))
        return payloads


class Listing:
    """The messages a read lists, as ``/MSGS`` frames once asked for."""

    def __init__(
        self,
        rows: list[tuple[Message, MessageView | None, bytes]],
        mark: Callable[[], object] | None = None,
    ) -> None:
        self.rows = rows
        """Each message, with what of it to list: a view to encode, or its encoded row."""
        self._mark = mark

    def written(self) -> None:
        """The reader has every frame: its messages are now read, if the read marks them.
        Hold the node's lock."""
        if self._mark is not None:
            self._mark()
            self._mark = None

    def __len__(self) -> int:
        return len(self.rows)

    def frames(self) -> Iterator[bytes]:
        """The frames; each row encoded here is kept on its message for the next read
        (safe without the lock: the next read checks it still shows the message)."""
        return messages_frames(self._encoded())

    def _encoded(self) -> Iterator[bytes]:
        for message, view, row in self.rows:
            if view is not None:
                row = encoded_row(view)
                message.row = (len(view.copies), view.read, row)
            yield row


def relay_payload(message: Message, path: tuple[int, ...]) -> dict[str, Any]:
    """The ``/RELAY`` fields handing on ``message`` as it came along ``path``."""
    return {
        "id": message.id,
        "text": message.text,
        "path": list(path),
        "relays": message.relays,
        "sent": message.sent,
    }
