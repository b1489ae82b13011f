"""The core's entry point, ``gossip.answers.answer``, and the catch-up conversation,
``gossip.catchup.Round``, driven by hand: what a node answers to each frame, and what a
round asks and learns, without a server or a simulation in between."""

from __future__ import annotations

from typing import Any

import pytest

from gossip.answers import RESPONSES, Answer, answer
from gossip.catchup import Round
from gossip.commands import Command
from gossip.digest import BUCKETS, bucket_of
from gossip.journal import Message
from gossip.messages import MAX_LISTED_IDS
from gossip.node import Node
from gossip.protocol import (
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_READ_IDS,
    Copy,
    Frame,
    FrameError,
    MessageView,
    decode_frame,
    encode_frame,
    encoded_row,
    messages_frames,
    messages_of,
)
from gossip.sends import CatchUp, Send
from gossip.simulation import StillClock, address
from tests.core import make_node, payload

NOW = 10.0


def ask(node: Node, command: str, fields: dict[str, Any] | None = None) -> Answer:
    """``node``'s answer to the frame, passed through the wire format, at ``NOW``."""
    return answer(node, decode_frame(encode_frame(command, fields)), NOW)


def frames(reply: Answer) -> list[Frame]:
    """Every frame the asker gets, once the replies were written (``Answer.written``)."""
    ending = reply.written() if reply.written is not None else ()
    return [decode_frame(r) for r in [*reply.replies, *ending]]


def ok(reply: Answer) -> dict[str, Any]:
    """The payload of an answer's closing ``/OK``, the one frame a caller waits for."""
    last = frames(reply)[-1]
    assert last.command == Command.OK
    return last.payload


def at(number: int) -> dict[str, Any]:
    """Node ``number`` as a frame names it: ``node``, ``host``, ``port``."""
    host, port = address(number)
    return {"node": number, "host": host, "port": port}


def held(message_id: str, path: tuple[int, ...] = (2, 1)) -> Message:
    """A message held since time 0, long settled by ``NOW``."""
    return Message(message_id, f"text of {message_id}", 0.0, 1, [Copy(path, 0.0)])


def node_of(number: int, peers: list[int], **options: Any) -> Node:
    return make_node(number, peers, StillClock(NOW), **options)


# Frames no node answers


@pytest.mark.parametrize("command", ["NOPE", "OK", "ERR", "MSG", "COPY", "HELLO"])
def test_a_command_that_is_no_request_is_refused(command: str) -> None:
    node = node_of(1, [2])
    with pytest.raises(FrameError, match=f"unknown command /{command}"):
        answer(node, Frame(command, {}), NOW)
    assert node.peers == {2: address(2)}


@pytest.mark.parametrize(
    ("command", "fields", "error"),
    [
        ("PING", {"node": "2"}, "node"),
        ("GET", {"which": "some"}, "which"),
        ("GET", {"peek": 1}, "peek"),
        ("IDS", {"buckets": [], "after": "x" * 65}, "after"),
        ("SYNC", {}, "total"),
        ("CONNECT", {"node": 4}, "host"),
    ],
)
def test_a_request_with_bad_fields_is_refused(
    command: str, fields: dict[str, Any], error: str
) -> None:
    node = node_of(1, [2])
    with pytest.raises(FrameError, match=error):
        ask(node, command, fields)
    assert node.peers == {2: address(2)} and node.members.pending == set()


# Requests answered at once: the reply, and the frames sent on


def message_node() -> Node:
    """Node 1, linked to 2 and 3, holding one message; 4 is free to link."""
    return node_of(1, [2, 3], max_peers=4, messages=[held("m1")])


