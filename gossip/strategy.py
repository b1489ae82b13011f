"""How a node spreads messages: the gossip strategy, chosen when the network starts (no I/O).

``push`` relays a copy to its peers as it arrives (the default, and the tool's original
behaviour); ``pull`` relays nothing: nodes learn only by comparing digests with a peer
(catch-up) every round; ``push-pull`` does both.
``fanout`` relays to that many random peers instead of all; ``interval`` relays in rounds
(Serf's gossip interval) instead of at once, and sets the period of pull's digest
exchange; ``ttl`` stops relaying a copy after that many hops. Whatever the strategy,
catch-up still runs, so every message reaches every live node, and every copy records the
path it really took. A client's own message goes to every peer in every strategy.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gossip.errors import GossipError
from gossip.timing import Timing

MODES = ("push", "pull", "push-pull")

PULL_EVERY = 0.2
"""Seconds between digest exchanges in pull modes when no interval is given."""

MAX_INTERVAL_MS = 60_000
MAX_FANOUT = 1000
MAX_TTL = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class Strategy:
    """A node's way of spreading messages; the defaults are plain push to every peer."""

    mode: str = "push"
    fanout: int = 0
    """Peers a message is relayed to, chosen at random, by each node once, when its first
    copy arrives (later copies are recorded, not relayed: an epidemic's fanout); 0: every
    peer, for every new path."""
    interval: float = 0.0
    """Seconds between relay rounds (push) and digest exchanges (pull); 0: relay at once."""
    ttl: int = 0
    """Hops after which a copy is no longer relayed; 0: no limit."""

    @property
    def pushes(self) -> bool:
        return self.mode != "pull"

    @property
    def pulls(self) -> bool:
        return self.mode != "push"

    def choose(self, targets: list[T], hops: int, first: bool, rng: random.Random) -> list[T]:
        """Which of the peers a copy may go to it is relayed to, ``hops`` from its origin;
        ``first``: the first copy of its message here.

        A client's own message (no hop yet) goes to every peer, whatever the strategy: its
        acknowledgement waits for a peer to hold it, so that the origin dying at once does
        not take it away; one peer chosen could be dead, or across a partition, and the
        message would be acknowledged as held by its origin alone, peers or not."""
        if hops == 0:
            return targets
        if not self.pushes or (self.ttl and hops >= self.ttl) or (self.fanout and not first):
            return []
        if self.fanout and len(targets) > self.fanout:
            return rng.sample(targets, self.fanout)
        return targets

    def timing(self, base: Timing) -> Timing:
        """``base`` with the periods this strategy needs: pull exchanges digests every
        round and offers a message at once (there is no push for it to race); rounds
        need the node to look at the clock at least that often."""
        if self.pulls:
            every = self.interval or PULL_EVERY
            settle = 0.0 if self.mode == "pull" else every
            return dataclasses.replace(
                base, sync_every=every, settle=settle, tick=min(base.tick, every)
            )
        if self.interval:
            return dataclasses.replace(base, tick=min(base.tick, self.interval))
        return base

    def as_dict(self) -> dict[str, Any]:
        """As a network's state and ``/STATUS`` carry it (interval in milliseconds)."""
        return {
            "mode": self.mode,
            "fanout": self.fanout,
            "interval_ms": round(self.interval * 1000),
            "ttl": self.ttl,
        }

    def describe(self) -> str:
        """``push to all peers at once``, ``pull: digest exchange ... every 200 ms``, ..."""
        plural = "s" if self.fanout > 1 else ""
        reach = f"{self.fanout} random peer{plural}" if self.fanout else "all peers"
        every = round((self.interval or (PULL_EVERY if self.pulls else 0)) * 1000)
        parts = {
            "push": f"push to {reach} " + (f"every {every} ms" if every else "at once"),
            "pull": f"pull: digest exchange with a peer every {every} ms",
            "push-pull": (
                f"push-pull: push to {reach} "
                + (f"every {every} ms" if self.interval else "at once")
                + f", digest exchange every {every} ms"
            ),
        }
        text = parts[self.mode]
        hops = "hop" if self.ttl == 1 else "hops"
        return text + (f", at most {self.ttl} {hops}" if self.ttl else "")


