"""The look at the whole network that mends what local healing cannot, and ``gossip mend``.

A node knows only its peers, so it cannot see that the network has split, nor help a node
whose peers all died. A party that sees the whole network can: it asks every node for its
peers and carries out the plan of ``gossip.repair``. Two parties take that look, with the
same ``Mender``:

- a host's supervisor (``gossip.supervisor``), which also owns that host's nodes;
- ``gossip mend``, a foreground process of its own for a network with no supervisor (its
  nodes run as ``gossip start-node``, one per container): it holds no node, and no node
  holds more than its peers. One mender per network (one Compose service, one replica).

While the mender is down the nodes gossip and heal locally as ever; once it is back, its
next looks mend the rest, as when a host's supervisor dies and a new one adopts its nodes.
"""

from __future__ import annotations

import logging
import threading
import time

from gossip import repair
from gossip.conditions import sides
from gossip.foreground import log_to_stdout, stop_on_signals
from gossip.network import Look, carry_out, reported
from gossip.state import NetworkState

REPAIR_EVERY = 1.0
LOOKED_AT_PER_SECOND = 128
"""Seconds between looks at the whole network, and how many nodes a second of looking
may ask at most: a look costs each node about half a millisecond, so a look every second
at 1,024 nodes would keep a third of a core busy. Large networks are looked at less
often (every 8 s at 1,024 nodes); their nodes heal themselves in between."""

CONFIRM_AFTER = 0.3
"""Seconds to the next look once one found the network split: a split lasts, so a second
look soon after is enough to act on it."""

REPAIR_FIRST = 2.0
"""Seconds after the start before the first look: the nodes link up first."""

STATUS_TIMEOUT = 1.0
"""Seconds a node gets to answer a look; one that does not is down as far as mending goes."""

LOG_EVERY = 10.0
"""Seconds before the same plan, carried out again (its steps refused), is logged again."""

log = logging.getLogger("gossip.mend")


class Mender:
    """What one party that sees the whole network remembers from look to look: how long
    what it sees has lasted (``repair.Watch``), and what it last logged."""

    def __init__(self, who: str) -> None:
        self.who = who
        """How its log lines name the party: ``supervisor``, ``mender``."""
        self.watch = repair.Watch()
        self.side_watches: dict[int, repair.Watch] = {}
        """While the lab partitions the network: a watch on each side."""
        self.last_steps: list[repair.Step] = []
        self.last_log = 0.0

    def mend(self, plan: NetworkState, look: Look, local: set[int]) -> None:
        """Act on one look (``network.reported``): join the parts and pair nodes short of
        peers once that has lasted, if this party mends now (it holds the lowest-numbered
        node that answers; a mender holds them all)."""
        links, wanted = look.links, look.wanted
        if not repair.mends_here(links, local):
            self.forget()  # another host's supervisor mends
            return
        groups = look.partition(plan)
        if groups:  # the lab's partition: each side is mended on its own, never across it
            for i, side in enumerate(sides(links, groups)):
                watch = self.side_watches.setdefault(i, repair.Watch())
                for step in watch.look(side, plan.max_peers, wanted):
                    carry_out(step, plan)
            return
        self.side_watches.clear()
        steps = self.watch.look(links, plan.max_peers, wanted)
        now = time.monotonic()
        if steps and (steps != self.last_steps or now - self.last_log >= LOG_EVERY):
            log.warning("%s: mending the network %s: %s", self.who, links, steps)
            self.last_steps, self.last_log = steps, now
        for step in steps:
            carry_out(step, plan)

    def forget(self) -> None:
        """Start counting afresh: another party mends now."""
        self.watch.forget()

    def pause(self, nodes: int) -> float:
        """Seconds to the next look at a network of ``nodes``: soon after a split was
        seen, to confirm it; else as often as the nodes can afford to be asked."""
        if self.watch.split_looks:
            return CONFIRM_AFTER
        return max(REPAIR_EVERY, nodes / LOOKED_AT_PER_SECOND)


def mend_until(network: NetworkState, stop: threading.Event) -> None:
    """``gossip mend``'s loop: look at the network and mend it until ``stop`` is set.

    A node that does not answer is down, never an error; a look that fails for another
    reason is logged and the next one tried.
    """
    mender = Mender("mender")
    everyone = {n for n, e in network.nodes.items() if not e.removed}
    answering: set[int] | None = None  # who answered the last look: logged when it changes
    if stop.wait(REPAIR_FIRST):
        return
    while True:
        try:
            look = reported(network, STATUS_TIMEOUT)
            links = look.links
            if set(links) != answering:
                answering = set(links)
                down = ", ".join(map(str, sorted(everyone - answering))) or "none"
                log.info("mender: %d of %d nodes answer; down: %s", len(links), len(everyone), down)
            mender.mend(network, look, everyone)
        except Exception:  # a look that fails is tried again next round
            log.exception("mender: could not look at the network")
        if stop.wait(mender.pause(len(everyone))):
            return


def run(network: NetworkState) -> str:
    """Mend ``network`` in the foreground until SIGTERM or SIGINT; what to print then."""
    log_to_stdout()
    stop = threading.Event()
    stop_on_signals("mender", stop.set)
    log.info(
        "mender: looking after the %d nodes of %s, at most %d peers each",
        len(network.nodes),
        network.label,
        network.max_peers,
    )
    mend_until(network, stop)
    return f"The mender of {network.label} stopped."