SHAPES: dict[Command, tuple[dict[str, Any], dict[str, Any] | None, list[tuple[Command, int]]]] = {
    Command.PING: ({"node": 2}, {"node": 1, "peer": True}, []),
    Command.PEERS: (
        {},
        {"node": 1, "peers": [[2, "127.0.0.1", 7002], [3, "127.0.0.1", 7003]]},
        [],
    ),
    Command.STATUS: ({}, None, []),
    Command.LEAVE: ({"node": 2}, {"dropped": True}, []),
    Command.CONNECT: (at(4), {"accepted": True}, []),
    Command.WALK: ({**at(9), "hops": 5, "visited": [], "any": True}, {}, [(Command.CONNECT, 9)]),
    Command.MERGE: (at(4), {"accepted": True, "orphan": None}, []),
    Command.SWAP: ({"old": 2, **at(4)}, {"accepted": True}, []),
    Command.SEEK: (
        {"seek": "s1", "target": 2, **at(9), "hops": 4},
        {},
        [(Command.FOUND, 9)],
    ),
    Command.FOUND: ({"seek": "s1", "target": 2}, {}, []),
    Command.SYNC: ({"total": ""}, None, []),
    Command.IDS: (
        {"buckets": list(range(BUCKETS)), "after": ""},
        {"ids": ["m1"], "complete": True},
        [],
    ),
    Command.PULL: ({"node": 2, "ids": ["m1", "m9"]}, {}, []),
    Command.RELAY: (
        {"id": "m2", "text": "hi", "path": [2], "relays": 1, "sent": 1.0},
        {},
        [(Command.RELAY, 3)],
    ),
    Command.RELAYS: (
        {
            "copies": [
                {"id": "m2", "text": "hi", "path": [2], "relays": 1, "sent": 1.0},
                {"id": "m3", "text": "ho", "path": [2], "relays": 1, "sent": 1.0},
            ]
        },
        {},
        [(Command.RELAY, 3), (Command.RELAY, 3)],
    ),
    Command.GET: ({"which": "all", "peek": True}, {"node": 1, "count": 1}, []),
    Command.READ: ({"ids": ["m1", "m9"]}, {"node": 1, "marked": 1}, []),
    Command.CONDITIONS: ({"delay_ms": 100, "groups": [[1, 2], [3]]}, {}, []),
}
"""For each request answered at once: its fields, the payload of the closing ``/OK``
(None: checked by its own test below), and the (command, peer) of each frame sent on."""

ASKING_FIRST = {Command.NEW, Command.INTRODUCE, Command.JOIN, Command.REMOVE}
"""The requests whose answer waits on another node's word: tested one by one below."""


def test_every_request_is_covered() -> None:
    assert set(SHAPES) | ASKING_FIRST == set(RESPONSES)
    assert not set(SHAPES) & ASKING_FIRST


@pytest.mark.parametrize("command", list(SHAPES))
def test_a_request_answered_at_once_ends_with_ok_and_sends_on(command: Command) -> None:
    node = message_node()
    fields, expected, sent = SHAPES[command]
    reply = ask(node, command, fields)
    assert reply.calls == () and reply.then is None and reply.acked is None
    assert reply.stored is None and not reply.leaves
    closing = ok(reply)
    if expected is not None:
        assert closing == expected
    assert [(s.kind, s.peer) for s in reply.sends] == sent
    for send in reply.sends:
        assert send.address == address(send.peer)
        assert decode_frame(send.frame).command == send.kind


def test_status_replies_with_the_status_of_the_node() -> None:
    node = message_node()
    reply = ok(ask(node, Command.STATUS))
    assert reply.pop("uptime") == round(NOW - node.members.started, 3), "by its own clock"
    assert reply == node.status()


def test_sync_says_whether_the_digests_agree_and_else_gives_the_buckets() -> None:
    node = message_node()
    digest = node.messages.digest
    assert ok(ask(node, Command.SYNC, {"total": digest.total})) == {"same": True}
    assert ok(ask(node, Command.SYNC, {"total": "other"})) == {
        "same": False,
        "buckets": digest.bucket_hashes(),
    }


def test_pull_hands_over_each_held_message_as_a_copy_before_the_ok() -> None:
    got = frames(ask(message_node(), Command.PULL, {"node": 3, "ids": ["m9", "m1"]}))
    assert [f.command for f in got] == [Command.COPY, Command.OK]
    assert got[0].payload == {
        "id": "m1",
        "text": "text of m1",
        "path": [2, 1],
        "relays": 1,
        "sent": 0.0,
    }


def test_pull_hands_over_a_message_asked_for_many_times_once() -> None:
    """A /PULL of one id a thousand times was answered with a thousand copies (49 MB for
    a long text), all made before the first went out."""
    reply = ask(message_node(), Command.PULL, {"node": 3, "ids": ["m1"] * 1000})
    assert not isinstance(reply.replies, tuple | list), "made as they are written"
    assert [f.command for f in frames(reply)] == [Command.COPY, Command.OK]


