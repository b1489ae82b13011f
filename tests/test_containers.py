"""The Compose network of deploy/compose.yaml on real containers: 16 nodes, each a
``gossip start-node`` container, no supervisor, and one ``gossip mend`` container that looks
at the whole network. Messages reach every live node after two containers are killed and
one is cut off the network, the mender sees exactly those three go, and the three catch up
when they come back. Run on its own (CI's container step; root starts Docker Engine if
needed):

    uv run pytest -m containers tests/test_containers.py

Where Docker cannot run (not root, no docker.io, no debootstrap for the base image), the
test skips and says why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip.network import wait_until
from tests.compose import NODES, Compose, Unavailable, build_image, engine, stop_engine

pytestmark = pytest.mark.containers

DEADLINE = 60.0
EVERYONE = list(range(1, NODES + 1))
THREE_DOWN = "mender: 13 of 16 nodes answer; down: 3, 7, 12"
ALL_BACK = "mender: 16 of 16 nodes answer; down: none"


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Docker Engine running, with the gossip image built from this checkout."""
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    try:
        daemon = engine(log)
    except Unavailable as exc:
        pytest.skip(f"Docker cannot run here: {exc}")
    try:
        try:
            build_image()
        except Unavailable as exc:
            pytest.skip(f"the image cannot be built here: {exc}")
        yield
    finally:
        if daemon is not None:
            stop_engine(daemon)


@pytest.fixture
def network(docker: None, tmp_path: Path) -> Iterator[Compose]:
    """The 16 containers up; taken down with their volumes and network, whatever happens."""
    project = Compose(f"gossiptest{os.getpid()}", tmp_path)
    try:
        project.up()
        yield project
    finally:
        project.down()


def test_a_compose_network_survives_kills_and_a_cut_and_catches_up(network: Compose) -> None:
    assert wait_until(lambda: network.live(EVERYONE, via=16), DEADLINE, 0.5)
    sent = [network.send(16, n, f"hello from the start, to {n}") for n in (1, 6, 11)]
    assert not network.lacking(16, sent, EVERYONE, 30)

    network.kill(3)
    network.kill(7)
    network.disconnect(12)
    live = [n for n in EVERYONE if n not in (3, 7, 12)]
    during = [network.send(16, n, f"while three are gone, to {n}") for n in (2, 9)]
    assert not network.lacking(16, during, live, DEADLINE)
    assert wait_until(lambda: network.live(live, via=16), DEADLINE, 0.5)
    # The mender looks once a second: the three come back only after it has seen them go.
    assert wait_until(lambda: THREE_DOWN in network.mender_log(), DEADLINE, 0.5)

    network.reconnect(12)
    network.start(3)
    network.start(7)
    assert wait_until(lambda: network.live(EVERYONE, via=16), DEADLINE, 0.5)
    sent += [*during, network.send(16, 3, "after they are back")]
    assert not network.lacking(16, sent, EVERYONE, DEADLINE)

    # The CLI from a container of its own, as the README shows it.
    assert "16 of 16 nodes up" in network.compose("run", "--rm", "cli", "status")
    assert wait_until(  # and has seen them come back
        lambda: ALL_BACK in network.mender_log().split(THREE_DOWN, 1)[-1], DEADLINE, 0.5
    )

    network.compose("stop")  # SIGTERM: every node and the mender exit cleanly
    assert network.exit_codes() == dict.fromkeys([*EVERYONE, "mender"], 0)
    mender = network.mender_log()
    assert "Traceback" not in mender
    assert mender.rstrip().endswith("The mender of network 'compose' stopped.")
