"""Helpers shared by the tests that drive the sans-IO node core directly."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from gossip.node import Address


class StillClock:
    """Simulated time: it moves only when the test moves it, so ages and deadlines are exact."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def id_maker(prefix: str = "m") -> Callable[[], str]:
    """Predictable message ids: prefix1, prefix2, ..."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def address(number: int) -> Address:
    return ("127.0.0.1", 7000 + number)
