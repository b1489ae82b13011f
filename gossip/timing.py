"""How long a node waits for what: one frozen set of timings, handed to each node.

Today's values are the defaults. A test or an experiment runs a network with other
timings by handing its nodes another ``Timing``, without patching modules.
"""

from __future__ import annotations

from dataclasses import dataclass

NODES_PER_CORE = 128
"""How many nodes of a host share a core before a node's chores and patience are spread out. Pings
are most of what an idle node costs, so in a larger network each pings less often (every
4 s for 1,024 nodes on 2 cores: a hung peer is noticed later, a dead one as soon as its
connection breaks, as ever). And there every burst of work makes each process wait
longer for its turn on a core, so a node waits as much longer for a reply before it takes
a peer for dead: else one busy second makes nodes drop live peers, and the repairs that
follow make it busier still."""


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
    """The shortest wait between the server's looks at the clock (housekeeping, deferred
    commits)."""

    rest: float = 1.0
    """The longest wait between those looks: a node sleeps until its next chore is due,
    or until something happens that brings one forward, so an idle node seldom wakes."""

    ack_delay: float = 0.5
    """How long a node may hold back its ``/OK`` to copies no one waits on (relayed ones),
    so one acknowledges many and none is written while a message floods: long enough to
    come after a message has spread through a large network (about 100 ms at 256 nodes on
    2 cores), where each acknowledgement wakes two threads, and to cover several messages
    sent one at a time; inside ``ping_every``."""

    copy_wait: float = 0.05
    """How long a copy of a message the node already holds may wait before it is taken
    (``Node.copy_can_wait``): well past a message's spread through 16 nodes (about 4 ms
    on 2 cores), so those copies, most of a flood's, do not hold up the first ones."""

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

    @classmethod
    def for_host(cls, nodes: int, cores: int) -> Timing:
        """The timings for each of ``nodes`` nodes sharing a host of ``cores`` cores:
        today's, with pings and patience stretched where the cores are crowded."""
        stretch = max(1.0, nodes / (NODES_PER_CORE * max(1, cores)))
        return cls(
            ping_every=cls.ping_every * stretch,
            rest=cls.rest * stretch,
            peer_timeout=cls.peer_timeout * stretch,
            reply_timeout=cls.reply_timeout * stretch,
        )
