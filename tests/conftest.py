"""Fixtures for integration tests: real node processes on real loopback ports, real CLI.

Every test that starts a network gets its own port range and its own ``GOSSIP_HOME``,
and every process it started is stopped afterwards, even when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gossip import state
from tests.networks import Networks, gossip_processes


def pytest_configure(config: pytest.Config) -> None:
    """The tests that Ctrl-C a command send it SIGINT, and a command takes it as Ctrl-C only
    if it did not start with SIGINT ignored. A run a script started in the background
    (``pytest &``, no job control) has it ignored, and so would every command it starts:
    those tests failed there and nowhere else. Give SIGINT back its default first."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def gossip_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state directory, so tests never see each other's networks or the user's."""
    home = tmp_path / "gossip-home"
    monkeypatch.setenv("GOSSIP_HOME", str(home))
    return home


@pytest.fixture
def networks(tmp_path: Path, gossip_home: Path) -> Iterator[Networks]:
    """Networks for one test; every process they started is gone when the test ends."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    starter = Networks(gossip_home, cwd)
    try:
        yield starter
    finally:
        starter.stop_all()


@pytest.fixture(scope="session", autouse=True)
def no_leaked_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole suite, no node or supervisor started under the test tree is left."""
    base = tmp_path_factory.getbasetemp()
    yield
    leftovers = gossip_processes(str(base))
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"the test suite leaked gossip processes: {leftovers}"


@pytest.fixture
def fake_supervisor() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts live processes whose command line names the supervisor module and the given
    run directories, as a network's processes do; each waits on stdin."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*directories: Path) -> subprocess.Popen[bytes]:
        code = "import sys; sys.stdin.read()"
        module = state.SUPERVISOR_MODULE
        command = [sys.executable, "-c", code, module, *map(str, directories)]
        started.append(subprocess.Popen(command, stdin=subprocess.PIPE))
        return started[-1]

    try:
        yield start
    finally:
        for process in started:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture(autouse=True)
def signals_as_they_were() -> Iterator[None]:
    """A test leaves this worker's signal handlers and mask as it found them: loading a
    benchmark script in-process once left SIGINT ending the process, and the next test
    that sent itself a Ctrl-C took the whole worker down."""
    before = ([signal.getsignal(s) for s in WATCHED], signal.pthread_sigmask(signal.SIG_BLOCK, []))
    yield
    after = ([signal.getsignal(s) for s in WATCHED], signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert after == before, "the test changed how this process takes signals"
