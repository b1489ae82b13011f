"""One node in the foreground, with no supervisor: ``gossip start-node``, a container's process.

Docker Compose and Kubernetes start, restart and watch each node themselves, one per
container, so the supervisor's work falls to the nodes. Each node here:

- starts as the supervisor's fork does (``supervisor.serving_node``): with its peers from
  the network file while its store is new, else from its store, asking its last peers
  (then any node of the file) to take it back in;
- knows every node of the file as a contact of last resort, so a node left with no peer
  at all (its peers died) joins again without anyone's help;
- mends what local healing cannot (a split, a node short of peers), as a host's
  supervisor would, when it is the lowest-numbered node that answers: one party at a time;
- logs to stdout, and on SIGTERM stops serving, closes its store and exits 0.

Host names in the file are resolved at each connection, so a container restarted with a
new address is found again by its name.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from gossip import repair
from gossip.errors import GossipError
from gossip.network import carry_out, client_for, reported
from gossip.sends import Address, Endpoint
from gossip.server import GossipServer
from gossip.state import NetworkState, store_path
from gossip.store import StoreError
from gossip.strategy import stored
from gossip.supervisor import (
    CORES,
    LOOKED_AT_PER_SECOND,
    REPAIR_EVERY,
    REPAIR_FIRST,
    SERVE_POLL,
    STATUS_TIMEOUT,
    serving_node,
    stored_peers,
)
from gossip.timing import Timing

ORDINAL = re.compile(r"-(\d{1,9})$")
"""How a StatefulSet names its pods: the set's name, a dash, the ordinal from 0."""

PEERS_GRACE = 30.0
"""Seconds a fresh node waits for its peers from the file to answer before it starts
counting silence: containers start in any order, and a peer counted dead too early is
dropped. Once the grace is over, the node heals around those still silent."""

PEERS_POLL = 0.25

log = logging.getLogger("gossip.node")


def node_from_hostname(hostname: str, network: NetworkState) -> int:
    """The node a StatefulSet's pod runs: ordinal + 1 (pod ``gossip-7`` is node 8)."""
    found = ORDINAL.search(hostname)
    if found is None:
        raise GossipError(
            f"this host's name {hostname!r} ends in no -ORDINAL, as a StatefulSet's pods do "
            "(gossip-7 runs node 8): give the node's number instead of auto"
        )
    number = int(found.group(1)) + 1
    if number not in network.nodes:
        raise GossipError(
            f"host name {hostname!r} makes node {number}, which the network file does not "
            f"list: it has nodes {network.describe_numbers()} (run at most that many replicas)"
        )
    return number


def contacts_of(number: int, network: NetworkState, last: list[int]) -> list[Endpoint]:
    """Whom the node asks to take it in while it has no peer: its last peers, its peers in
    the file, then every other node of the file, so it always finds someone who lives."""
    planned = network.nodes[number].peers
    order = [*last, *planned, *sorted(network.nodes)]
    unique = [n for i, n in enumerate(order) if n != number and n not in order[:i]]
    return [(n, network.nodes[n].address) for n in unique if n in network.nodes]


def run(network: NetworkState, number: int, directory: Path, listen: str) -> str:
    """Serve node ``number`` until SIGTERM or SIGINT; what to print once it stopped."""
    entry = network.node(number)
    if network.key is None and not network.insecure:
        raise GossipError("the network file gives no secret: add secret = FILE or insecure = true")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GossipError(f"cannot make the store's folder {directory}: {exc.strerror}") from None
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,
    )
    fresh = not store_path(directory, number).is_file()
    last = [] if fresh else stored_peers(directory, number)
    peers = {p: network.nodes[p].address for p in entry.peers} if fresh else None
    try:
        server, store = serving_node(
            entry,
            peers,
            contacts_of(number, network, last),
            network.max_peers,
            network.key,
            directory,
            Timing.for_host(1, CORES),
            stored(network.strategy),
            (listen, entry.port),
        )
    except StoreError as exc:
        raise GossipError(f"node {number}: {exc}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise GossipError(f"port {entry.port} is in use: stop what listens there") from None
        reason = exc.strerror or str(exc)
        raise GossipError(f"cannot listen on {listen}:{entry.port}: {reason}") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("node %d: %s, stopping", number, signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    go = threading.Event()
    threading.Thread(target=server.keep_house, args=(go,), daemon=True).start()
    threading.Thread(target=_await_peers, args=(network, peers, go), daemon=True).start()
    mender = Mender(network, number, server)
    threading.Thread(target=mender.run, args=(go,), daemon=True).start()
    with server:
        server.serve_forever(SERVE_POLL)
    with server.lock:
        store.close()
    return f"Node {number} stopped; its store is in {directory}."


def _await_peers(
    network: NetworkState, peers: dict[int, Address] | None, go: threading.Event
) -> None:
    """Let the node count its peers' silence once they all answer, or the grace is over
    (a node back from its store starts at once: it rejoins whoever answers)."""
    waiting = set(peers or ())
    deadline = time.monotonic() + PEERS_GRACE
    while waiting and time.monotonic() < deadline:
        for number in sorted(waiting):
            client = client_for(network, network.nodes[number])
            client.timeout = PEERS_POLL
            with contextlib.suppress(GossipError):
                client.status()
                waiting.discard(number)
        if waiting:
            time.sleep(PEERS_POLL)
    go.set()


class Mender:
    """The supervisor's look at the whole network, from inside one node: it mends only
    while no lower-numbered node answers, so one node mends at a time and the others
    each ask one node a look (the lowest that lives), not the whole network."""

    def __init__(self, network: NetworkState, number: int, server: GossipServer) -> None:
        self.network = network
        self.number = number
        self.server = server
        self.watch = repair.Watch()
        self.every = max(REPAIR_EVERY, len(network.nodes) / LOOKED_AT_PER_SECOND)

    def run(self, go: threading.Event) -> None:
        go.wait()
        if self.server.closing.wait(REPAIR_FIRST):
            return
        while True:
            try:
                self.look()
            except Exception:  # a look that fails is tried again next round
                log.exception("node %d: could not look at the network", self.number)
            if self.server.closing.wait(self.every):
                return

    def look(self) -> None:
        """Mend the network if this node is the lowest-numbered one that answers."""
        if self.lower_answers():
            self.watch.forget()
            return
        links, wanted = reported(self.network, STATUS_TIMEOUT)
        if not repair.mends_here(links, {self.number}):
            self.watch.forget()
            return
        steps = self.watch.look(links, self.network.max_peers, wanted)
        if steps:
            log.warning("node %d: mending the network %s: %s", self.number, links, steps)
        for step in steps:
            carry_out(step, self.network)

    def lower_answers(self) -> bool:
        """Whether a node numbered below this one answers (asked lowest first)."""
        for number in sorted(n for n in self.network.nodes if n < self.number):
            client = client_for(self.network, self.network.nodes[number])
            client.timeout = STATUS_TIMEOUT
            try:
                client.status()
            except GossipError:
                continue
            return True
        return False


def hostname() -> str:
    """This host's name, as a StatefulSet's pod sees it (``$HOSTNAME`` where set)."""
    return os.environ.get("HOSTNAME") or socket.gethostname()
