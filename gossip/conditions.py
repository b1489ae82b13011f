"""Network conditions a node imposes on the frames it sends (no I/O): delay, jitter, loss,
a partition. Injected inside the nodes, so they work the same on one machine and across
hosts, where ``tc netem`` may not be available.

The command line sends every node the conditions in force (``/CONDITIONS``); the server
asks ``fate`` for each frame it is about to hand over. A partition blocks every frame
between its groups both ways, as a cut cable would: the sender's node sees them fail
and, in time, drops the peer and heals on its own side, then merges once it heals.
Loss drops only the frames that carry messages (relays and catch-up's), as a datagram
gossip would lose them: links and pings ride TCP, which would resend them. A paused
node is the command line's business (SIGSTOP); it is kept here to be shown.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gossip.commands import Command
from gossip.errors import GossipError, UsageError
from gossip.protocol import FrameError
from gossip.ranges import compress_ranges
from gossip.sends import Send

MAX_DELAY = 2.0
"""Longest delay plus jitter, in seconds: a peer's replies overdue for ``reply_timeout``
(3 s) would count as a dead link."""

MAX_NODES = 1 << 31

LOSSY = frozenset({Command.RELAY, Command.RELAYS, Command.SYNC, Command.IDS, Command.PULL})
"""The frames loss may drop: those that carry messages or compare them."""

EXCHANGE_TRIES = 20
"""Most times a request waited on (a catch-up round's step) is sent while it or its reply
is lost, within ``MAX_DELAY`` in all. Sent once, a round of three steps at 40 % loss got
through once in twenty tries (each step lost either way), and a node short of a message
waited up to a minute for it; five tries still left a round at 60 % loss through once in
five."""

RETRY_AFTER = 0.05
"""Seconds at least before a lost request is sent again (its reply is then overdue)."""


@dataclass(frozen=True)
class Conditions:
    """What the network does to frames; the defaults are a perfect network."""

    delay: float = 0.0
    """Seconds each frame waits before it goes out."""
    jitter: float = 0.0
    """Up to this many seconds more or less, at random."""
    loss: float = 0.0
    """Chance (0-1) that a frame carrying messages is lost."""
    links: tuple[tuple[int, int], ...] = ()
    """The links delay, jitter and loss apply to (either way); none: every link."""
    groups: tuple[tuple[int, ...], ...] = ()
    """A partition: frames pass only between nodes of one group (nodes in no group form
    one more); none: no partition."""
    paused: tuple[int, ...] = ()
    """Nodes whose process the command line stopped (SIGSTOP)."""

    @property
    def active(self) -> bool:
        """Whether any frame may be held, lost or blocked (the hot path asks only this)."""
        return bool(self.delay or self.jitter or self.loss or self.groups)

    def blocked(self, sender: int, receiver: int) -> bool:
        """Whether a partition lies between these two nodes."""
        if not self.groups:
            return False
        return self._group(sender) != self._group(receiver)

    def _group(self, node: int) -> int:
        return next((i for i, g in enumerate(self.groups) if node in g), -1)

    def fate(self, sender: int, send: Send, rng: random.Random) -> float | None:
        """What becomes of a frame ``sender`` sends: None if it is lost or blocked, else
        the seconds it waits before it goes out."""
        if self.blocked(sender, send.peer):
            return None
        link = (sender, send.peer)
        if self.links and link not in self.links and link[::-1] not in self.links:
            return 0.0
        if self.loss and send.kind in LOSSY and rng.random() < self.loss:
            return None
        if not self.jitter:
            return self.delay
        return max(0.0, self.delay + rng.uniform(-self.jitter, self.jitter))

    def exchange(self, sender: int, send: Send, rng: random.Random) -> float | None:
        """What becomes of a request ``sender`` waits on, and its reply: None if every try
        was lost or a partition blocks it, else the seconds until the reply is back. A try
        lost either way is sent again once its reply is overdue (twice the longest delay,
        and at least ``RETRY_AFTER``), as a transport would, up to ``EXCHANGE_TRIES`` and
        while the tries lost take no more than ``MAX_DELAY`` in all."""
        if self.blocked(sender, send.peer):
            return None
        waited, overdue = 0.0, max(RETRY_AFTER, 2 * (self.delay + self.jitter))
        for _ in range(EXCHANGE_TRIES):
            there, back = self.fate(sender, send, rng), self.fate(sender, send, rng)
            if there is not None and back is not None:
                return waited + there + back
            waited += overdue
            if waited + overdue > MAX_DELAY:
                break  # a step held that long would hold a sending thread from the rest
        return None

    def as_dict(self) -> dict[str, Any]:
        """As ``/CONDITIONS``, ``/STATUS`` and a network's state carry it (milliseconds,
        percent)."""
        return {
            "delay_ms": round(self.delay * 1000, 3),
            "jitter_ms": round(self.jitter * 1000, 3),
            "loss_percent": round(self.loss * 100, 3),
            "links": [list(link) for link in self.links],
            "groups": [list(group) for group in self.groups],
            "paused": list(self.paused),
        }

    def describe(self, live: list[int] | None = None) -> str:
        """One line for ``gossip status``: what is in force, or that nothing is. Given the
        ``live`` nodes, a partition shows its sides as they are: the live nodes of each
        group, and those in none as one more."""
        parts = []
        if self.delay or self.jitter or self.loss:
            netem = []
            if self.delay or self.jitter:
                netem.append(f"delay {self.delay * 1000:g} ms")
                netem[-1] += f" ± {self.jitter * 1000:g} ms" if self.jitter else ""
            if self.loss:
                netem.append(f"loss {self.loss * 100:g} %")
            where = ", ".join(f"{a}-{b}" for a, b in self.links) if self.links else "every link"
            parts.append(f"{', '.join(netem)} on {where}")
        if self.groups:
            groups = [list(g) for g in self.groups]
            rest: list[int] = []
            if live is not None:
                rest = sorted(set(live).difference(*groups))
                groups = [kept for g in groups if (kept := [n for n in g if n in live])]
            shown = [compress_ranges(g) for g in groups]
            shown += [f"{compress_ranges(rest)} (in no group)"] if rest else []
            parts.append("partition " + " | ".join(shown))
        if self.paused:
            parts.append(f"paused {compress_ranges(list(self.paused))}")
        return "; ".join(parts) if parts else "none (a perfect network)"


PERFECT = Conditions()


def sides(links: Mapping[int, list[int]], groups: list[list[int]]) -> list[dict[int, list[int]]]:
    """The topology ``links`` as seen within each group of a partition (nodes in no group
    are one more side): what the supervisor may mend without crossing it."""
    grouped = {n: i for i, g in enumerate(groups) for n in g}
    found: dict[int, dict[int, list[int]]] = {}
    for node, peers in links.items():
        side = grouped.get(node, -1)
        found.setdefault(side, {})[node] = [p for p in peers if grouped.get(p, -1) == side]
    return [found[s] for s in sorted(found)]


RANGE = re.compile(r"^(\d{1,30})(?:-(\d{1,30}))?$", re.ASCII)
"""A node or a range of nodes as people write them (``3``, ``1-8``): ASCII digits, at most
30 of them (int() of thousands of digits raises)."""


def group(raw: str, highest: int) -> list[int]:
    """``1-8`` or ``1,3,5-7``: a group of nodes, none above ``highest``, checked before a
    range is spelled out (so ``1-99999999999`` is refused, not counted)."""
    nodes: list[int] = []
    named: set[int] = set()
    shown = raw if len(raw) <= 40 else f"{raw[:37]}..."
    for part in raw.split(","):
        match = RANGE.match(part.strip())
        if not match:
            raise UsageError(f"a partition group is nodes like 1-8 or 1,3,5-7, not {shown!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise UsageError(f"a range of nodes runs low to high, as in 1-8, not {part!r}")
        if low < 1:  # wrong whatever the network, as node 0 is everywhere else
            raise UsageError(f"nodes are numbered from 1: there is no node {low}")
        if high > highest:
            raise GossipError(f"node {high} does not exist: the nodes are 1-{highest} at most")
        span = range(low, high + 1)  # no more than highest nodes, each once: bounded work
        if len(nodes) + len(span) > highest or not named.isdisjoint(span):
            raise UsageError(f"a partition group names a node twice: {shown!r}")
        named.update(span)
        nodes += span
    return nodes


def kept(payload: Mapping[str, Any]) -> Conditions:
    """The conditions a network's state keeps (``as_dict`` form); a perfect network if
    they cannot be read (a state file edited by hand)."""
    try:
        return conditions_from(payload)
    except FrameError:
        return PERFECT


def conditions_from(payload: Mapping[str, Any]) -> Conditions:
    """Conditions from their ``as_dict`` form; FrameError naming a field that is wrong."""
    delay = _number(payload, "delay_ms", MAX_DELAY * 1000) / 1000
    jitter = _number(payload, "jitter_ms", MAX_DELAY * 1000) / 1000
    if delay + jitter > MAX_DELAY:
        raise FrameError(f"delay plus jitter must be at most {MAX_DELAY * 1000:g} ms")
    loss = _number(payload, "loss_percent", 100) / 100
    links = tuple(_pair(link) for link in _list(payload, "links"))
    groups = tuple(tuple(_nodes(group, "groups")) for group in _list(payload, "groups"))
    seen = [n for g in groups for n in g]
    if len(seen) != len(set(seen)):
        raise FrameError("field 'groups' must not name a node twice")
    paused = tuple(_nodes(payload.get("paused", []), "paused"))
    if len(set(paused)) != len(paused):
        raise FrameError("field 'paused' must not name a node twice")
    return Conditions(delay, jitter, loss, links, groups, paused)


def _number(payload: Mapping[str, Any], name: str, highest: float) -> float:
    value = payload.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= highest:
        raise FrameError(f"field {name!r} must be a number between 0 and {highest:g}")
    return float(value)


def _list(payload: Mapping[str, Any], name: str) -> list[Any]:
    value = payload.get(name, [])
    if not isinstance(value, list) or len(value) > 10_000:
        raise FrameError(f"field {name!r} must be a list")
    return value


def _nodes(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or len(value) > 100_000:
        raise FrameError(f"field {name!r} must hold lists of node numbers")
    if not all(type(n) is int and 1 <= n < MAX_NODES for n in value):
        raise FrameError(f"field {name!r} must hold node numbers")
    return value


def _pair(value: Any) -> tuple[int, int]:
    nodes = _nodes(value, "links")
    if len(nodes) != 2:
        raise FrameError("field 'links' must hold pairs of node numbers")
    return nodes[0], nodes[1]
