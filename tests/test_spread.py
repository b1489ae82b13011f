"""``gossip.spread``: the first-arrival tree and the arrival timeline, from recorded copies."""

from __future__ import annotations

import pytest

from gossip.protocol import Copy, MessageView
from gossip.spread import Arrival, first_arrivals, timeline


def view(*copies: tuple[tuple[int, ...], float], sent: float = 100.0) -> MessageView:
    return MessageView("m", "hi", sent, tuple(Copy(p, t) for p, t in copies), False)


def test_each_node_hangs_from_the_node_its_first_copy_came_from() -> None:
    held = {
        1: view(((1,), 100.0)),
        2: view(((1, 2), 100.002), ((1, 3, 2), 100.001)),
        3: view(((1, 3), 100.0005)),
    }
    arrivals = first_arrivals(held)
    assert [(a.node, a.parent, a.hops) for a in arrivals] == [(1, None, 0), (3, 1, 1), (2, 1, 1)]
    assert [a.delay_ms for a in arrivals] == pytest.approx([0.0, 0.5, 2.0])


def test_clock_skew_never_makes_a_negative_delay_and_ties_go_by_hops_then_node() -> None:
    held = {4: view(((1, 2, 4), 99.0)), 3: view(((1, 3), 100.0)), 2: view(((1, 2), 100.0))}
    arrivals = first_arrivals(held)
    assert [a.node for a in arrivals] == [2, 3, 4]
    assert {a.delay_ms for a in arrivals} == {0.0}


def test_timeline_wraps_between_entries() -> None:
    arrivals = [Arrival(n, None if n == 1 else 1, 1, n * 1.25) for n in range(1, 13)]
    lines = timeline(arrivals, width=40)
    assert all(len(line) <= 40 for line in lines)
    assert all(line.endswith(",") for line in lines[:-1])
    joined = " ".join(lines)
    assert joined.startswith("1 (+1.2 ms), 2 (+2.5 ms)")
    assert joined.endswith("12 (+15.0 ms)")
    assert joined.count(" ms)") == 12
    assert timeline(arrivals, width=40, indent="  ") == ["  " + line for line in lines]


def test_timeline_of_nothing_is_empty() -> None:
    assert timeline([]) == []
