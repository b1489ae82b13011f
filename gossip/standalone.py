"""One node in the foreground, with no supervisor: ``gossip start-node``, a container's process.

Docker Compose and Kubernetes start, restart and watch each node themselves, one per
container. A node started here holds only what any node holds:

- it starts as the supervisor's fork does (``supervisor.serving_node``): while its store
  is new, with its peers from the network file and no other address; else with no peer,
  asking its last peers from its store (or, if it had none, its peers in the file) to take
  it back in: never more than ``max_peers`` addresses, as no node knows more nodes;
- it logs to stdout, and on SIGTERM stops serving, closes its store and exits 0.

What local healing cannot mend (a split, a node whose peers and contacts all died) needs
a look at the whole network, which no node takes: ``gossip mend`` (``gossip.mending``)
takes it, a process of its own, as a host's supervisor does for the nodes it forks.

Host names in the file are resolved at each connection, so a container restarted with a
new address is found again by its name.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

from gossip.errors import GossipError
from gossip.foreground import log_to_stdout, stop_on_signals
from gossip.network import client_for
from gossip.repair import contacts
from gossip.sends import Address, Endpoint
from gossip.state import NetworkState, store_path
from gossip.store import StoreError
from gossip.strategy import stored
from gossip.supervisor import CORES, SERVE_POLL, NodeStart, serving_node, stored_peers
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
    """Whom a node back from its store asks to take it in: its last peers, else (it had
    none) its peers in the file; never more than ``max_peers``, as a node knows no more
    nodes than that. A node whose contacts all died waits for ``gossip mend``."""
    known = [n for n in last or network.nodes[number].peers if n in network.nodes]
    # It cannot see which part of the network is the largest: repair's rule, with none.
    chosen = contacts(number, known, [], network.max_peers)
    return [(n, network.nodes[n].address) for n in chosen]


def run(network: NetworkState, number: int, directory: Path, listen: str) -> str:
    """Serve node ``number`` until SIGTERM or SIGINT; what to print once it stopped."""
    entry = network.node(number)
    if network.key is None and not network.insecure:
        raise GossipError("the network file gives no secret: add secret = FILE or insecure = true")
    if directory.exists() and not directory.is_dir():
        raise GossipError(f"the store's folder {directory} is a file: give --store a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GossipError(
            f"cannot make the store's folder {directory}: {exc.strerror}: give --store a folder "
            "this user can write to"
        ) from None
    log_to_stdout()
    fresh = not store_path(directory, number).is_file()
    # A fresh node starts with its peers from the file and no contact, as the supervisor's
    # fresh nodes do: a contact kept beside peers it later changes would be one node too many.
    peers = {p: network.nodes[p].address for p in entry.peers} if fresh else None
    contacts = [] if fresh else contacts_of(number, network, stored_peers(directory, number))
    try:
        start = NodeStart(
            entry,
            peers,
            contacts,
            network.max_peers,
            network.key,
            directory,
            Timing.for_host(1, CORES),
            stored(network.strategy),
        )
        server, store = serving_node(start, (listen, entry.port))
    except StoreError as exc:
        raise GossipError(f"node {number}: {exc}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise GossipError(f"port {entry.port} is in use: stop what listens there") from None
        reason = exc.strerror or str(exc)
        raise GossipError(f"cannot listen on {listen}:{entry.port}: {reason}") from None

    stop_on_signals(
        f"node {number}", lambda: threading.Thread(target=server.shutdown, daemon=True).start()
    )
    go = threading.Event()
    threading.Thread(target=server.keep_house, args=(go,), daemon=True).start()
    threading.Thread(target=_await_peers, args=(network, peers, go), daemon=True).start()
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


def hostname() -> str:
    """This host's name, as a StatefulSet's pod sees it (``$HOSTNAME`` where set)."""
    return os.environ.get("HOSTNAME") or socket.gethostname()
