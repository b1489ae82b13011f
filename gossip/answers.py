"""The core's one entry point: what a node answers to any frame (no I/O).

``answer(node, frame, now)`` checks the frame's fields, makes the node's decision, and
returns an ``Answer``: the reply frames, the frames to send other nodes, and for the few
requests that need another node's word first (``/INTRODUCE``, ``/JOIN``, ``/REMOVE``,
and ``/NEW``, which waits for a peer to take a copy) what to ask and how to go on. The
server carries an answer out over sockets; the tests' simulations carry it out by
calling the other nodes' ``answer`` directly, so both run this same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from gossip.commands import Command
from gossip.conditions import conditions_from
from gossip.cuts import SEEK_HOPS
from gossip.digest import BUCKETS
from gossip.membership import WALK_HOPS, LinkPlan
from gossip.messages import MAX_LISTED_IDS
from gossip.node import Node
from gossip.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_READ_IDS,
    MAX_RELAYS,
    READ_FILTERS,
    Frame,
    FrameError,
    address_fields,
    encode_frame,
    field,
    id_list,
    int_list,
    message_id_field,
    message_text,
    positive_int,
    relay_fields,
    relays_fields,
    utf8_size,
)
from gossip.sends import Send

Replies = list[dict[str, Any] | None]
"""The replies to an answer's ``calls``, in order: a payload, or None where one failed."""

NODE_NUMBERS = 1 << 31


@dataclass(slots=True)
class Answer:
    """What a node does about one frame: reply at once, or ask first and then reply.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, and a
    node makes one answer per copy it takes."""

    replies: Iterable[bytes] = ()
    """Frames back to the asker, in order. A read's listing is lazy, encoded as it is
    written out (the asker decodes one frame while the node encodes the next): iterate
    them once."""
    sends: tuple[Send, ...] = ()
    """Frames for other nodes; how each went is reported to ``Node.sent`` / ``Node.failed``."""
    calls: tuple[Send, ...] = ()
    """Requests to make one after another, waiting for each reply, before answering."""
    then: Callable[[Replies], Answer] | None = None
    """Given the replies to ``calls``: the answer."""
    acked: Callable[[bool], Answer] | None = None
    """Given whether a peer took one of ``sends`` in time: the answer (a client's message)."""
    stored: str | None = None
    """The id of a new message that must be on disk before anything goes out; if it cannot
    be stored, the node forgets it (``Messages.discard``) and the request is refused."""
    note: str = ""
    """What happened, worth a line in the node's log."""
    leaves: bool = False
    """The node left the network: its server stops once the reply is out."""
    written: Callable[[], Iterable[bytes]] | None = None
    """Once ``replies`` were written to the asker: what the node then records (under its
    lock), and the frames that end the reply. A read marks its messages read only then, so
    one that failed leaves them unread; and its ``/OK``, which the reader waits for, goes
    after the marks, so the reader's next read sees them."""


BARE_OK = encode_frame(Command.OK)


def ok(payload: dict[str, Any] | None = None) -> bytes:
    return encode_frame(Command.OK, payload) if payload else BARE_OK


def answer(node: Node, frame: Frame, now: float) -> Answer:
    """What ``node`` answers to ``frame`` at time ``now``; FrameError if it breaks the rules."""
    respond = RESPONSES.get(frame.command)  # a Command is its name: no Enum lookup per frame
    if respond is None:
        raise FrameError(f"unknown command /{frame.command}")
    node.counters.frames_in[frame.command] += 1
    return respond(node, frame.payload, now)


