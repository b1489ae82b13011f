"""How a node splits what it reads into frames (``LineBuffer``), and how it counts acks
(``acked``): the sans-IO parts of answering frames a batch at a time."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.protocol import FrameError, LineBuffer, acked

# Bytes with newlines often enough to hold several lines, some short, some too long.
streams = st.lists(st.one_of(st.just(b"\n"), st.binary(max_size=12)), max_size=24).map(b"".join)
limits = st.integers(min_value=1, max_value=16)


class Reference:
    """The rule, one line at a time: a line is taken once its newline is within ``limit``
    bytes; ``limit`` bytes with no newline are refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = b""

    def feed(self, data: bytes) -> None:
        self.held += data


def drain_one_by_one(buffer: Reference) -> tuple[list[bytes], bool]:
    """Every line the rule gives now, and whether it then refused a line too long."""
    lines: list[bytes] = []
    while True:
        end = buffer.held.find(b"\n", 0, buffer.limit)
        if end < 0:
            return lines, len(buffer.held) >= buffer.limit
        lines.append(buffer.held[: end + 1])
        buffer.held = buffer.held[end + 1 :]


def drain_together(buffer: LineBuffer) -> tuple[list[bytes], bool]:
    """The same with ``complete_lines``, called until it has nothing more or refuses."""
    lines: list[bytes] = []
    try:
        while batch := buffer.complete_lines():
            lines += batch
    except FrameError:
        return lines, True
    return lines, False


@settings(max_examples=300, deadline=None)
@given(streams, limits, st.data())
def test_complete_lines_over_any_split_gives_the_lines_the_rule_gives(
    data: bytes, limit: int, draw: st.DataObject
) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=6), label="cuts"))
    pieces = [data[start:end] for start, end in pairwise([0, *cuts, len(data)])]
    one, together = Reference(limit), LineBuffer(limit)
    seen: list[bytes] = []
    refused = False
    for piece in pieces:
        one.feed(piece)
        together.feed(piece)
        expected = drain_one_by_one(one)
        got = drain_together(together)
        assert got == expected, "after each piece, the same lines and the same refusal"
        seen += got[0]
        if got[1]:
            refused = True
            break
        assert together.partial == bool(one.held)
    whole = Reference(limit)
    whole.feed(data)
    assert (seen, refused) == drain_one_by_one(whole), "however the bytes were split"
    assert all(len(line) <= limit and line.endswith(b"\n") for line in seen)
    assert data.startswith(b"".join(seen)), "the lines are the data, in order"


def test_complete_lines_gives_every_line_of_one_read_at_once() -> None:
    buffer = LineBuffer(16)
    buffer.feed(b"/A\n/B {}\n/C\n/D")
    assert buffer.complete_lines() == [b"/A\n", b"/B {}\n", b"/C\n"]
    assert buffer.partial
    assert buffer.complete_lines() == []
    buffer.feed(b"\n")
    assert buffer.complete_lines() == [b"/D\n"]
    assert not buffer.partial


def test_a_line_too_long_is_refused_only_after_the_complete_lines_before_it() -> None:
    """The node answers what came before an endless line, then refuses it."""
    buffer = LineBuffer(8)
    buffer.feed(b"one\ntwo\n" + b"x" * 8)
    assert buffer.complete_lines() == [b"one\n", b"two\n"]
    with pytest.raises(FrameError, match="exceeds"):
        buffer.complete_lines()


def test_a_complete_line_too_long_is_refused_even_with_its_newline() -> None:
    buffer = LineBuffer(8)
    buffer.feed(b"ok\n" + b"y" * 8 + b"\nlater\n")
    assert buffer.complete_lines() == [b"ok\n"]
    with pytest.raises(FrameError, match="exceeds"):
        buffer.complete_lines()


@pytest.mark.parametrize("size", [1, 7, 8])
def test_lines_up_to_the_limit_pass(size: int) -> None:
    buffer = LineBuffer(8)
    line = b"z" * (size - 1) + b"\n"
    buffer.feed(line * 3)
    assert buffer.complete_lines() == [line] * 3


def test_an_incomplete_line_short_of_the_limit_waits() -> None:
    buffer = LineBuffer(8)
    buffer.feed(b"a\n" + b"b" * 7)
    assert buffer.complete_lines() == [b"a\n"]
    assert buffer.complete_lines() == []
    assert buffer.partial
    buffer.feed(b"b")
    with pytest.raises(FrameError, match="exceeds"):
        buffer.complete_lines()


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        ({}, 1),
        ({"id": "m1"}, 1),
        ({"acked": 2}, 2),
        ({"acked": 500}, 500),
        ({"acked": 1}, 1),
        ({"acked": 0}, 1),
        ({"acked": -4}, 1),
        ({"acked": True}, 1),
        ({"acked": 3.0}, 1),
        ({"acked": "3"}, 1),
        ({"acked": None}, 1),
        ({"acked": [3]}, 1),
    ],
)
def test_acked_counts_only_a_whole_number_over_one(payload: dict[str, Any], count: int) -> None:
    assert acked(payload) == count
