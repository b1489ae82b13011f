"""One network over several hosts, described by a network file.

On loopback, hosts are addresses (127.0.0.1, 127.0.0.2, ...); with root on Linux, hosts
are network namespaces joined by veth pairs and a bridge, so one host's link can be cut
and restored: the nodes on each side heal apart, and when the link is back the parts
join again and catch-up brings every node every message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gossip.network import wait_until
from tests.conftest import CLI_TIMEOUT, Result, free_origin, gossip_processes

HOSTS = 4
PER_HOST = 4
NODES = HOSTS * PER_HOST

SURVEY = """
import json, sys
from pathlib import Path
from gossip import config
from gossip.client import GossipClient
from gossip.state import GossipError
_, network = config.find(Path(sys.argv[1]))
report = {}
for number, entry in network.nodes.items():
    client = GossipClient(entry.address, network.key, timeout=3, name=f"node {number}")
    try:
        report[number] = {
            "peers": [p.number for p in client.peers()],
            "copies": {m.id: [list(c.path) for c in m.copies] for m in client.fetch(peek=True)},
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

    def run(self, *args: str) -> Result:
        env = dict(os.environ, GOSSIP_HOME=str(self.home))
        done = subprocess.run(
            [*self.prefix, sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, file: Path) -> list[str]:
        return ["--config", str(file), "--only", self.address]

    def cli(self, *args: str) -> Result:
        return self.run("-m", "gossip", *args)

    def survey(self, file: Path) -> dict[int, dict | None]:
        result = self.run("-c", SURVEY, str(file))
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
        return result.out.rsplit("(id ", 1)[1].rstrip(")\n")

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


def test_a_network_file_spreads_a_network_over_loopback_hosts(tmp_path: Path) -> None:
    """Four hosts as four loopback addresses: each starts its part, each sends, all receive."""
    port = free_origin(PER_HOST)
    hosts = [Host(f"127.0.0.{h}", tmp_path / f"host-{h}") for h in range(1, HOSTS + 1)]
    addresses = {
        n: f"{hosts[(n - 1) // PER_HOST].address}:{port + 1 + (n - 1) % PER_HOST}"
        for n in range(1, NODES + 1)
    }
    lab = Lab(hosts, network_file(tmp_path / "lab.toml", addresses))
    assert hosts[0].cli("new-secret", str(tmp_path / "lab.secret")).code == 0
    try:
        lab.start()
        sent = {}
        for h, host in enumerate(hosts):
            origin = NODES - h * PER_HOST  # a node on another host
            sent[lab.send(host, origin, f"from host {h + 1}")] = origin
        lab.everywhere(sent, hosts[0], 20)
        remote = Host("laptop", tmp_path / "laptop")  # runs no node, holds the file
        status = remote.cli("status", "--json", "--config", str(lab.file))
        assert status.code == 0, status.err
        report = json.loads(status.out)
        assert [n["state"] for n in report["nodes"]] == ["up"] * NODES
        assert len(report["parts"]) == 1
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path))


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


@pytest.fixture
def namespaces(tmp_path: Path) -> Iterator[list[Host]]:
    """Four namespaces on one bridge, 10.231.0.1-4/24; everything in them killed after."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"g{os.getpid() % 100000}"
    bridge = f"{tag}br"
    names = [f"{tag}h{h}" for h in range(1, HOSTS + 1)]
    hosts = []
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
            hosts.append(Host(f"10.231.0.{h}", tmp_path / f"host-{h}", prefix))
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


def cut_off(survey: dict[int, dict | None], inside: set[int]) -> bool:
    """Whether the nodes of ``inside`` that answered hold peers only among themselves."""
    return all(
        view is not None and set(view["peers"]) <= inside
        for number, view in survey.items()
        if number in inside
    )


def test_four_hosts_in_namespaces_survive_a_cut_link(
    tmp_path: Path, namespaces: list[Host]
) -> None:
    hosts = namespaces
    tag = hosts[0].prefix[-1].removesuffix("h1")
    addresses = {
        n: f"{hosts[(n - 1) // PER_HOST].address}:{7001 + (n - 1) % PER_HOST}"
        for n in range(1, NODES + 1)
    }
    lab = Lab(hosts, network_file(tmp_path / "lab.toml", addresses))
    assert hosts[0].cli("new-secret", str(tmp_path / "lab.secret")).code == 0
    lab.start()
    try:
        sent = {}
        for h, host in enumerate(hosts):
            for origin in (h * PER_HOST + 1, (h * PER_HOST + 6) % NODES + 1):
                sent[lab.send(host, origin, f"host {h + 1} to node {origin}")] = origin
        lab.everywhere(sent, hosts[0], 30)

        ip("link", "set", f"{tag}b4", "down")  # host 4's cable is pulled
        host4 = set(range(3 * PER_HOST + 1, NODES + 1))
        for h, host in enumerate(hosts):
            origin = h * PER_HOST + 2
            sent[lab.send(host, origin, f"during the cut, host {h + 1}")] = origin
        rest = set(range(1, NODES + 1)) - host4
        assert wait_until(
            lambda: (
                cut_off(hosts[3].survey(lab.file), host4)
                and cut_off(hosts[0].survey(lab.file), rest)
            ),
            60,
            interval=1,
        ), "each side heals apart"

        ip("link", "set", f"{tag}b4", "up")
        lab.everywhere(sent, hosts[3], 90)
        status = hosts[0].cli("status", "--json", "--config", str(lab.file))
        report = json.loads(status.out)
        assert len(report["parts"]) == 1, report["parts"]
    finally:
        lab.stop()
