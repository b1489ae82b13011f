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

    def check_output(self, path: Path | None, suffixes: frozenset[str] | None = None) -> None:
        """Refuse now a file the run could only fail to write at its end, minutes later."""
        if path is None:
            return
        if not path.parent.is_dir():
            self.refuse(f"{path}: no folder {path.parent} to write it in")
        if path.is_dir():
            self.refuse(f"{path} is a folder: give a file name in it")
        if suffixes is not None and path.suffix.lower() not in suffixes:
            kinds = ", ".join(sorted(suffixes))
            self.refuse(f"{path}: a picture is written as one of {kinds}")


PICTURES = frozenset({".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"})
"""What ``--plot`` may write (kinds matplotlib writes without anything more)."""


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
def uninterrupted() -> Iterator[None]:
    """A second Ctrl-C or SIGTERM during a clean-up would leave the rest of it undone:
    both are held off until the block ends."""
    held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def private_home(prefix: str) -> Iterator[Path]:
    """A new ``$GOSSIP_HOME`` for the run's networks. When the block ends, by any road
    (a failure, Ctrl-C, SIGTERM), every network still running there is stopped and the
    directory is deleted with its stores."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    before, os.environ["GOSSIP_HOME"] = os.environ.get("GOSSIP_HOME"), str(home)
    try:
        yield home
    finally:
        with uninterrupted():
            try:
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
    SIGKILL. Call it ``uninterrupted``."""
    for directory in sorted(home.glob("network-*")):
        origin = directory.name.removeprefix("network-")
        if origin.isdigit() and state.processes_of(directory):
            with contextlib.suppress(Failed):
                gossip("stop-network", "--port-origin", origin)
    kill_all_under(home)


def processes_under(home: Path) -> list[int]:
    """Every gossip process (supervisor or node) whose network lives under ``home``."""
    return [
        pid
        for directory, pids in state.gossip_processes().items()
        if Path(directory).is_relative_to(home)
        for pid in pids
    ]


def kill_all_under(home: Path, patience: float = 10.0) -> None:
    """SIGKILL every gossip process whose network lives under ``home``, until none is
    left: a supervisor still starting its nodes may fork one more while the first look
    is made."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        found = processes_under(home)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def guarded(main: Callable[[], object]) -> NoReturn:
    """Run ``main``; end in one line, not a traceback, if it fails or is interrupted.

    SIGTERM (``timeout``, ``kill``) is taken as Ctrl-C, so the clean-up of every block
    it ends runs. Once ``main`` is over, both are held off: one that came while the
    interpreter shuts down would end it by the signal, not by the exit status."""
    name = Path(sys.argv[0]).name
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        main()
        status = 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what it started is stopped", file=sys.stderr)
        status = 130
    except (Failed, GossipError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        status = 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(status)
