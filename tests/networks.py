"""Helpers for the integration tests: real node processes on real loopback ports, real CLI.

Each network gets a port range of its own; ``Networks`` remembers what it started, so the
fixtures in ``conftest.py`` can stop it all, even when a test fails.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gossip import state
from gossip.client import GossipClient
from gossip.network import await_spread, wait_until
from gossip.protocol import MessageView

CLI_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 15.0
PORT_BASE = int(os.environ.get("GOSSIP_TEST_PORT_BASE", "20000"))
PORT_STEP = 40
"""Each test network gets 40 ports of its own, all well below the kernel's ephemeral range.
Two test runs side by side (two checkouts) set ``GOSSIP_TEST_PORT_BASE`` apart."""

_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_RANGE = range(PORT_BASE + _WORKER * PORT_STEP, 32768 - PORT_STEP, PORT_STEP * _WORKERS)
"""pytest-xdist's workers take turns along the range, so two never pick the same origin;
a worker that reaches the end starts again from its first, whose network is long stopped."""

_origins = itertools.cycle(_RANGE)


def ports_free(origin: int, count: int) -> bool:
    for port in range(origin + 1, origin + count + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_origin(count: int = PORT_STEP - 1) -> int:
    """A port origin whose next ``count`` ports nobody listens on and no other worker picks."""
    for origin in itertools.islice(_origins, len(_RANGE)):
        if origin + count < 32768 and ports_free(origin, count):
            return origin
    raise RuntimeError("no free port range left for tests")


@dataclass
class Result:
    code: int
    out: str
    err: str


def interrupted_after(done: Callable[..., Any]) -> Callable[..., Any]:
    """``done``, then a Ctrl-C the moment it returns: where a real one can land, and
    no test can time it to."""

    def interrupted(*args: Any) -> Any:
        done(*args)
        raise KeyboardInterrupt

    return interrupted


def run_python(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run this Python and capture its output."""
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def gossip_cli(*args: str, cwd: Path | None = None) -> Result:
    """Run the real command line, as a user would, and capture what it prints."""
    return run_python("-m", "gossip", *args, cwd=cwd)


def gossip_processes(marker: str) -> list[int]:
    """Pids of supervisor and node processes whose command line mentions ``marker``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ours = state.SUPERVISOR_MODULE.encode() in cmdline and marker.encode() in cmdline
        if ours and state.pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


@dataclass
class Net:
    """A running test network."""

    origin: int
    directory: Path
    cwd: Path

    @property
    def state(self) -> state.NetworkState:
        loaded = state.load(self.directory)
        assert loaded is not None, "the network has no state file"
        return loaded

    def cli(self, *args: str) -> Result:
        """The real command line, addressed to this network."""
        return gossip_cli(*args, "--port-origin", str(self.origin), cwd=self.cwd)

    def client(self, number: int) -> GossipClient:
        network = self.state
        return GossipClient(network.nodes[number].address, network.key)

    def peek(self, number: int) -> list[MessageView]:
        return self.client(number).read_messages("all", peek=True)

    def kill(self, number: int) -> None:
        """Kill a node the hard way (no goodbye) and wait until it is gone."""
        pid = self.state.nodes[number].pid
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not state.pid_alive(pid), 5), f"node {number} survived"

    def wait_delivered(self, message_id: str, nodes: list[int] | None = None) -> dict[int, float]:
        """Wait until every listed (default: every live) node holds the message."""
        network = self.state
        seen = await_spread(network, message_id, DELIVERY_TIMEOUT, nodes=nodes)
        missing = set(network.live_numbers() if nodes is None else nodes) - set(seen)
        assert not missing, f"message {message_id} missing at nodes {sorted(missing)}"
        return seen

    def wait_copies(self, number: int, message_id: str, copies: int) -> MessageView:
        """Wait until a node holds at least ``copies`` copies of a message."""
        found: list[MessageView] = []

        def enough() -> bool:
            found[:] = [v for v in self.peek(number) if v.id == message_id]
            return bool(found) and len(found[0].copies) >= copies

        assert wait_until(enough, DELIVERY_TIMEOUT), f"node {number} has {found}"
        return found[0]


class Networks:
    """Starts networks with the real CLI and remembers them, so they can all be stopped."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.nets: list[Net] = []

    def reserve(self, count: int = PORT_STEP - 1) -> Net:
        """A port range for a network the test starts itself; it is stopped at the end too."""
        origin = free_origin(count)
        net = Net(origin, self.home / f"network-{origin}", self.cwd)
        self.nets.append(net)
        return net

    def start(self, *args: str) -> Net:
        net = self.reserve()
        result = net.cli("start-network", *args)
        assert result.code == 0, result.err
        return net

    def stop_all(self) -> None:
        for net in self.nets:
            net.cli("stop-network")
        leftovers = gossip_processes(str(self.home))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"stop-network left processes running: {leftovers}"


MESSAGE_ID = re.compile(r"\(id ([0-9a-f]{32})\)$")


def send(net: Net, node: int, text: str, *extra: str) -> str:
    """Send a message with the real CLI; its id."""
    result = net.cli("send-message", str(node), text, *extra)
    assert result.code == 0, result.err
    match = MESSAGE_ID.search(result.out.strip())
    assert match, result.out
    return match.group(1)


def peer_numbers(net: Net, node: int) -> set[int]:
    """The peers of a node, as it reports them."""
    return {p.number for p in net.client(node).peers()}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking it is one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
