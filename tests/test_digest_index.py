"""``Digest``'s index of ids by bucket, and catch-up listing ids through it."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from gossip.digest import BUCKETS, Digest, bucket_of
from gossip.simulation import StillClock
from tests.core import TIMING, make_node

# Few short ids, so removes often hit one held.
ids = st.text(string.ascii_lowercase[:6], min_size=1, max_size=3)
changes = st.lists(st.tuples(st.booleans(), ids), max_size=60)
bucket_lists = st.lists(st.integers(min_value=-5, max_value=BUCKETS + 5), max_size=12)


def replay(steps: list[tuple[bool, str]]) -> tuple[Digest, set[str]]:
    """A digest after these adds (True) and removes (False), and the set it should hold.
    An id is added only when absent and removed only when present, as ``Messages`` does."""
    digest, held = Digest(), set()
    for add, message_id in steps:
        if add and message_id not in held:
            digest.add(message_id)
            held.add(message_id)
        elif not add and message_id in held:
            digest.remove(message_id)
            held.discard(message_id)
    return digest, held


@given(changes, bucket_lists)
def test_in_buckets_gives_the_ids_held_in_those_buckets(
    steps: list[tuple[bool, str]], buckets: list[int]
) -> None:
    digest, held = replay(steps)
    listed = list(digest.in_buckets(buckets))
    assert len(listed) == len(set(listed)), "an id once, even for a bucket named twice"
    assert set(listed) == {i for i in held if bucket_of(i) in buckets}


@given(changes)
def test_the_index_agrees_with_the_hashes_after_adds_and_removes(
    steps: list[tuple[bool, str]],
) -> None:
    digest, held = replay(steps)
    assert digest.count == len(held)
    assert digest.bucket_hashes() == Digest(held).bucket_hashes()
    for bucket in range(BUCKETS):
        assert set(digest.in_buckets([bucket])) == {i for i in held if bucket_of(i) == bucket}
    assert set(digest.in_buckets(iter(range(BUCKETS)))) == held, "any iterable of buckets"


def test_bucket_numbers_out_of_range_hold_nothing() -> None:
    digest = Digest(f"id{n}" for n in range(200))
    assert list(digest.in_buckets([-1, BUCKETS, BUCKETS + 1, 10**9, -(10**9)])) == []
    assert list(digest.in_buckets([])) == []
    assert set(digest.in_buckets([-1, 0, BUCKETS])) == set(digest.in_buckets([0]))


def test_settled_ids_list_through_the_index_and_forget_a_discarded_message() -> None:
    """What catch-up offers: ids of the buckets asked for, held long enough, not discarded."""
    clock = StillClock(1000.0)
    node = make_node(1, [], clock)
    kept, _ = node.submit("kept", 1)
    dropped, _ = node.submit("dropped", 1)
    now = clock() + TIMING.settle
    every = range(BUCKETS)
    assert node.messages.settled_ids(every, now) == (sorted([kept, dropped]), True)
    assert node.messages.settled_ids(every, now - 0.5) == ([], True), "not settled yet"
    node.messages.discard(dropped)
    assert node.messages.settled_ids(every, now) == ([kept], True)
    assert node.messages.settled_ids([bucket_of(kept)], now) == ([kept], True)
    others = [b for b in every if b != bucket_of(kept)]
    assert node.messages.settled_ids(others, now) == ([], True)
    assert node.messages.settled_ids([-1, BUCKETS], now) == ([], True)