DEFAULT = Strategy()


def stored(fields: Mapping[str, Any]) -> Strategy:
    """The strategy a network's state saved (``Strategy.as_dict``), already checked."""
    if not fields:
        return DEFAULT
    return Strategy(
        mode=str(fields.get("mode", "push")),
        fanout=int(fields.get("fanout", 0)),
        interval=int(fields.get("interval_ms", 0)) / 1000,
        ttl=int(fields.get("ttl", 0)),
    )


FLAGS = {"mode": "--mode", "fanout": "--fanout", "interval_ms": "--interval", "ttl": "--ttl"}
"""How the command line names each setting; a file names them by their keys."""


def strategy_from(
    fields: Mapping[str, Any], in_file: bool = False, also: tuple[str, ...] = ()
) -> Strategy:
    """A strategy from command-line options or a file's table (strings or numbers), with
    ``interval_ms`` in milliseconds; GossipError saying which setting is wrong, named as
    the file (``in_file``) or the command line names it. ``also``: the other settings
    the table takes (an experiment's ``name``), for the message about one it does not."""
    unknown = sorted(set(fields) - set(FLAGS))
    if unknown:
        known = ", ".join([*also, *FLAGS])
        raise GossipError(f"unknown strategy setting {unknown[0]!r}: use {known}")
    if in_file:  # a file's numbers are numbers: "100" is a typo there, not a choice
        wrong = next((k for k in ("fanout", "interval_ms", "ttl") if _not_whole(fields, k)), None)
        if wrong is not None:
            raise GossipError(f"{wrong} must be a whole number, not {fields[wrong]!r}")
    names = {key: key if in_file else flag for key, flag in FLAGS.items()}
    mode = fields.get("mode")
    mode = "push" if mode is None else mode
    if mode not in MODES:
        raise GossipError(f"{names['mode']} must be one of {', '.join(MODES)}, not {mode!r}")
    pushing_only = [names[k] for k in ("fanout", "ttl") if fields.get(k) is not None]
    if mode == "pull" and pushing_only:
        raise GossipError(
            f"{pushing_only[0]} shapes pushing, and {names['mode']} pull pushes nothing: "
            "leave it out, or use push-pull"
        )
    unit = "" if in_file else "ms"  # --interval 100ms; a file's 100 is a number
    return Strategy(
        mode=str(mode),
        fanout=_whole(fields.get("fanout"), names["fanout"], MAX_FANOUT),
        interval=_whole(fields.get("interval_ms"), names["interval_ms"], MAX_INTERVAL_MS, unit)
        / 1000,
        ttl=_whole(fields.get("ttl"), names["ttl"], MAX_TTL),
    )


def _not_whole(fields: Mapping[str, Any], key: str) -> bool:
    """Whether a file's table gives ``key`` as something other than a whole number."""
    return key in fields and type(fields[key]) is not int


def _whole(raw: Any, name: str, highest: int, unit: str = "") -> int:
    if raw is None:
        return 0
    text = str(raw).removesuffix(unit)
    signed = text.removeprefix("-")
    if isinstance(raw, bool) or not (signed.isascii() and signed.isdigit()):
        kind = f"whole number of milliseconds, as 100 or 100{unit}" if unit else "whole number"
        raise GossipError(f"{name} must be a {kind}, not {raw!r}")
    digits = signed.lstrip("0") or "0"
    short = len(digits) <= len(str(highest))  # int() refuses 4300 digits and more
    value = (-1 if text.startswith("-") else 1) * int(digits) if short else highest + 1
    if not 1 <= value <= highest:
        shown = text if len(text) <= 20 else f"{text[:20]}…"
        raise GossipError(f"{name} must be between 1 and {highest}, not {shown}")
    return value
