"""Frames held back for a while before they go out: the I/O side of a network delay.

One thread per node, started the first time a delay is in force, with a queue ordered
by when each batch is due; it hands each batch to the server's carrier when its time
comes. The node decides nothing here (``gossip.conditions`` says how long).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from gossip.sends import Send

log = logging.getLogger("gossip.node")


class Delayer:
    """Hands batches of sends to ``carry`` once their delay has passed."""

    def __init__(self, carry: Callable[[list[Send]], object]) -> None:
        self._carry = carry
        self._due: list[tuple[float, int, list[Send]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, daemon=True, name="delays").start()

    def later(self, delay: float, sends: list[Send]) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), sends))
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._due.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(wait)
                if self._closed:
                    return
                _, _, sends = heapq.heappop(self._due)
            try:
                self._carry(sends)
            except Exception:  # one batch that failed (a server closing) must not end the rest
                log.exception("a delayed batch of %d frames could not go out", len(sends))