def test_get_lists_the_messages_before_the_ok_and_marks_them_read_unless_peeking() -> None:
    node = message_node()
    peeked = frames(ask(node, Command.GET, {"which": "unread", "peek": True}))
    assert [f.command for f in peeked] == [Command.MSGS, Command.OK]
    assert [m.id for m in messages_of(peeked[0].payload)] == ["m1"]
    read = ask(node, Command.GET, {"which": "unread"})
    assert [decode_frame(f).command for f in read.replies] == [Command.MSGS]
    again = ask(node, Command.GET, {"which": "unread"})
    assert [m.id for m in messages_of(decode_frame(next(iter(again.replies))).payload)] == ["m1"], (
        "marked read only once the reply is written"
    )
    assert read.written is not None
    [closing] = read.written()
    assert decode_frame(closing).payload == {"node": 1, "count": 1}
    assert ok(ask(node, Command.GET, {"which": "unread"})) == {"node": 1, "count": 0}


def test_read_marks_the_ids_it_is_given_once_and_refuses_too_many() -> None:
    node = message_node()
    assert ok(ask(node, Command.READ, {"ids": ["m1"]})) == {"node": 1, "marked": 1}
    assert ok(ask(node, Command.READ, {"ids": ["m1"]})) == {"node": 1, "marked": 0}
    assert ok(ask(node, Command.GET, {"which": "unread"})) == {"node": 1, "count": 0}
    for ids in (["m1"] * (MAX_READ_IDS + 1), ["bad id"], "m1", None):
        with pytest.raises(FrameError, match="field 'ids'"):
            ask(node, Command.READ, {"ids": ids})
    with pytest.raises(FrameError, match=r"field 'ids' must hold message ids .*, not 'bad id'"):
        ask(node, Command.READ, {"ids": ["m1", "bad id"]})
    with pytest.raises(FrameError, match="field 'ids' must be a list of at most 800"):
        ask(node, Command.READ, {"ids": ["m1"] * 801})


def test_a_ping_without_a_number_answers_anyone_and_a_peers_ping_counts_as_news() -> None:
    node = message_node()
    assert ok(ask(node, Command.PING)) == {"node": 1}
    assert ok(ask(node, Command.PING, {"node": 7})) == {"node": 1, "peer": False}
    node.members.missed(2)
    ask(node, Command.PING, {"node": 2})
    assert node.members.misses[2] == 0 and node.members.heard[2] == NOW


# Requests that ask another node first: calls, then the answer


def test_introduce_reserves_a_slot_asks_the_node_and_keeps_its_answer() -> None:
    node = node_of(1, [2])
    reply = ask(node, Command.INTRODUCE, at(5))
    assert reply.replies == () and reply.sends == ()
    [connect] = reply.calls
    assert (connect.kind, connect.peer, connect.address) == (Command.CONNECT, 5, address(5))
    assert payload(connect, Command.CONNECT) == at(1)
    assert node.members.pending == {5}
    assert reply.then is not None
    assert ok(reply.then([{"accepted": True}])) == {"result": "linked"}
    assert sorted(node.peers) == [2, 5] and node.members.pending == set()


@pytest.mark.parametrize("answered", [None, {"accepted": False}, {}])
def test_introduce_refused_or_unanswered_frees_the_slot(answered: dict[str, Any] | None) -> None:
    node = node_of(1, [2])
    reply = ask(node, Command.INTRODUCE, at(5))
    assert reply.then is not None
    assert ok(reply.then([answered])) == {"result": "refused"}
    assert sorted(node.peers) == [2] and node.members.pending == set()


def test_introduce_of_a_peer_or_with_no_room_answers_at_once() -> None:
    node = node_of(1, [2, 3, 4])
    assert ok(ask(node, Command.INTRODUCE, at(2))) == {"result": "already"}
    reply = ask(node, Command.INTRODUCE, at(5))
    assert reply.calls == () and ok(reply) == {"result": "full"}


def test_join_through_a_full_contact_asks_the_partner_to_swap_then_names_the_peers() -> None:
    contact = node_of(2, [1, 3, 4])
    reply = ask(contact, Command.JOIN, {**at(9), "prefer": [4], "slots": 3})
    assert reply.replies == ()
    [swap] = reply.calls
    assert (swap.kind, swap.peer) == (Command.SWAP, 4)
    assert payload(swap, Command.SWAP) == {"old": 2, **at(9)}
    assert reply.then is not None
    joined = reply.then([{"accepted": True}])
    assert ok(joined) == {"peers": [[2, "127.0.0.1", 7002], [4, "127.0.0.1", 7004]]}
    assert sorted(contact.peers) == [1, 3, 9]
    assert joined.note == "took in node 9: its peers are 2, 4; this node's are [1, 3, 9]"


