"""One network over several hosts, described by a network file.

On loopback, hosts are addresses (127.0.0.1, 127.0.0.2, ...); with root on Linux, hosts
are network namespaces joined by veth pairs and a bridge, so one host's link can be cut
and restored: the nodes on each side heal apart, and when the link is back the parts
join again and catch-up brings every node every message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip import config as network_files
from gossip.client import GossipClient
from gossip.namespaces import (
    HOSTS,
    NODES,
    PER_HOST,
    Host,
    Lab,
    Unavailable,
    bridged_namespaces,
    cut_off,
    network_file,
)
from gossip.network import wait_until
from tests.networks import free_origin, gossip_processes


def loopback_lab(tmp_path: Path) -> tuple[list[Host], Lab]:
    """Four hosts as four loopback addresses, with a network file and its secret."""
    port = free_origin(PER_HOST)
    hosts = [Host(f"127.0.0.{h}", tmp_path / f"host-{h}") for h in range(1, HOSTS + 1)]
    addresses = {
        n: f"{hosts[(n - 1) // PER_HOST].address}:{port + 1 + (n - 1) % PER_HOST}"
        for n in range(1, NODES + 1)
    }
    lab = Lab(hosts, network_file(tmp_path / "lab.toml", addresses))
    assert hosts[0].cli("new-secret", str(tmp_path / "lab.secret")).returncode == 0
    return hosts, lab


@pytest.mark.slow  # about 7 s: the everyday run stays under five minutes
def test_a_network_file_spreads_a_network_over_loopback_hosts(tmp_path: Path) -> None:
    """Four hosts as four loopback addresses: each starts its part, each sends, all receive."""
    hosts, lab = loopback_lab(tmp_path)
    try:
        lab.start()
        sent = {}
        for h, host in enumerate(hosts):
            origin = NODES - h * PER_HOST  # a node on another host
            sent[lab.send(host, origin, f"from host {h + 1}")] = origin
        lab.everywhere(sent, hosts[0], 20)
        remote = Host("laptop", tmp_path / "laptop")  # runs no node, holds the file
        status = remote.cli("status", "--json", "--config", str(lab.file))
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [n["state"] for n in report["nodes"]] == ["up"] * NODES
        assert len(report["parts"]) == 1
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path))


@pytest.mark.slow  # about 15 s
def test_a_change_on_one_host_keeps_the_conditions_set_on_another(tmp_path: Path) -> None:
    """A pause, which only the paused node's host can make, sent that host's conditions to
    every node: a partition set from another host was gone from all of them."""
    hosts, lab = loopback_lab(tmp_path)
    config = ["--config", str(lab.file)]
    try:
        lab.start()
        parted = hosts[0].cli("partition", "1-8", f"9-{NODES}", *config)
        assert parted.returncode == 0, parted.stderr
        last = hosts[-1]  # it runs the last node: the only host that may pause it
        paused = last.cli("pause", str(NODES), *config)
        assert paused.returncode == 0, paused.stderr
        groups = [list(range(1, 9)), list(range(9, NODES + 1))]
        shown = json.loads(last.cli("status", "--json", *config).stdout)["conditions"]
        assert shown["groups"] == groups, "the pausing host's own state knows it now"
        net = network_files.load(lab.file)
        held = GossipClient(net.nodes[1].address, net.key).status()["conditions"]
        assert held["groups"] == groups, held
        assert held["paused"] == [NODES], held
        assert last.cli("resume", str(NODES), *config).returncode == 0
        assert hosts[0].cli("heal", *config).returncode == 0
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path))


@pytest.mark.slow  # about 20 s
def test_a_partition_made_from_a_host_that_does_not_mend_is_kept(tmp_path: Path) -> None:
    """Host 1's supervisor mends (it holds node 1), from its own state, which a partition
    made elsewhere never reaches: it planned links across it, the nodes refused them as
    dead, and status called the network one part with links that carried nothing."""
    _, lab = loopback_lab(tmp_path)
    config = ["--config", str(lab.file)]
    laptop = Host("laptop", tmp_path / "laptop")  # runs no node, holds the file
    sides = [list(range(1, 9)), list(range(9, NODES + 1))]
    try:
        lab.start()
        parted = laptop.cli("partition", "1-8", f"9-{NODES}", *config)
        assert parted.returncode == 0, parted.stderr

        def parts() -> list[list[int]]:
            return json.loads(laptop.cli("status", "--json", *config).stdout)["parts"]

        assert wait_until(lambda: parts() == sides, 15), parts()
        # The supervisor mends a split once it has lasted a few of its looks.
        assert not wait_until(lambda: parts() != sides, 12, 0.2), parts()
        log = (lab.hosts[0].home / "network-lab" / "supervisor.log").read_text()
        side = {n: i for i, group in enumerate(sides) for n in group}
        links = re.findall(r"(?:Swap|Introduce)\(at=(\d+), (?:old=\d+, new|peer)=(\d+)\)", log)
        across = [(a, b) for a, b in links if side[int(a)] != side[int(b)]]
        assert not across, f"host 1's supervisor linked across the partition: {across}"
        assert laptop.cli("heal", *config).returncode == 0
        assert wait_until(lambda: len(parts()) == 1, 15), parts()
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path))


@pytest.mark.slow  # about 15 s
def test_a_node_removed_from_one_host_and_restarted_on_its_own_is_addressed_again(
    tmp_path: Path,
) -> None:
    """Each host keeps its own state: the host that removed a node on another host still
    called it removed once that host restarted it, and refused to address it."""
    hosts, lab = loopback_lab(tmp_path)
    config = ["--config", str(lab.file)]
    try:
        lab.start()
        removed = hosts[0].cli("remove-node", str(NODES), *config)
        assert removed.returncode == 0, removed.stderr

        def gone() -> bool:  # its process ends once it has left: then its host may restart it
            shown = json.loads(hosts[-1].cli("status", "--json", *config).stdout)
            return shown["nodes"][NODES - 1]["state"] == "down"

        assert wait_until(gone, 10)
        restarted = hosts[-1].cli("restart-node", str(NODES), *config)
        assert restarted.returncode == 0, restarted.stderr
        sent = {lab.send(hosts[0], NODES, "to the node back on its host"): NODES}
        lab.everywhere(sent, hosts[0], 20)
        shown = json.loads(hosts[0].cli("status", "--json", *config).stdout)
        assert shown["nodes"][NODES - 1]["state"] == "up", shown["nodes"][NODES - 1]
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path))


@pytest.fixture
def namespaces(tmp_path: Path) -> Iterator[list[Host]]:
    try:
        with bridged_namespaces(tmp_path) as hosts:
            yield hosts
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.slow  # about 25 s: the everyday run stays under five minutes; .ci/run runs it
def test_four_hosts_in_namespaces_survive_a_cut_link(
    tmp_path: Path, namespaces: list[Host]
) -> None:
    hosts = namespaces
    addresses = {
        n: f"{hosts[(n - 1) // PER_HOST].address}:{7001 + (n - 1) % PER_HOST}"
        for n in range(1, NODES + 1)
    }
    lab = Lab(hosts, network_file(tmp_path / "lab.toml", addresses))
    assert hosts[0].cli("new-secret", str(tmp_path / "lab.secret")).returncode == 0
    lab.start()
    try:
        sent = {}
        for h, host in enumerate(hosts):
            for origin in (h * PER_HOST + 1, (h * PER_HOST + 6) % NODES + 1):
                sent[lab.send(host, origin, f"host {h + 1} to node {origin}")] = origin
        lab.everywhere(sent, hosts[0], 30)

        hosts[3].unplug()
        host4 = set(range(3 * PER_HOST + 1, NODES + 1))
        for h, host in enumerate(hosts):
            origin = h * PER_HOST + 2
            sent[lab.send(host, origin, f"during the cut, host {h + 1}")] = origin
        rest = set(range(1, NODES + 1)) - host4
        assert wait_until(
            lambda: (
                cut_off(hosts[3].survey(lab.file, host4), host4)
                and cut_off(hosts[0].survey(lab.file, rest), rest)
            ),
            60,
            interval=1,
        ), "each side heals apart"

        hosts[3].plug()
        lab.everywhere(sent, hosts[3], 90)
        status = hosts[0].cli("status", "--json", "--config", str(lab.file))
        report = json.loads(status.stdout)
        assert len(report["parts"]) == 1, report["parts"]
    finally:
        lab.stop()
    assert not gossip_processes(str(tmp_path)), "stop-network on each host stops its part"