def _ping(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """Anyone checks the node is up; a peer's ping learns whether the link is two-way."""
    reply: dict[str, Any] = {"node": node.number}
    if "node" in payload:
        asker = positive_int(payload, "node", NODE_NUMBERS)
        reply["peer"] = node.members.is_peer(asker)
        node.members.heard_from(asker, now)
    return Answer((ok(reply),))


def _new(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """A client's message: stored durably, then answered once a peer holds it too.

    So a message the client saw accepted survives this node dying at once: it is on this
    node's disk, and with a peer that is already passing it on. If no peer takes it, the
    answer says it is ``held``: on disk here, to spread by catch-up once the node has a
    peer again. A retry with the same ``id`` is the same message.
    """
    text = message_text(payload)
    relays = positive_int(payload, "relays", MAX_RELAYS)
    chosen = message_id_field(payload, "id") if payload.get("id") is not None else None
    if chosen is not None and chosen in node.messages:
        node.submit(text, relays, chosen)  # refuses an id taken by another text
        return Answer((ok({"id": chosen, "duplicate": True}),))
    message_id, sends = node.submit(text, relays, chosen)

    def acked(reached: bool) -> Answer:
        held = "" if reached else ", held: no peer took it"
        reply = {"id": message_id, "max_bytes": MAX_MESSAGE_BYTES, "held": not reached}
        note = f"new message {message_id} ({utf8_size(text)} bytes){held}"
        return Answer((ok(reply),), note=note)

    return Answer(sends=tuple(sends), acked=acked, stored=message_id)


def _relay(node: Node, payload: dict[str, Any], now: float) -> Answer:
    return Answer((ok(),), tuple(node.relay(*relay_fields(payload))))


def _relays(node: Node, payload: dict[str, Any], now: float) -> Answer:
    return Answer((ok(),), tuple(node.relay_all(relays_fields(payload))))


def _get(node: Node, payload: dict[str, Any], now: float) -> Answer:
    which = payload.get("which", "all")
    if which not in READ_FILTERS:
        raise FrameError(f"field 'which' must be one of {', '.join(READ_FILTERS)}")
    peek = payload.get("peek", False)
    if not isinstance(peek, bool):
        raise FrameError("field 'peek' must be true or false")
    listing = node.messages.listing(which, mark=not peek)
    closing = ok({"node": node.number, "count": len(listing)})

    def written() -> Iterable[bytes]:
        listing.written()
        return (closing,)

    return Answer(listing.frames(), written=written)


def _read(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """Mark messages read that a client showed, after a read that left them unread
    (``peek``): what the command line does, so messages it could not print stay unread."""
    marked = node.messages.mark_read(id_list(payload, "ids", MAX_READ_IDS))
    return Answer((ok({"node": node.number, "marked": marked}),))


def _peers(node: Node, payload: dict[str, Any], now: float) -> Answer:
    peers = [[n, host, port] for n, (host, port) in sorted(node.peers.items())]
    return Answer((ok({"node": node.number, "peers": peers}),))


def _status(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """The node's status, with how long it has been up by its own clock: an asker's clock
    minus its start showed a negative or inflated uptime across skewed machines."""
    return Answer((ok({**node.status(), "uptime": round(now - node.members.started, 3)}),))


def _leave(node: Node, payload: dict[str, Any], now: float) -> Answer:
    number = positive_int(payload, "node", NODE_NUMBERS)
    if payload.get("silent") is True:
        dropped = node.taken_for_dead(number, now)
        note = f"peer {number} took this node for dead" if dropped else ""
        return Answer((ok({"dropped": dropped}),), note=note)
    dropped = node.drop_peer(number)
    return Answer((ok({"dropped": dropped}),), note=f"peer {number} left" if dropped else "")


def _connect(node: Node, payload: dict[str, Any], now: float) -> Answer:
    number, address = address_fields(payload)
    accepted = node.members.accept_link(number, address)
    note = f"link request from {number} {'accepted' if accepted else 'refused'}"
    return Answer((ok({"accepted": accepted}),), note=note)


def _introduce(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """A leaving peer suggests a replacement: reserve a slot, ask it, keep its answer."""
    number, address = address_fields(payload)
    plan = node.members.plan_link(number)
    if plan is not LinkPlan.TRY:
        return Answer((ok({"result": plan.value}),))
    connect = Send(number, address, node.members.connect_frame(), Command.CONNECT)

    def then(replies: Replies) -> Answer:
        reply = replies[0]
        accepted = reply is not None and reply.get("accepted") is True
        node.members.finish_link(number, address, accepted)
        return Answer((ok({"result": "linked" if accepted else "refused"}),))

    return Answer(calls=(connect,), then=then)


def _walk(node: Node, payload: dict[str, Any], now: float) -> Answer:
    origin, address = address_fields(payload)
    hops = positive_int(payload, "hops", WALK_HOPS)
    visited = int_list(payload, "visited", WALK_HOPS)
    any_slot = field(payload, "any", bool)
    return Answer((ok(),), tuple(node.members.walk(origin, address, hops, visited, any_slot)))


def _merge(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """A peer this node lost for silence is back (a cut network healed): link again."""
    number, address = address_fields(payload)
    accepted, orphan = node.cuts.accept_merge(number, address)
    note = f"lost peer {number} is back; {'linked again' if accepted else 'no room to link'}" + (
        f", letting go of {orphan[0]} for it to pair up" if orphan else ""
    )
    let_go = [orphan[0], *orphan[1]] if orphan else None
    return Answer((ok({"accepted": accepted, "orphan": let_go}),), note=note)


def _join(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """Take in a node that has no peers, handing it one of this node's links if need be."""
    newcomer, address = address_fields(payload)
    prefer = int_list(payload, "prefer", 64)
    slots = field(payload, "slots", int)
    splice = node.members.plan_join(newcomer, address, prefer, slots)
    if splice is None:
        return Answer((ok({"peers": []}),))

    def then(replies: Replies) -> Answer:
        swapped = bool(replies) and replies[0] is not None and replies[0].get("accepted") is True
        linked = node.members.finish_join(newcomer, address, splice, swapped)
        peers = [[n, host, port] for n, (host, port) in linked]
        named = ", ".join(str(n) for n, _ in linked) or "none"
        note = (
            f"took in node {newcomer}: its peers are {named}; this node's are {sorted(node.peers)}"
        )
        return Answer((ok({"peers": peers}),), note=note)

    if splice.partner is None or splice.address is None:
        return then([])
    host, port = address
    swap = {"old": node.number, "node": newcomer, "host": host, "port": port}
    ask = Send(splice.partner, splice.address, encode_frame(Command.SWAP, swap), Command.SWAP)
    return Answer(calls=(ask,), then=then)


def _swap(node: Node, payload: dict[str, Any], now: float) -> Answer:
    old = positive_int(payload, "old", NODE_NUMBERS)
    new, address = address_fields(payload)
    accepted = node.swap(old, new, address, remember=payload.get("merge") is True)
    return Answer((ok({"accepted": accepted}),))


def _seek(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """Someone looks for a node it lost: say so if it is this node's peer, else pass on."""
    seek = message_id_field(payload, "seek")
    target = positive_int(payload, "target", NODE_NUMBERS)
    origin, address = address_fields(payload)
    hops = positive_int(payload, "hops", SEEK_HOPS)
    return Answer((ok(),), tuple(node.cuts.seek(seek, target, origin, address, hops)))


def _found(node: Node, payload: dict[str, Any], now: float) -> Answer:
    seek = message_id_field(payload, "seek")
    target = positive_int(payload, "target", NODE_NUMBERS)
    node.cuts.found(seek, target)
    return Answer((ok(),))


def _sync(node: Node, payload: dict[str, Any], now: float) -> Answer:
    theirs = field(payload, "total", str)
    digest = node.messages.digest
    if digest.total == theirs:
        return Answer((ok({"same": True}),))
    return Answer((ok({"same": False, "buckets": digest.bucket_hashes()}),))


def _ids(node: Node, payload: dict[str, Any], now: float) -> Answer:
    buckets = int_list(payload, "buckets", BUCKETS)
    after = payload.get("after", "")
    if not isinstance(after, str) or len(after) > 64:
        raise FrameError("field 'after' must be a message id or empty")
    ids, complete = node.messages.settled_ids(buckets, now, after)
    return Answer((ok({"ids": ids, "complete": complete}),))


def _pull(node: Node, payload: dict[str, Any], now: float) -> Answer:
    asker = positive_int(payload, "node", NODE_NUMBERS)
    ids = id_list(payload, "ids", MAX_LISTED_IDS)
    gifts = node.messages.offer(dict.fromkeys(ids), asker)  # each id once, however asked
    # Encoded as they are written, as a listing is: a client that stops reading does not
    # have the node hold every copy it asked for.
    return Answer(chain((encode_frame(Command.COPY, g) for g in gifts), (ok(),)))


def _conditions(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """The lab imposes network conditions: they replace those in force."""
    node.conditions = conditions_from(payload)
    return Answer((ok(),), note=f"network conditions: {node.conditions.describe()}")


def _remove(node: Node, payload: dict[str, Any], now: float) -> Answer:
    """Leave the network: say goodbye to every peer, then introduce them to each other
    (unless told not to: the command line plans their links against the whole network)."""
    former, plan = node.members.leave()
    if payload.get("introduce") is False:
        plan = []
    goodbye = encode_frame(Command.LEAVE, {"node": node.number})
    calls = [Send(peer, at, goodbye, Command.LEAVE) for peer, at in former.items()]
    for a, b in plan:
        host, port = former[b]
        introduction = encode_frame(Command.INTRODUCE, {"node": b, "host": host, "port": port})
        calls.append(Send(a, former[a], introduction, Command.INTRODUCE))

    def then(replies: Replies) -> Answer:
        goodbyes = zip(former, replies[: len(former)], strict=True)
        heard = [peer for peer, r in goodbyes if r and r.get("dropped")]
        links = [
            [a, b]
            for (a, b), r in zip(plan, replies[len(former) :], strict=True)
            if r and r.get("result") == "linked"
        ]
        reply = {"node": node.number, "former_peers": sorted(former), "links": links}
        note = (
            f"left the network; former peers {sorted(former)}, {sorted(heard)} heard the "
            f"goodbye; new links {links}"
        )
        return Answer((ok(reply),), note=note, leaves=True)

    return Answer(calls=tuple(calls), then=then)


Respond = Callable[[Node, dict[str, Any], float], Answer]

RESPONSES: dict[str, Respond] = {
    Command.PING: _ping,
    Command.NEW: _new,
    Command.RELAY: _relay,
    Command.RELAYS: _relays,
    Command.GET: _get,
    Command.READ: _read,
    Command.PEERS: _peers,
    Command.STATUS: _status,
    Command.LEAVE: _leave,
    Command.CONNECT: _connect,
    Command.INTRODUCE: _introduce,
    Command.WALK: _walk,
    Command.MERGE: _merge,
    Command.JOIN: _join,
    Command.SWAP: _swap,
    Command.SEEK: _seek,
    Command.FOUND: _found,
    Command.SYNC: _sync,
    Command.IDS: _ids,
    Command.PULL: _pull,
    Command.REMOVE: _remove,
    Command.CONDITIONS: _conditions,
}
"""The requests a node answers; any other command is refused."""
