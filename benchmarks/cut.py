"""Measure gossip over several hosts: four Linux network namespaces, four nodes each.

Needs root on Linux (it makes namespaces, veth pairs and a bridge, and removes them). Prints
cross-host delivery latency, then what happens when one host's link is cut for a while
and restored: how long until each side has healed apart, and, once the link is back, until
the network is one again and every node holds every message. Run by hand:

    sudo uv run python benchmarks/cut.py [--messages M] [--cut SECONDS]
"""

from __future__ import annotations

import quiet  # noqa: F401  (first: a Ctrl-C while the rest imports)

# isort: split
import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness import Failed, Parser, at_least, guarded, seconds, uninterrupted

from gossip.namespaces import (
    NODES,
    PER_HOST,
    Lab,
    Unavailable,
    bridged_namespaces,
    cut_off,
    network_file,
)
from gossip.network import parts


def arrivals(lab: Lab, message_id: str) -> dict[int, float]:
    """When each node first got a message (its own clock: the namespaces share one)."""
    survey = lab.hosts[0].run("-c", ARRIVALS, str(lab.file), message_id)
    return {int(n): t for n, t in json.loads(survey.stdout).items()}


ARRIVALS = """
import json, sys
from pathlib import Path
from gossip import config
from gossip.client import GossipClient
_, network = config.find(Path(sys.argv[1]))
found = {}
for number, entry in network.nodes.items():
    for m in GossipClient(entry.address, network.key, timeout=3).read_messages(peek=True):
        if m.id == sys.argv[2]:
            found[number] = min(c.arrived for c in m.copies)
print(json.dumps(found))
"""


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=at_least(1), default=20, help="for the latency figure")
    parser.add_argument("--cut", type=seconds, default=15.0, help="seconds host 4 is cut off")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gossip-cut-"))
    try:
        with bridged_namespaces(base) as hosts:
            addresses = {
                n: f"{hosts[(n - 1) // PER_HOST].address}:{7001 + (n - 1) % PER_HOST}"
                for n in range(1, NODES + 1)
            }
            lab = Lab(hosts, network_file(base / "lab.toml", addresses))
            hosts[0].cli("new-secret", str(base / "lab.secret"))
            began = time.monotonic()
            lab.start()
            print(f"4 hosts x 4 nodes started in {time.monotonic() - began:.2f} s")
            try:
                measure(lab, options)
            finally:
                with uninterrupted():
                    lab.stop()
    except Unavailable as exc:
        raise Failed(f"cannot run: {exc}") from None
    finally:
        shutil.rmtree(base, ignore_errors=True)


def measure(lab: Lab, options: argparse.Namespace) -> None:
    hosts = lab.hosts
    latencies = []
    for i in range(options.messages):
        origin = i % NODES + 1
        message_id = lab.send(hosts[(origin - 1) // PER_HOST], origin, f"latency {i}")
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 30
        while len(seen) < NODES and time.monotonic() < deadline:
            seen = arrivals(lab, message_id)
        latencies.append((max(seen.values()) - seen[origin]) * 1000)
    print(f"submit -> all 16 nodes on 4 hosts hold it: p50 {statistics.median(latencies):.1f} ms")

    sent = {}
    hosts[3].unplug()
    cut = time.monotonic()
    for h, host in enumerate(hosts):
        origin = h * PER_HOST + 2
        sent[lab.send(host, origin, f"during the cut {h}")] = origin
    host4 = set(range(3 * PER_HOST + 1, NODES + 1))

    while not cut_off(hosts[3].survey(lab.file, host4), host4):
        time.sleep(0.2)  # polling pace: each survey is itself a process
    print(f"cut -> host 4's nodes have healed apart: {time.monotonic() - cut:.1f} s")
    time.sleep(max(0.0, cut + options.cut - time.monotonic()))  # the cut lasts what was asked
    hosts[3].plug()
    back = time.monotonic()
    one = None
    while True:
        survey = hosts[3].survey(lab.file)
        links = {n: v["peers"] for n, v in survey.items() if v is not None}
        if one is None and len(links) == NODES and len(parts(links)) == 1:
            one = time.monotonic() - back
        if all(v is not None and set(sent) <= set(v["copies"]) for v in survey.values()):
            break
    everywhere = time.monotonic() - back
    print(f"link restored -> one network again: {one or everywhere:.1f} s")
    print(f"link restored -> every node holds every message: {everywhere:.1f} s")


if __name__ == "__main__":
    guarded(main)
