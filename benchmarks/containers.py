"""Measure gossip on containers: the image's size, the time to start the 16 containers of
deploy/compose.yaml until every node answers in one connected network, and how long a
message takes to reach every container. Builds the image first; takes every network it
starts down again. Run by hand, as root (or a user of the docker group):

    uv run python benchmarks/containers.py [--runs R] [--messages M]

Latency is read from the nodes' own arrival times: every container shares the host's clock.
"""

from __future__ import annotations

import quiet  # noqa: F401  (first: a Ctrl-C while the rest imports)

# isort: split
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import Failed, Parser, at_least, guarded, uninterrupted

from gossip.network import wait_until
from tests.compose import NODES, Compose, Unavailable, build_image, engine, run, stop_engine

EVERYONE = list(range(1, NODES + 1))
START_DEADLINE = 120.0
MESSAGES = 20


def image_size(name: str) -> int:
    return int(run("docker", "image", "inspect", "-f", "{{.Size}}", name))


def start_once(
    scratch: Path, run_number: int, messages: int
) -> tuple[tuple[float, float], list[float]]:
    """One start of the network: seconds until Compose has started the 16 containers, and
    until all 16 nodes answer, connected; latencies of messages sent one after another
    afterwards (only on the first run)."""
    project = Compose(f"gossipbench{os.getpid()}r{run_number}", scratch)
    try:
        began = time.monotonic()
        project.up()
        up = time.monotonic() - began
        if not wait_until(lambda: live(project), START_DEADLINE, 0.2):
            raise RuntimeError("the network did not come up")
        started = time.monotonic() - began
        return (up, started), latencies(project, messages) if run_number == 0 else []
    finally:
        project.down()


def live(project: Compose) -> bool:
    try:
        return project.live(EVERYONE, via=16)
    except RuntimeError:  # the container is not running yet
        return False


def latencies(project: Compose, count: int) -> list[float]:
    """Milliseconds from each message's submission to its arrival at the last container."""
    rng = random.Random(1)
    found = []
    for i in range(count):
        sent = project.send(16, rng.choice(EVERYONE), f"latency probe {i}")
        arrivals = project.spread(16, [sent], EVERYONE, 30)[sent]
        if len(arrivals) < NODES:
            raise RuntimeError(f"probe {i} reached only {len(arrivals)} containers")
        found.append((max(arrivals.values()) - min(arrivals.values())) * 1000)
    return found


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=at_least(1), default=3, help="starts of the network to time")
    parser.add_argument("--messages", type=at_least(2), default=MESSAGES, help="latency probes")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gossip-containers-") as scratch:
        try:
            daemon = engine(Path(scratch) / "dockerd.log")
        except Unavailable as exc:
            raise Failed(f"cannot run: {exc}") from None
        try:
            began = time.monotonic()
            build_image()
            built = time.monotonic() - began
            starts, found = [], []
            for number in range(options.runs):
                seconds, probes = start_once(Path(scratch), number, options.messages)
                starts.append(seconds)
                found += probes
            # Asked of the engine, so before it stops.
            sizes = {
                "image_mb": image_size("gossip:latest") / 1e6,
                "base_image_mb": image_size("gossip-base:bookworm") / 1e6,
            }
        except Unavailable as exc:
            raise Failed(f"cannot run: {exc}") from None
        except RuntimeError as exc:  # a docker command or the network failed
            raise Failed(str(exc).strip().splitlines()[0]) from None
        finally:
            if daemon is not None:
                with uninterrupted():
                    stop_engine(daemon)
    figures = {
        **sizes,
        "build_s": built,
        "containers_started_s": [up for up, _ in starts],
        "all_16_answer_connected_s": [ready for _, ready in starts],
        "load_average": os.getloadavg(),
        "latency_ms": {
            "median": statistics.median(found),
            "p90": statistics.quantiles(found, n=10, method="inclusive")[-1],
            "max": max(found),
        },
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    guarded(main)
