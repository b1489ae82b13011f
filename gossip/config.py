"""A network file: every node's address and the topology, for a network over several hosts.

Every host gets the same file and a copy of the network's secret. ``gossip start-network
--config FILE --only HOST`` starts the nodes whose address is on HOST; any command given
``--config FILE`` finds every node by number from any machine. TOML or JSON::

    name = "lab"                  # the run directory is network-lab (default: file name)
    max_peers = 3
    secret = "lab.secret"         # relative to this file; or insecure = true

    [topology]                    # a NetworkX kind, built the same on every host...
    kind = "random"               # circular | random | powerlaw | turan
    degree = 3                    # random; partitions = N for turan
    seed = 7

    [nodes]                       # an IP address or a host name, resolved when connecting
    1 = "10.0.0.1:7001"
    2 = "gossip-1.gossip:7001"

    [peers]                       # ...or every node's peers, instead of [topology]
    1 = [2]
    2 = [1]
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from gossip import state
from gossip.errors import GossipError
from gossip.state import NetworkState, NodeEntry

MAX_PEERS = 10_000
"""The most peers a node may be allowed, as on the command line."""

SETTINGS = ("name", "max_peers", "secret", "insecure", "topology", "nodes", "peers", "strategy")
TOPOLOGY_SETTINGS = ("kind", "degree", "partitions", "seed")

DEFAULT_SEED = 1
"""The seed of a random topology whose file gives none: every host must build the same graph."""

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
"""One part of a host name between dots (Docker's names may hold '_')."""


def read(path: Path) -> dict[str, Any]:
    """The file's contents as a table; GossipError saying what is wrong with it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GossipError(f"cannot read the network file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GossipError(f"the network file {path} is not UTF-8 text") from None
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except RecursionError:
        raise GossipError(f"the network file {path} is not valid {kind}: too deep") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise GossipError(f"the network file {path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise GossipError(f"the network file {path} must hold a table of settings")
    return data


def load(path: Path, only: str | None = None) -> NetworkState:
    """The network a file describes; with ``only``, the nodes on that host are the local ones.

    The secret is read too (GossipError if it is named and missing).
    """
    data = read(path)
    where = f"the network file {path}"
    _known(data, SETTINGS, where, "")
    try:
        name = checked_name(data.get("name", path.stem))
    except GossipError as exc:
        raise GossipError(f"{where}: {exc}") from None
    max_peers = _whole(data.get("max_peers", 3), f"{where}: max_peers", 1)
    if max_peers > MAX_PEERS:
        raise GossipError(f"{where}: max_peers must be at most {MAX_PEERS}, not {max_peers}")
    addresses = _addresses(data.get("nodes"), where)
    if "peers" in data and "topology" in data:
        raise GossipError(f"{where}: give either [topology] or [peers], not both")
    if "peers" in data:
        neighbours, description = _peers(data["peers"], addresses, where), "peers from the file"
    else:
        neighbours, description = _topology(data.get("topology", {}), addresses, max_peers, where)
    for number, peers in neighbours.items():
        if len(peers) > max_peers:
            raise GossipError(
                f"{where}: node {number} has {len(peers)} peers but max_peers is {max_peers}"
            )
    hosts = sorted({host for host, _ in addresses.values()})
    if only is not None and only not in hosts:
        raise GossipError(f"{where} has no node on host {only}: its hosts are {', '.join(hosts)}")
    nodes = {
        n: NodeEntry(
            number=n,
            host=host,
            port=port,
            peers=neighbours[n],
            local=only is None or host == only,
        )
        for n, (host, port) in sorted(addresses.items())
    }
    network = NetworkState(
        port_origin=0, max_peers=max_peers, topology=description, nodes=nodes, name=name
    )
    network.strategy = _strategy(data.get("strategy", {}), where)
    network.insecure = data.get("insecure", False)
    if not isinstance(network.insecure, bool):
        raise GossipError(f"{where}: insecure must be true or false, not {network.insecure!r}")
    if network.insecure and "secret" in data:
        raise GossipError(f"{where}: give a secret or insecure = true, not both")
    if not network.insecure:
        network.key = _secret(data.get("secret"), path, where)
    return network


def checked_name(name: object) -> str:
    """``name`` if it can be part of a file or folder name as it is (a run directory, an
    experiment's pictures): no path in it, and neither ``.`` nor ``..``."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise GossipError(
            "name must be 1-64 letters, digits, '.', '-' or '_', other than . and .. "
            '(without a name = "..." line, the file\'s own name is used)'
        )
    return name


def file_advice(message: str) -> str:
    """A topology's complaint as a file's settings put it: max_peers, not --max-peers."""
    message = message.replace("--max-peers", "max_peers").replace("use -n ", "set nodes = ")
    return message.replace("use max_peers", "set max_peers =")


def _known(table: dict[str, Any], known: tuple[str, ...], where: str, section: str) -> None:
    """GossipError for a setting the file's table should not have: a typo (``max_peer``)
    would otherwise be ignored, and the network started with the default."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise GossipError(
            f"{where}: unknown {section}setting {unknown[0]!r}: use {', '.join(known)}"
        )


def _strategy(table: object, where: str) -> dict[str, Any]:
    """The file's ``[strategy]`` (mode, fanout, interval_ms, ttl), checked."""
    from gossip.strategy import strategy_from

    if not isinstance(table, dict):
        raise GossipError(f"{where}: [strategy] must be a table of mode, fanout, interval_ms, ttl")
    try:
        return strategy_from(table, in_file=True).as_dict()
    except GossipError as exc:
        raise GossipError(f"{where}: strategy: {exc}") from None


def _whole(value: object, what: str, lowest: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
        raise GossipError(f"{what} must be a whole number of at least {lowest}, not {value!r}")
    return value


def _addresses(table: object, where: str) -> dict[int, tuple[str, int]]:
    if not isinstance(table, dict) or len(table) < 2:
        raise GossipError(f'{where} needs a [nodes] table of at least 2 nodes, as 1 = "HOST:PORT"')
    addresses: dict[int, tuple[str, int]] = {}
    for key, value in table.items():
        number = _number(key, where)
        host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
        digits = port.isascii() and port.isdigit() and len(port) <= 5
        if not (host and sep and digits and 0 < int(port) < 65536):
            raise GossipError(f'{where}: node {number} must have an address "HOST:PORT"')
        if ipv6(host):
            raise GossipError(
                f"{where}: node {number}'s host {host} is an IPv6 address, and nodes listen on "
                "IPv4 only: give an IPv4 address or a host name"
            )
        if not host_ok(host):
            raise GossipError(
                f"{where}: node {number}'s host {host!r} is neither an IP address nor a host "
                "name (letters, digits, '-', '_' and '.')"
            )
        if number in addresses:
            raise GossipError(f"{where}: node {number} is listed twice")
        addresses[number] = (host, int(port))
    taken: dict[tuple[str, int], int] = {}
    for number, address in sorted(addresses.items()):
        if address in taken:
            raise GossipError(
                f"{where}: nodes {taken[address]} and {number} have the same address "
                f"{address[0]}:{address[1]}"
            )
        taken[address] = number
    return addresses


def ipv6(host: str) -> bool:
    """``::1`` or ``[::1]`` (a node's ``ThreadingTCPServer`` binds IPv4 only)."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).version == 6
    return False


def host_ok(host: str) -> bool:
    """An IPv4 address or a DNS name. Names are resolved at each connection, not here: a
    container restarted with a new address is found again by its name."""
    with contextlib.suppress(ValueError):
        ipaddress.IPv4Address(host)
        return True
    return len(host) <= 253 and all(LABEL.fullmatch(part) for part in host.split("."))


def _number(key: object, where: str) -> int:
    text = str(key)
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or int(text) < 1:
        raise GossipError(f"{where}: node numbers must be whole numbers from 1, not {text!r}")
    return int(text)


def _peers(
    table: object, addresses: dict[int, tuple[str, int]], where: str
) -> dict[int, list[int]]:
    if not isinstance(table, dict):
        raise GossipError(f"{where}: [peers] must map node numbers to lists of node numbers")
    neighbours: dict[int, set[int]] = {n: set() for n in addresses}
    for key, value in table.items():
        number = _number(key, where)
        ok = isinstance(value, list) and all(
            isinstance(p, int) and not isinstance(p, bool) for p in value
        )
        if number not in addresses or not ok:
            raise GossipError(f"{where}: peers of node {number} must list nodes of [nodes]")
        for peer in value:
            if peer == number:
                raise GossipError(f"{where}: node {number} lists itself as a peer")
            if peer not in addresses:
                raise GossipError(f"{where}: node {number} lists {peer}, which is not a node")
            neighbours[number].add(peer)
            neighbours[peer].add(number)  # a link goes both ways, listed once or twice
    return {n: sorted(p) for n, p in neighbours.items()}


def _topology(
    table: object, addresses: dict[int, tuple[str, int]], max_peers: int, where: str
) -> tuple[dict[int, list[int]], str]:
    from gossip import topology

    if not isinstance(table, dict):
        raise GossipError(f"{where}: [topology] must be a table with a kind")
    _known(table, TOPOLOGY_SETTINGS, where, "[topology] ")
    kind = table.get("kind", "random")
    if kind not in ("circular", "random", "powerlaw", "turan"):
        raise GossipError(f"{where}: topology kind must be circular, random, powerlaw or turan")
    numbers = sorted(addresses)
    if numbers != list(range(1, len(numbers) + 1)):
        raise GossipError(f"{where}: a generated topology needs nodes numbered 1-{len(numbers)}")
    degree, partitions = table.get("degree"), table.get("partitions")
    try:
        graph = topology.build(
            kind,
            len(numbers),
            max_peers,
            degree=None if degree is None else _whole(degree, f"{where}: degree", 1),
            partitions=None
            if partitions is None
            else _whole(partitions, f"{where}: partitions", 1),
            seed=_whole(table.get("seed", DEFAULT_SEED), f"{where}: seed", 0),
        )
    except GossipError as exc:
        if str(exc).startswith(where):
            raise
        raise GossipError(f"{where}: {file_advice(str(exc))}") from None
    return graph.neighbours, graph.description


def _secret(name: object, path: Path, where: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise GossipError(
            f'{where} names no secret: add secret = "FILE" (make one with gossip new-secret '
            "FILE and copy it to every host), or insecure = true"
        )
    secret_path = path.parent / name
    try:
        secret = secret_path.read_bytes().strip()
    except ValueError:
        raise GossipError(f"{where}: the secret's file name is not a usable path") from None
    except OSError as exc:
        raise GossipError(
            f"cannot read the network's secret {secret_path}: {exc.strerror} (copy it from a "
            "host of the network; for a new network, make one with gossip new-secret "
            f"{secret_path} and copy it to every host)"
        ) from None
    if len(secret) < 32:
        raise GossipError(f"the secret in {secret_path} is too short: make one with new-secret")
    return secret


def find(path: Path) -> tuple[Path, NetworkState]:
    """The network of a file as a command sees it: the state of this host's part if it runs
    here (with its processes), else the file's view, with every node on another host."""
    network = load(path)
    directory = network.directory
    here = state.running(directory)
    if here is not None:
        return directory, here
    for entry in network.nodes.values():
        entry.local = False
    return directory, network
