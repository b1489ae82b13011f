"""What a node taken out hands over (``gossip.handover``), without sockets."""

from __future__ import annotations

from gossip.handover import handed_over
from gossip.protocol import relay_fields

HELD = [
    ("a", "only the leaver has it", (4,), 10.0),
    ("b", "the receiver has it", (1, 4), 11.0),
    ("c", "its walk passed the receiver", (2, 7, 4), 12.0),
    ("d", "relayed to the leaver", (1, 4), 13.0),
]


def test_the_receiver_is_handed_each_message_it_lacks_as_a_copy_from_the_leaver() -> None:
    copies = handed_over(HELD, theirs={"b"}, receiver=7)
    assert [c["id"] for c in copies] == ["a", "d"]
    for copy, (message_id, text, path, sent) in zip(copies, [HELD[0], HELD[3]], strict=True):
        # a /RELAY the receiver takes as any copy: the walk ends at the leaver
        assert relay_fields(copy) == (message_id, text, path, 1, sent)


def test_nothing_is_handed_to_a_receiver_that_holds_everything() -> None:
    assert handed_over(HELD, theirs={"a", "b", "c", "d"}, receiver=9) == []
    assert handed_over([], theirs=set(), receiver=9) == []
