"""``network.start`` deletes nothing a stopped network left unless the new one runs."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from gossip import network, state
from gossip.errors import GossipError
from tests.networks import free_origin, interrupted_after

ORIGIN = free_origin()
"""Free ports for the real check ``start`` makes, below the kernel's ephemeral range (a
fixed 41700 was in it: once an outgoing connection held 41702 and the test failed)."""


def stopped_network(home: Path) -> tuple[Path, dict[str, bytes]]:
    """A run directory as stop-network leaves it: plan, secret, stores, logs."""
    old = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    directory = old.directory
    directory.mkdir(parents=True)
    state.save(old, directory)
    state.write_secret(directory / state.SECRET_FILE, b"old secret" * 4)
    for name in ("node-1.db", "node-1.db-wal", "node-2.db", "node-1.log"):
        (directory / name).write_bytes(f"kept {name}".encode())
    return directory, {p.name: p.read_bytes() for p in directory.iterdir()}


def test_a_start_that_fails_puts_back_what_a_stopped_network_left(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, before = stopped_network(gossip_home)

    def fails(directory: Path, net: state.NetworkState, mode: str) -> None:
        (directory / "node-1.db").write_bytes(b"a new node's store")
        raise GossipError(f"could not start the network: port {ORIGIN + 1} is in use")

    monkeypatch.setattr(network, "_own", fails)
    fresh = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    with pytest.raises(GossipError, match="in use"):
        network.start(fresh)
    after = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "supervisor.log"}
    assert after == before


def test_a_start_that_works_replaces_what_a_stopped_network_left(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = stopped_network(gossip_home)
    monkeypatch.setattr(network, "_own", lambda directory, net, mode: None)
    fresh = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    network.start(fresh)
    left = sorted(p.name for p in directory.iterdir())
    assert left == [state.STATE_FILE, state.SECRET_FILE]
    assert (directory / state.SECRET_FILE).read_bytes().strip() != b"old secret" * 4


@pytest.mark.parametrize("where", ["_launch", "_own"])
def test_a_start_interrupted_once_its_nodes_run_stops_them(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Ctrl-C (or SIGTERM made one) just after the supervisor reported, before or after
    its pids were written down: the start fails, and nothing of it runs on."""
    directory, before = stopped_network(gossip_home)
    monkeypatch.setattr(network, where, interrupted_after(getattr(network, where)))
    fresh = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    try:
        with pytest.raises(KeyboardInterrupt):
            network.start(fresh)
        left = state.processes_of(directory)
    finally:
        network.stop_processes(directory)
    assert left == []
    kept = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert {n: kept[n] for n in kept.keys() - {"supervisor.log", state.LOCK_FILE}} == before


def test_a_resume_interrupted_once_its_nodes_run_stops_them(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resume left them running while the state still said stopped: every command
    then said the network was being stopped or started, until a stop-network."""
    fresh = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    directory = network.start(fresh)
    try:
        network.stop(directory, fresh)
        real = network._own
        monkeypatch.setattr(network, "_own", interrupted_after(real))
        with pytest.raises(KeyboardInterrupt):
            network.resume(directory)
        left = state.processes_of(directory)
        monkeypatch.setattr(network, "_own", real)
        resumed = network.resume(directory)
        assert state.running(directory) is not None
    finally:
        network.stop_processes(directory)
    assert left == []
    assert sorted(resumed.live_numbers()) == [1, 2]


def test_a_start_interrupted_as_it_deletes_what_it_replaces_deletes_it_whole(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the stopped network's files, set aside, were deleted left part of
    them there for good (stop-network left them too) and the new network running."""
    directory, _ = stopped_network(gossip_home)
    real = shutil.rmtree

    def interrupted(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name.startswith(".replaced-"):  # to this thread: others take none
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", interrupted)
    fresh = network.plan({1: [2], 2: [1]}, ORIGIN, 3, "circular")
    try:
        with pytest.raises(KeyboardInterrupt):
            network.start(fresh)
        running = state.running(directory)
        set_aside = list(directory.glob(".replaced-*"))
    finally:
        network.stop_processes(directory)
    assert running is not None, "the network that had started runs on"
    assert set_aside == []
