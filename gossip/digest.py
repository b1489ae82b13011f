"""A summary of which message ids a node holds, cheap to compare between two nodes.

Catch-up (anti-entropy) asks one question often: does my peer hold the same messages
as I do? The answer is almost always yes, so it should cost one small frame. The
summary is an order-free XOR of id hashes, kept per bucket of the id space: equal
totals mean equal sets (with overwhelming odds); unequal ones name the few buckets
whose ids are worth listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

BUCKETS = 64


def bucket_of(message_id: str) -> int:
    """The bucket an id falls in; ids are random, so buckets fill evenly."""
    return _hash(message_id) % BUCKETS


def _hash(message_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(message_id.encode(), digest_size=8).digest(), "big")


class Digest:
    """The XOR of the hashes of every id added, overall and per bucket, and the ids of
    each bucket: catch-up lists only the buckets that differ, without hashing every id
    held again each round."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.count = 0
        self.combined = 0
        """The XOR of every bucket, kept as ids come and go: ``total`` is asked often."""
        self.buckets = [0] * BUCKETS
        self.members: list[set[str]] = [set() for _ in range(BUCKETS)]
        for message_id in ids:
            self.add(message_id)

    def add(self, message_id: str) -> None:
        value = _hash(message_id)
        self.combined ^= value
        self.buckets[value % BUCKETS] ^= value
        self.members[value % BUCKETS].add(message_id)
        self.count += 1

    def remove(self, message_id: str) -> None:
        """Take back an id added before (XOR is its own inverse)."""
        value = _hash(message_id)
        self.combined ^= value
        self.buckets[value % BUCKETS] ^= value
        self.members[value % BUCKETS].discard(message_id)
        self.count -= 1

    def in_buckets(self, buckets: Iterable[int]) -> Iterator[str]:
        """The ids in these buckets (numbers outside the range hold none)."""
        for bucket in set(buckets):
            if 0 <= bucket < BUCKETS:
                yield from self.members[bucket]

    @property
    def total(self) -> str:
        return f"{self.count}:{self.combined:016x}"

    def bucket_hashes(self) -> list[str]:
        return [f"{value:016x}" for value in self.buckets]

    def differing(self, theirs: list[str]) -> list[int]:
        """Buckets whose hash differs from a peer's list (all of them if it is malformed)."""
        if len(theirs) != BUCKETS:
            return list(range(BUCKETS))
        mine = self.bucket_hashes()
        return [i for i in range(BUCKETS) if mine[i] != theirs[i]]
