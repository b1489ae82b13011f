"""One network over several hosts on one machine, for the tests and the benchmarks.

A host is a loopback address (127.0.0.1, 127.0.0.2, ...), or, with root on Linux, a
network namespace on a bridge, joined to it by a veth pair: then one host's cable can be
pulled and plugged back, and the network sees a real cut, not a dead process. Each host
runs the real command line with a ``GOSSIP_HOME`` of its own, as people at several
machines would, and looks at the network from where it stands (``Host.survey``), since
during a cut each side sees only its own part.

Nothing heavy is imported (no NetworkX, no Matplotlib): the nodes and the command line
run in processes of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip.network import wait_until

HOSTS = 4
PER_HOST = 4
NODES = HOSTS * PER_HOST
"""The lab's network: four hosts of four nodes each."""

COMMAND_TIMEOUT = 60.0
"""Seconds one command on a host may take: starting a host's part of the network is the
longest, a few seconds on a loaded machine."""

Survey = dict[int, dict[str, Any] | None]
"""Each node's ``peers`` and ``copies`` (message id to paths), None where it did not answer."""

SURVEY = """
import json, sys
from pathlib import Path
from gossip import config
from gossip.client import GossipClient
from gossip.errors import GossipError
_, network = config.find(Path(sys.argv[1]))
asked = {int(n) for n in sys.argv[2].split(",")} if len(sys.argv) > 2 else set(network.nodes)
report = {}
for number, entry in network.nodes.items():
    if number not in asked:
        continue
    client = GossipClient(entry.address, network.key, timeout=3, name=f"node {number}")
    try:
        peers = [p.number for p in client.peers()]
        views = client.read_messages(peek=True)
        report[number] = {
            "peers": peers,
            "copies": {m.id: [list(c.path) for c in m.copies] for m in views},
        }
    except GossipError:
        report[number] = None
print(json.dumps(report))
"""
"""Run on a host, so the nodes are asked from where it stands."""


class LabError(Exception):
    """A command on a host failed, or the network did not get where it was waited for."""


class Unavailable(Exception):
    """This machine cannot make network namespaces; the text says why."""