@pytest.mark.parametrize("swapped", [True, False])
def test_a_contact_that_leaves_while_the_partner_swaps_takes_no_newcomer(swapped: bool) -> None:
    """The swap is asked without the node's lock: a /REMOVE may come in between, and a
    node that has left holds no peers, so it names only the partner (if it swapped)."""
    contact = node_of(2, [1, 3, 4])
    reply = ask(contact, Command.JOIN, {**at(9), "prefer": [4], "slots": 3})
    ask(contact, Command.REMOVE, {"introduce": False})
    assert reply.then is not None
    named = ok(reply.then([{"accepted": swapped}]))
    assert named == {"peers": [[4, "127.0.0.1", 7004]] if swapped else []}
    assert contact.peers == {} and contact.members.left


def test_join_with_room_links_at_once_and_a_refused_one_names_no_peer() -> None:
    roomy = node_of(2, [1])
    reply = ask(roomy, Command.JOIN, {**at(9), "prefer": [], "slots": 1})
    assert reply.calls == () and ok(reply) == {"peers": [[2, "127.0.0.1", 7002]]}
    assert sorted(roomy.peers) == [1, 9]
    full = node_of(2, [1, 3, 4])
    assert ok(ask(full, Command.JOIN, {**at(9), "prefer": [], "slots": 1})) == {"peers": []}


def test_new_is_stored_first_then_answered_once_a_peer_took_it() -> None:
    node = node_of(1, [2, 3])
    reply = ask(node, Command.NEW, {"text": "hello", "relays": 1})
    assert reply.replies == () and reply.calls == ()
    message_id = reply.stored
    assert message_id == "n1-1" and message_id in node.messages
    assert [(s.kind, s.peer) for s in reply.sends] == [(Command.RELAY, 2), (Command.RELAY, 3)]
    assert reply.acked is not None
    assert ok(reply.acked(True)) == {
        "id": message_id,
        "max_bytes": MAX_MESSAGE_BYTES,
        "held": False,
    }
    held_back = reply.acked(False)
    assert ok(held_back)["held"] is True and "no peer took it" in held_back.note


def test_new_with_an_id_already_held_is_the_same_message() -> None:
    node = node_of(1, [2])
    first = ask(node, Command.NEW, {"text": "hello", "relays": 1, "id": "mine"})
    assert first.stored == "mine"
    again = ask(node, Command.NEW, {"text": "hello", "relays": 1, "id": "mine"})
    assert again.stored is None and again.sends == () and again.acked is None
    assert ok(again) == {"id": "mine", "duplicate": True}
    with pytest.raises(FrameError, match="taken"):
        ask(node, Command.NEW, {"text": "other", "relays": 1, "id": "mine"})


def test_remove_says_goodbye_introduces_the_former_peers_and_leaves() -> None:
    node = node_of(1, [2, 3, 4])
    reply = ask(node, Command.REMOVE)
    assert node.peers == {} and node.members.left
    goodbyes, introductions = reply.calls[:3], reply.calls[3:]
    assert [(s.kind, s.peer) for s in goodbyes] == [(Command.LEAVE, n) for n in (2, 3, 4)]
    assert all(payload(s, Command.LEAVE) == {"node": 1} for s in goodbyes)
    assert [(s.peer, payload(s, Command.INTRODUCE)["node"]) for s in introductions] == [
        (2, 3),
        (3, 4),
        (2, 4),
    ]
    assert reply.then is not None
    done = reply.then(
        [
            {"dropped": True},
            None,
            {"dropped": True},
            {"result": "linked"},
            {"result": "refused"},
            None,
        ]
    )
    assert done.leaves
    assert ok(done) == {"node": 1, "former_peers": [2, 3, 4], "links": [[2, 3]]}


def test_remove_told_not_to_introduce_only_says_goodbye() -> None:
    reply = ask(node_of(1, [2, 3]), Command.REMOVE, {"introduce": False})
    assert [(s.kind, s.peer) for s in reply.calls] == [(Command.LEAVE, 2), (Command.LEAVE, 3)]
    assert reply.then is not None
    assert ok(reply.then([None, None])) == {"node": 1, "former_peers": [2, 3], "links": []}


def test_a_node_that_left_refuses_new_messages_and_stores_none() -> None:
    """Between its goodbye and its end a node still listens: a message it took then would
    have no peer to go to, and leave with it, acknowledged and lost."""
    node = node_of(1, [2, 3])
    ask(node, Command.REMOVE, {"introduce": False})
    with pytest.raises(FrameError, match="has left the network: send the message to another"):
        ask(node, Command.NEW, {"text": "too late", "relays": 1})
    assert len(node.messages) == 0


