"""What the benchmark scripts share: options checked in one line, and a run that leaves
nothing behind, however it ends.

A benchmark is run by hand, often with odd options, and often stopped halfway (Ctrl-C, a
``timeout``). Each of its networks holds a hundred megabytes of stores by the end, so a run
that left its scratch directory, or a network, behind would fill the disk or load the
machine a little more with every run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from gossip import state
from gossip.errors import GossipError


class Failed(Exception):
    """The benchmark cannot go on; the text says why, in one line."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose refusal is one line, as the ``gossip`` command's are."""

    def error(self, message: str) -> NoReturn:
        self.refuse(f"{message} (see --help)")

    def refuse(self, message: str) -> NoReturn:
        """End here: ``message`` says what is wrong and what to do."""
        self.exit(2, f"{self.prog}: {message}\n")


def at_least(low: int) -> Callable[[str], int]:
    """An option type: a whole number no smaller than ``low``."""

    def whole(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"{number} is too small: the least is {low}")
        return number

    return whole


def seconds(text: str) -> float:
    """An option type: a time in seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} seconds: give zero or more")
    return value


def sizes(text: str) -> list[int]:
    """An option type: network sizes separated by commas (none: an empty text)."""
    return [at_least(4)(part.strip()) for part in text.split(",") if part.strip()]


def gossip(*args: str) -> None:
    """Run one ``gossip`` command; Failed, with what it said, if it fails."""
    done = subprocess.run([sys.executable, "-m", "gossip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or "no word").splitlines()[-1]
        raise Failed(f"gossip {' '.join(args)} failed: {said.removeprefix('gossip: ')}")


def _interrupted(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminable() -> Iterator[None]:
    """SIGTERM (``timeout``, ``kill``) ends the block as Ctrl-C does: its clean-up runs."""
    terminate = signal.signal(signal.SIGTERM, _interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, terminate)


@contextlib.contextmanager
def private_home(prefix: str) -> Iterator[Path]:
    """A new ``$GOSSIP_HOME`` for the run's networks. When the block ends, by any road
    (a failure, Ctrl-C, SIGTERM), every network still running there is stopped and the
    directory is deleted with its stores."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    before, os.environ["GOSSIP_HOME"] = os.environ.get("GOSSIP_HOME"), str(home)
    try:
        with terminable():
            try:
                yield home
            finally:
                stop_everything(home)
    finally:
        if before is None:
            os.environ.pop("GOSSIP_HOME", None)
        else:
            os.environ["GOSSIP_HOME"] = before
        shutil.rmtree(home, ignore_errors=True)


def stop_everything(home: Path) -> None:
    """Stop every network still running under ``home``: with ``stop-network``, and what
    that leaves (a network that failed halfway, one started from a network file) with
    SIGKILL."""
    # A second Ctrl-C or SIGTERM while this runs would leave the rest running: hold them off.
    held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for directory in sorted(home.glob("network-*")):
            origin = directory.name.removeprefix("network-")
            if origin.isdigit() and state.processes_of(directory):
                with contextlib.suppress(Failed):
                    gossip("stop-network", "--port-origin", origin)
        kill_all_under(home)
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)


def kill_all_under(home: Path, patience: float = 10.0) -> None:
    """SIGKILL every gossip process whose network lives under ``home``, until none is
    left: a supervisor still starting its nodes may fork one more while the first look
    is made."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        found = [
            pid
            for directory, pids in state.gossip_processes().items()
            if Path(directory).is_relative_to(home)
            for pid in pids
        ]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def guarded(main: Callable[[], object]) -> NoReturn:
    """Run ``main``; end in one line, not a traceback, if it fails or is interrupted."""
    name = Path(sys.argv[0]).name
    try:
        main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what it started is stopped", file=sys.stderr)
        sys.exit(130)
    except (Failed, GossipError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