def network_file(path: Path, addresses: dict[int, str]) -> Path:
    """Write the lab's network file, every node at its ``host:port``, secret beside it."""
    lines = ['name = "lab"', 'secret = "lab.secret"', "", "[topology]", 'kind = "random"']
    lines += ["seed = 7", "", "[nodes]", *(f'{n} = "{a}"' for n, a in addresses.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Host:
    """One machine of the network: its address, its own state directory, how to run there."""

    address: str
    home: Path
    prefix: list[str] = field(default_factory=list)
    """What runs a command on this host (``ip netns exec NS``), empty on loopback."""
    cable: str = ""
    """The bridge's end of this host's veth pair, to cut and restore (namespaces only)."""

    def unplug(self) -> None:
        ip("link", "set", self.cable, "down")

    def plug(self) -> None:
        ip("link", "set", self.cable, "up")

    def command(self, *args: str) -> list[str]:
        """This Python with ``args``, as this host runs it."""
        return [*self.prefix, sys.executable, *args]

    def environment(self) -> dict[str, str]:
        return dict(os.environ, GOSSIP_HOME=str(self.home))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run this Python with ``args`` on this host; what it printed, and how it ended."""
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real command line on this host."""
        return self.run("-m", "gossip", *args)

    def survey(self, file: Path, nodes: set[int] | None = None) -> Survey:
        """From this host, every node's (or these nodes') peers and copies."""
        asked = [",".join(map(str, sorted(nodes)))] if nodes else []
        result = self.run("-c", SURVEY, str(file), *asked)
        if result.returncode != 0:
            raise LabError(f"the survey from {self.address} failed: {result.stderr}")
        return {int(n): v for n, v in json.loads(result.stdout).items()}


@dataclass
class Lab:
    """The hosts and the network file they share."""

    hosts: list[Host]
    file: Path

    def start(self) -> None:
        """Start every host's part at once, as people at several machines would: a node
        waits for its neighbours on other hosts only as long as they take to start."""
        start = ["-m", "gossip", "start-network", "--config", str(self.file)]
        starts = [
            subprocess.Popen(
                host.command(*start, "--only", host.address),
                env=host.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for host in self.hosts
        ]
        for host, process in zip(self.hosts, starts, strict=True):
            out, err = process.communicate(timeout=COMMAND_TIMEOUT)
            started = f"Started {PER_HOST} of the {NODES} nodes of network 'lab'" in out
            if process.returncode != 0 or not started:
                raise LabError(f"{host.address} could not start its nodes: {err or out}")

    def stop(self) -> None:
        """Stop every host's part; each host stops only the nodes it runs."""
        for host in self.hosts:
            host.cli("stop-network", "--config", str(self.file))

    def send(self, host: Host, node: int, text: str) -> str:
        """Send a message to ``node`` from ``host``; its id."""
        result = host.cli("send-message", str(node), text, "--config", str(self.file))
        found = re.search(r"\(id ([A-Za-z0-9_-]+)\)", result.stdout)
        if result.returncode != 0 or not found:
            raise LabError(f"sending from {host.address} failed: {result.stderr or result.stdout}")
        return found.group(1)

    def everywhere(self, sent: dict[str, int], seen_from: Host, timeout: float) -> None:
        """Wait until every node holds every message (id to origin) as ``seen_from`` sees
        them, and check that each copy's path is a walk from its origin to its holder.

        LabError if that takes longer than ``timeout`` seconds, or a path is no such walk.
        """
        survey: Survey = {}

        def done() -> bool:
            survey.update(seen_from.survey(self.file))
            return all(v is not None and set(sent) <= set(v["copies"]) for v in survey.values())

        if not wait_until(done, timeout, interval=0.5):
            missing = {
                n: sorted(set(sent) - set(v["copies"])) if v else "unreachable"
                for n, v in survey.items()
            }
            raise LabError(f"not every message reached every node in {timeout:g} s: {missing}")
        answered = {n: v for n, v in survey.items() if v is not None}  # all of them, by now
        for number, view in answered.items():
            for message_id, origin in sent.items():
                for path in view["copies"][message_id]:
                    if path[0] != origin or path[-1] != number or len(set(path)) != len(path):
                        raise LabError(f"node {number} holds {message_id} along {path}")


def cut_off(survey: Survey, inside: set[int]) -> bool:
    """Whether the nodes of ``inside`` that were surveyed hold peers only among themselves."""
    return all(
        view is not None and set(view["peers"]) <= inside
        for number, view in survey.items()
        if number in inside
    )


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


def netns_unavailable() -> str | None:
    """Why this machine cannot make network namespaces; None if it can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


@contextlib.contextmanager
def bridged_namespaces(base: Path, count: int = HOSTS) -> Iterator[list[Host]]:
    """``count`` hosts as namespaces on one bridge, 10.231.0.1-N/24, each with its state
    under ``base``; every process in them is killed, and they are removed, afterwards.

    Raises Unavailable when this machine cannot make them.
    """
    reason = netns_unavailable()
    if reason:
        raise Unavailable(reason)
    tag = f"g{os.getpid() % 100000}"  # names unique to this process, short enough for Linux
    bridge = f"{tag}br"
    names = [f"{tag}h{h}" for h in range(1, count + 1)]
    hosts = []
    try:
        try:
            ip("link", "add", bridge, "type", "bridge")
            ip("link", "set", bridge, "up")
            for h, name in enumerate(names, start=1):
                ip("netns", "add", name)
                ip("link", "add", f"{tag}v{h}", "type", "veth", "peer", "name", f"{tag}b{h}")
                ip("link", "set", f"{tag}v{h}", "netns", name)
                ip("link", "set", f"{tag}b{h}", "master", bridge, "up")
                ip("-n", name, "addr", "add", f"10.231.0.{h}/24", "dev", f"{tag}v{h}")
                ip("-n", name, "link", "set", f"{tag}v{h}", "up")
                ip("-n", name, "link", "set", "lo", "up")
                prefix = ["ip", "netns", "exec", name]
                hosts.append(Host(f"10.231.0.{h}", base / f"host-{h}", prefix, f"{tag}b{h}"))
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode(errors="replace").strip()
            raise Unavailable(f"this machine cannot make network namespaces ({reason})") from None
        yield hosts
    finally:
        for name in names:
            pids = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], check=False)
            ip("netns", "del", name, check=False)
        ip("link", "del", bridge, check=False)
