"""A read's listing reuses the rows earlier reads encoded, only while they still show
the message as it is (sans-IO: the core, no sockets)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.messages import Listing
from gossip.node import Node
from gossip.protocol import MessageView, decode_frame, messages_of
from tests.core import make_node


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def listed(listing: Listing) -> list[MessageView]:
    return [m for f in listing.frames() for m in messages_of(decode_frame(f).payload)]


def fresh(node: Node, which: str) -> list[MessageView]:
    """What the node holds of ``which`` at this moment, straight from its messages."""
    chosen = node.messages.values()
    return [m.view() for m in chosen if which == "all" or (which == "read") == m.read]


def test_a_new_copy_and_a_read_mark_show_in_the_next_listing() -> None:
    node = make_node(1, [2, 3], Clock())
    node.relay("m1", "hello", (2,), 1, 1.0)
    first = listed(node.messages.listing("all", mark=False))
    assert [len(m.copies) for m in first] == [1]
    node.relay("m1", "hello", (3,), 1, 1.0)
    listing = node.messages.listing("all")
    second = listed(listing)
    assert [len(m.copies) for m in second] == [2] and not second[0].read
    listing.written()
    assert [m.read for m in listed(node.messages.listing("all"))] == [True]
    assert listed(node.messages.listing("unread")) == []


def test_a_read_marks_its_messages_only_once_written_and_once() -> None:
    """A read whose frames never reached the reader (it went away, a write failed)
    leaves its messages unread for the next one."""
    node = make_node(1, [2, 3], Clock())
    node.relay("m1", "hello", (2,), 1, 1.0)
    failed = node.messages.listing("unread")
    assert [m.id for m in listed(failed)] == ["m1"]
    assert [m.id for m in listed(node.messages.listing("unread"))] == ["m1"]
    done = node.messages.listing("unread")
    listed(done)
    marks: list[list[str]] = []
    node.messages.journal.marked_read = marks.append  # type: ignore[method-assign]
    done.written()
    done.written()
    assert marks == [["m1"]]
    assert listed(node.messages.listing("unread")) == []
    peek = node.messages.listing("read", mark=False)
    peek.written()
    assert [m.read for m in listed(peek)] == [True]
    node.relay("m2", "again", (2,), 1, 1.0)
    assert node.messages.mark_read(["m2", "m2", "m9"]) == 1, "each id once, held ones only"


def test_a_listing_shows_the_messages_as_they_were_when_it_was_taken() -> None:
    node = make_node(1, [2, 3], Clock())
    node.relay("m1", "hello", (2,), 1, 1.0)
    listing = node.messages.listing("all", mark=False)
    expected = fresh(node, "all")
    node.relay("m1", "hello", (3,), 1, 1.0)  # arrives before the frames are made
    assert listed(listing) == expected
    assert len(listed(node.messages.listing("all", mark=False))[0].copies) == 2


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("copy"), st.integers(0, 5), st.sampled_from([(2,), (3,), (3, 2)])),
        st.tuples(
            st.just("list"),
            st.sampled_from(["all", "unread", "read"]),
            st.booleans(),  # mark
            st.booleans(),  # make its frames only after the next action
        ),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions=ACTIONS)
def test_every_listing_says_what_a_fresh_read_would_have_said(actions: list[tuple]) -> None:
    """However copies, reads, marks and late-made frames interleave, a listing holds
    exactly what the node held at the same moment."""
    node: Node = make_node(1, [2, 3], Clock())
    late: list[tuple[Listing, list[MessageView]]] = []
    for action in actions:
        pending, late = late, []
        if action[0] == "copy":
            _, number, path = action
            node.relay(f"m{number}", f"text {number}", path, 1, float(number))
        else:
            _, which, mark, later = action
            expected = fresh(node, which)
            listing = node.messages.listing(which, mark=mark)
            if later:
                late.append((listing, expected))
            else:
                assert listed(listing) == expected
                listing.written()
        for listing, expected in pending:
            assert listed(listing) == expected
            listing.written()
    for listing, expected in late:
        assert listed(listing) == expected
