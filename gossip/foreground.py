"""A command that runs in the foreground as a container's process (``gossip start-node``,
``gossip mend``): it logs to stdout, and stops cleanly on SIGTERM, Ctrl-C or SIGHUP."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
"""Every log line of gossip's processes: nodes, supervisors, menders."""


def log_to_stdout() -> None:
    """Send every log line to stdout, where a container engine collects them."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=LOG_FORMAT, force=True)


def stop_on_signals(who: str, stop: Callable[[], None]) -> None:
    """On SIGTERM (the engine stopping the container), SIGINT or SIGHUP (the terminal it
    ran in closed), log it and call ``stop``."""

    def stopping(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("gossip").info("%s: %s, stopping", who, signal.Signals(signum).name)
        stop()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stopping)
