"""The pictures the CLI draws of a running network: its live topology, a message's spread.

Asks the nodes, then hands the answers to ``gossip.plot``; NetworkX and matplotlib are
imported only here, when a picture is asked for.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from gossip import network
from gossip.errors import GossipError
from gossip.spread import Arrival, first_arrivals
from gossip.state import NetworkState

if TYPE_CHECKING:
    from gossip.topology import Topology


def live_topology(net: NetworkState) -> Topology:
    """The topology as the live nodes report it now, with its starting kind for the layout."""
    from gossip.topology import KINDS, Topology

    links = network.live_links(network.status(net))
    if not links:
        raise GossipError("no node of this network is answering: there is nothing to draw")
    kind = net.topology.split()[0]
    return Topology(kind if kind in KINDS else "random", net.topology, links)


def draw_live(live: Topology, output: Path) -> Path:
    """A PNG of the live topology."""
    from gossip.plot import draw_topology

    title = f"gossip: live topology of {len(live.neighbours)} nodes, {len(live.edges())} links"
    try:
        return draw_topology(live, output, title)
    except OSError as exc:
        raise GossipError(f"cannot write {output}: {exc.strerror}") from None


TITLE_TEXT = 120
"""Most characters of a message's text its picture's title shows (a text may be 8 KB)."""


def draw_message(
    net: NetworkState, live: Topology, text: str, output: Path
) -> tuple[Path, list[Arrival]]:
    """A PNG of how the newest message with this text spread over ``live``; its arrivals."""
    from gossip.plot import draw_spread

    held = network.holders_of(net, text)
    if not held:
        live = net.live_numbers()
        after = "-- " if text.startswith("-") else ""  # else read as an option
        raise GossipError(
            f"no live node holds a message {text!r}: send it first, as in "
            f"gossip send-message {live[0] if live else 1} {after}{shlex.quote(text)}"
        )
    arrivals = first_arrivals(held)
    shown = text if len(text) <= TITLE_TEXT else text[: TITLE_TEXT - 1] + "…"
    title = (
        f"gossip: '{shown}' reached {len(held)} of {len(live.neighbours)} live nodes "
        f"in {arrivals[-1].delay_ms:.1f} ms"
    )
    try:
        return draw_spread(live, arrivals, output, title), arrivals
    except OSError as exc:
        raise GossipError(f"cannot write {output}: {exc.strerror}") from None
