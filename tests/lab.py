"""A network over several hosts for tests and benchmarks: hosts as loopback addresses, or
as Linux network namespaces joined by veth pairs and a bridge (root only)."""

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

from gossip.network import wait_until
from tests.conftest import CLI_TIMEOUT, Result, run_python

HOSTS = 4
PER_HOST = 4
NODES = HOSTS * PER_HOST

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
"""Every node's peers and copies, as one host sees them (None: not reachable from there)."""


def network_file(path: Path, addresses: dict[int, str]) -> Path:
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
    """The bridge's end of this host's link, to cut and restore it (namespaces only)."""

    def unplug(self) -> None:
        ip("link", "set", self.cable, "down")

    def plug(self) -> None:
        ip("link", "set", self.cable, "up")

    def run(self, *args: str) -> Result:
        env = dict(os.environ, GOSSIP_HOME=str(self.home))
        return run_python(*args, env=env, prefix=self.prefix)

    def start(self, file: Path) -> list[str]:
        return ["--config", str(file), "--only", self.address]

    def cli(self, *args: str) -> Result:
        return self.run("-m", "gossip", *args)

    def survey(self, file: Path, nodes: set[int] | None = None) -> dict[int, dict | None]:
        """From this host, every node's (or these nodes') peers and copies."""
        asked = [",".join(map(str, sorted(nodes)))] if nodes else []
        result = self.run("-c", SURVEY, str(file), *asked)
        assert result.code == 0, result.err
        return {int(n): v for n, v in json.loads(result.out).items()}


@dataclass
class Lab:
    hosts: list[Host]
    file: Path

    def start(self) -> None:
        """Start every host's part at once, as people at several machines would."""
        env = [dict(os.environ, GOSSIP_HOME=str(h.home)) for h in self.hosts]
        starts = [
            subprocess.Popen(
                [*h.prefix, sys.executable, "-m", "gossip", "start-network", *h.start(self.file)],
                env=e,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for h, e in zip(self.hosts, env, strict=True)
        ]
        for process in starts:
            out, err = process.communicate(timeout=CLI_TIMEOUT)
            assert process.returncode == 0, err
            assert f"Started {PER_HOST} of the {NODES} nodes of network 'lab'" in out

    def stop(self) -> None:
        for host in self.hosts:
            host.cli("stop-network", "--config", str(self.file))

    def send(self, host: Host, node: int, text: str) -> str:
        result = host.cli("send-message", str(node), text, "--config", str(self.file))
        assert result.code == 0, result.err
        found = re.search(r"\(id ([A-Za-z0-9_-]+)\)", result.out)
        assert found, result.out
        return found.group(1)

    def everywhere(self, sent: dict[str, int], seen_from: Host, timeout: float) -> None:
        """Wait until every node holds every message, each copy's path a walk from its
        origin to the node that holds it."""
        survey: dict[int, dict | None] = {}

        def done() -> bool:
            survey.update(seen_from.survey(self.file))
            return all(v is not None and set(sent) <= set(v["copies"]) for v in survey.values())

        assert wait_until(done, timeout, interval=0.5), {
            n: sorted(set(sent) - set(v["copies"])) if v else "unreachable"
            for n, v in survey.items()
        }
        for number, view in survey.items():
            assert view is not None
            for message_id, origin in sent.items():
                for path in view["copies"][message_id]:
                    assert path[0] == origin and path[-1] == number, path
                    assert len(set(path)) == len(path), path


def netns_unavailable() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


def cut_off(survey: dict[int, dict | None], inside: set[int]) -> bool:
    """Whether the nodes of ``inside`` that answered hold peers only among themselves."""
    return all(
        view is not None and set(view["peers"]) <= inside
        for number, view in survey.items()
        if number in inside
    )


class Unavailable(Exception):
    """This machine cannot make the namespaces; the text says why."""


@contextlib.contextmanager
def bridged_namespaces(base: Path, count: int = HOSTS) -> Iterator[list[Host]]:
    """``count`` namespaces on one bridge, 10.231.0.1-N/24; everything in them killed after.

    Raises Unavailable when this machine cannot make them.
    """
    reason = netns_unavailable()
    if reason:
        raise Unavailable(reason)
    tag = f"g{os.getpid() % 100000}"
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