# A catch-up round, each request answered by the giver's answer


def hold(trade: Round, giver: Node) -> tuple[list[Command], list[Send]]:
    """Play the round out against ``giver``: the commands it sent, in order, and the gossip
    the copies it took set off."""
    asked: list[Command] = []
    gossip: list[Send] = []
    while (request := trade.request()) is not None:
        asked.append(request.kind)
        reply = answer(giver, decode_frame(request.frame), NOW)
        gossip += trade.take(frames(reply), NOW)
    return asked, gossip


def round_of(asker: Node, giver: Node) -> Round:
    return Round(asker, CatchUp(giver.number, address(giver.number)))


def test_a_round_between_nodes_holding_the_same_is_one_sync() -> None:
    a = node_of(1, [2], messages=[held("m1"), held("m2")])
    b = node_of(2, [1], messages=[held("m2", (1, 2)), held("m1", (3, 2))])
    trade = round_of(a, b)
    assert hold(trade, b) == ([Command.SYNC], [])
    assert (trade.pulled, trade.pushed, trade.pages) == ([], [], 0)


def test_a_round_pulls_what_it_lacks_and_pushes_what_the_peer_lacks() -> None:
    a = node_of(1, [2, 5], messages=[held("mine", (1,))])
    b = node_of(2, [1], messages=[held("theirs", (2,))])
    trade = round_of(a, b)
    asked, gossip = hold(trade, b)
    assert asked == [Command.SYNC, Command.IDS, Command.PULL, Command.RELAY]
    assert (trade.pulled, trade.pushed, trade.pages) == (["theirs"], ["mine"], 1)
    assert set(a.messages) == set(b.messages) == {"mine", "theirs"}
    # The pulled copy goes on, as a relayed one would, to the peer not on its path.
    assert [(s.kind, s.peer) for s in gossip] == [(Command.RELAY, 5)]
    assert payload(gossip[0], Command.RELAY)["path"] == [2, 1]


@pytest.mark.parametrize(
    "replies",
    [[], [Frame(Command.ERR, {"error": "busy"})]],
    ids=["did not arrive", "refused"],
)
def test_a_refused_or_lost_reply_ends_the_round(replies: list[Frame]) -> None:
    a = node_of(1, [2], messages=[held("mine", (1,))])
    trade = round_of(a, node_of(2, [1]))
    assert trade.take([], NOW) == []  # nothing asked yet: nothing to take
    first = trade.request()
    assert first is not None and first.kind == Command.SYNC
    assert trade.take(replies, NOW) == []
    assert trade.request() is None
    assert (trade.pulled, trade.pushed, trade.pages) == ([], [], 0)


def test_a_round_pages_through_a_long_listing() -> None:
    """The giver lists at most MAX_LISTED_IDS ids a page: the asker reads on after the
    last id of each page, and pulls what it lacks from each page as it goes."""
    ids = [f"m{i:05d}" for i in range(MAX_LISTED_IDS + 500)]
    # One id of every bucket, so every id is listed, on two pages: the first id of the
    # bucket (on the first page) or its last (on the second), by turns.
    by_bucket = [[i for i in ids if bucket_of(i) == b] for b in range(BUCKETS)]
    lacking = sorted(bucket[-(b % 2)] for b, bucket in enumerate(by_bucket))
    a = node_of(1, [2], messages=[held(i, (1,)) for i in ids if i not in lacking])
    b = node_of(2, [1], messages=[held(i, (2,)) for i in ids])
    trade = round_of(a, b)
    asked, _ = hold(trade, b)
    assert asked == [Command.SYNC, Command.IDS, Command.PULL, Command.IDS, Command.PULL]
    assert trade.pages == 2
    assert (trade.pulled, trade.pushed) == (lacking, [])
    assert a.messages.digest.total == b.messages.digest.total


def test_many_messages_are_listed_in_few_frames_each_within_the_limit() -> None:
    views = [
        MessageView(f"m{i}", "x" * (i * 37 % 4000 + 1), 0.0, (Copy((1, 2, i + 3), 1.0),), False)
        for i in range(300)
    ]
    listed = list(messages_frames(map(encoded_row, views)))
    assert 1 < len(listed) < 40
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in listed)
    assert [m for f in listed for m in messages_of(decode_frame(f).payload)] == views
    assert list(messages_frames([])) == []
