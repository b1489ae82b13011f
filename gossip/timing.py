"""How long a node waits for what: one frozen set of timings, handed to each node.

Today's values are the defaults. A test or an experiment runs a network with other
timings by handing its nodes another ``Timing``, without patching modules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Every period, delay and timeout a node keeps, in seconds."""

    ping_every: float = 1.0
    """Silence from a peer before the node pings it. A dead peer is noticed sooner: its
    connection breaks and its port refuses; pings are for a peer that hangs."""

    walk_first: float = 0.25
    """Between losing a peer and the first walk, leaving room for a leaving peer's
    introductions, which restore the old shape exactly."""

    walk_every: float = 0.4
    walk_max: float = 5.0
    """A node that keeps failing to find a peer walks again, each time waiting twice as
    long, up to ``walk_max``; a node with no peer asks its next contact every
    ``walk_every``."""

    sync_every: float = 1.0
    """Between catch-up rounds, each with the next peer in turn."""

    settle: float = 1.0
    """A message is held this long before catch-up offers it, so catch-up does not race
    gossip."""

    lost_for: float = 600.0
    """How long a node keeps trying to get back to a peer it dropped for silence: a host
    cut off by the network looks dead to its peers until its link comes back."""

    merge_first: float = 1.0
    merge_max: float = 5.0
    """Between tries to get back to a lost peer: doubling from first to max."""

    seek_wait: float = 0.5
    """How long a node waits for news that a lost peer is still reachable through the
    network before it takes it for a part cut off, and asks to link across."""

    stagger: float = 2.0
    """Extra wait before the asked end of a merge looks for the peer it let go, after the
    asking end looks for its own: one search at a time finds a split, not two at once."""

    tick: float = 0.1
    """Between the server's looks at the clock (housekeeping, deferred commits)."""

    peer_timeout: float = 2.0
    """To connect to and hear back from a peer before giving up on that frame."""

    reply_timeout: float = 3.0
    """A peer connection owing a reply this long counts as broken (the watchdog)."""

    idle_timeout: float = 60.0
    """A connection may wait this long between frames before the node closes it."""

    frame_timeout: float = 10.0
    """A frame may take this long to arrive once it has begun: a trickling sender is cut off."""

    write_timeout: float = 10.0
    """A reply may take this long to go out: a client that stops reading is cut off."""
