"""The delayer (``gossip.delays``): batches go out when due, in order, whatever one did."""

from __future__ import annotations

import threading

from gossip.delays import Delayer
from gossip.network import wait_until
from gossip.sends import Send


def send(n: int) -> Send:
    return Send(n, ("127.0.0.1", 7000 + n), b"/PING\n", "PING")


def test_a_batch_that_fails_to_go_out_does_not_end_the_later_ones() -> None:
    carried: list[int] = []
    lock = threading.Lock()

    def carry(sends: list[Send]) -> None:
        with lock:
            carried.extend(s.peer for s in sends)
        if sends[0].peer == 1:
            raise RuntimeError("cannot schedule new futures after shutdown")

    delayer = Delayer(carry)
    try:
        delayer.later(0.01, [send(1)])
        delayer.later(0.02, [send(2)])
        delayer.later(0.0, [send(3)])
        assert wait_until(lambda: len(carried) == 3, 5.0)
        assert carried == [3, 1, 2]
    finally:
        delayer.close()
