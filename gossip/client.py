"""Talk to one node from Python: the library behind the CLI.

Imports only the standard library and the codec, so a command that just sends or reads
a message starts fast.

    >>> client = GossipClient.to_node(1)  # node 1 of the network running here
    >>> client.submit_message("Apple")
    >>> client.get_messages()
    ['Apple (Node 1)']
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from gossip.auth import AuthError, Channel, Refused
from gossip.collection import held_off
from gossip.commands import REPLY_ENDS, Command
from gossip.errors import GossipError
from gossip.protocol import (
    MAX_READ_IDS,
    Frame,
    FrameError,
    MessageView,
    acked,
    encode_frame,
    endpoint_of,
    messages_of,
)
from gossip.sockets import LINGER_ABORT, timed_stream


class NodeUnreachable(GossipError):
    """The node did not answer: it is down, or the address is wrong."""

    def __init__(self, text: str, refused: bool = False) -> None:
        super().__init__(text)
        self.refused = refused
        """Its port refused: nothing listens there (a dead node), rather than no answer."""


class NodeBusy(GossipError):
    """The node turned the connection away: every connection it serves at once is open."""


class PartlyRefused(GossipError):
    """``post_all``: the node refused some of the messages; the others were accepted and
    spread. ``receipts`` holds, in order, each accepted one's receipt and None for each
    refused one; ``refusals`` why each refused one was, by its place."""

    def __init__(self, text: str, receipts: list[Receipt | None], refusals: dict[int, str]):
        super().__init__(text)
        self.receipts = receipts
        self.refusals = refusals


@dataclass(frozen=True)
class Receipt:
    """A node's answer to a submitted message."""

    id: str
    held: bool = False
    """No peer took a copy yet: it is on the node's disk, and spreads once it has a peer."""
    duplicate: bool = False
    """The node already held a message with this id: this was a retry, nothing was sent."""


@dataclass(frozen=True)
class Peer:
    number: int
    host: str
    port: int


MAX_TIMEOUT = 86_400.0
"""Longest timeout a client takes (a day): a socket refuses more than it can count."""


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """``"127.0.0.1:7001"`` or ``("127.0.0.1", 7001)`` as a (host, port) pair."""
    if isinstance(address, tuple):
        host, port = address if len(address) == 2 else ("", 0)
        if isinstance(host, str) and host and type(port) is int and 0 < port < 65536:
            return host, port
        raise GossipError(f"address {address!r} must be (HOST, PORT), as ('127.0.0.1', 7001)")
    if not isinstance(address, str):
        raise GossipError(f"address must be 'HOST:PORT' or (HOST, PORT), not {address!r}")
    host, sep, port = address.rpartition(":")
    digits = port.isascii() and port.isdigit() and len(port) <= 5
    if not sep or not digits or not 0 < int(port) < 65536:
        raise GossipError(f"address {address!r} must look like HOST:PORT, as in 127.0.0.1:7001")
    return host or "127.0.0.1", int(port)


def format_path(path: tuple[int, ...]) -> str:
    return " -> ".join(f"Node {n}" for n in path)


class GossipClient:
    """A client of one node; every call opens its own short connection."""

    def __init__(
        self,
        address: str | tuple[str, int],
        key: bytes | None = None,
        timeout: float = 10.0,
        name: str = "node",
    ) -> None:
        self.address = parse_address(address)
        if key is not None and not isinstance(key, bytes):  # a caller's, not a peer's
            raise GossipError(f"key must be the secret's bytes or None, not {type(key).__name__}")
        self.key = key
        """The network's secret (None for an ``--insecure`` network)."""
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT
        ):
            raise GossipError(
                f"timeout must be a number of seconds above 0, up to {MAX_TIMEOUT:g}, "
                f"not {timeout!r}"
            )
        self.timeout = timeout
        self.name = name
        """How errors speak of the node, as in ``node 3``."""

    @classmethod
    def to_node(cls, number: int, port_origin: int | None = None) -> GossipClient:
        """A client of node ``number`` of a network running on this machine, holding its
        secret; GossipError if there is no such network or node."""
        from gossip.state import find_network

        if type(number) is not int:
            raise GossipError(f"a node is named by its number, as 3, not {number!r}")
        if port_origin is not None and (
            type(port_origin) is not int or not 1 <= port_origin < 65536
        ):
            raise GossipError(
                f"a port origin is a whole number from 1 to 65535, not {port_origin!r}"
            )
        _, network = find_network(port_origin)
        entry = network.node(number)
        return cls(entry.address, network.key, name=f"node {number}")

    def request(self, command: str, payload: dict[str, Any] | None = None) -> list[Frame]:
        """Send one request; return its reply frames, ending with ``/OK``.

        Raises NodeUnreachable if the node does not answer, GossipError if it refuses.
        """
        try:
            frame = encode_frame(command, payload)
        except FrameError as exc:
            raise GossipError(f"cannot send that to {self.who}: {exc}") from exc
        return self.exchange(frame)

    def exchange(self, frame: bytes) -> list[Frame]:
        """Send one encoded request frame on a fresh connection; return its reply frames."""
        replies = self.exchange_all([frame])[0]
        if replies[-1].command == Command.ERR:
            raise GossipError(f"{self.who} refused the request: {replies[-1].payload.get('error')}")
        return replies

    def exchange_all(self, frames: list[bytes]) -> list[list[Frame]]:
        """Send encoded request frames on one fresh connection, all in one write; the reply
        frames of each, in order (each ends with ``/OK`` or ``/ERR``)."""
        if not all(isinstance(frame, bytes) for frame in frames):
            raise GossipError("frames go as bytes, as encode_frame makes them")
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as sock:
                # Close with a reset once the reply is in: a clean close would park this
                # port in TIME_WAIT for a minute, and nodes open connections all the time.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
                reader, stream = timed_stream(sock)
                with stream:  # each frame must come whole within the timeout
                    reader.deadline = time.monotonic() + self.timeout
                    channel = Channel.connect(self.key, stream)
                    sock.settimeout(self.timeout)
                    sock.sendall(b"".join(channel.send(frame) for frame in frames))
                    answered: list[list[Frame]] = []
                    current: list[Frame] = []
                    while len(answered) < len(frames):
                        reader.deadline = time.monotonic() + self.timeout
                        reply = channel.read(stream)
                        if reply is None:
                            break
                        current.append(reply)
                        if reply.command in REPLY_ENDS:
                            answered.append(current)
                            current = []
                            if reply.command == Command.OK and (more := acked(reply.payload)) > 1:
                                # one /OK {"acked": n} answers n requests in a row
                                answered += [[Frame(Command.OK, {})] for _ in range(more - 1)]
        except AuthError as exc:
            raise GossipError(f"cannot talk to {self.who}: {exc}") from exc
        except Refused as exc:
            raise NodeBusy(f"{self.who} turned the connection away: {exc}") from exc
        except FrameError as exc:
            raise GossipError(f"{self.who} sent a bad reply: {exc}") from exc
        except socket.gaierror as exc:  # a host name in a network file, not (yet) known
            reason = f"its host name does not resolve: {(exc.strerror or str(exc)).lower()}"
            raise NodeUnreachable(f"{self.who} is not answering ({reason})", True) from exc
        except UnicodeError as exc:  # a name no resolver takes (a label over 63 letters)
            reason = f"its host name cannot be looked up: {exc}"
            raise NodeUnreachable(f"{self.who} is not answering ({reason})", True) from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
            refused = isinstance(exc, ConnectionRefusedError)
            raise NodeUnreachable(f"{self.who} is not answering ({reason})", refused) from exc
        if len(answered) < len(frames):
            raise NodeUnreachable(f"{self.who} closed the connection without a reply")
        return answered

    @property
    def who(self) -> str:
        """The node as errors name it, as in ``node 3 at 127.0.0.1:7003``."""
        host, port = self.address
        return f"{self.name} at {host}:{port}"

    def submit_message(self, message: str) -> None:
        """Submit a message to this node; it spreads to every live node.

        The simple call; ``post`` also takes relays and an id, and returns a receipt.
        """
        self.post(message)

    def post(self, message: str, relays: int = 1, message_id: str | None = None) -> Receipt:
        """The richer ``submit_message``: submit under an id (a new random one unless
        given), with ``relays`` copies per peer, and say how it went (the receipt holds
        the id).

        Sending again with the id of a submission whose answer was lost is safe: the
        node holds it once. GossipError if the node could not store it: then it does
        not spread.
        """
        chosen = os.urandom(16).hex() if message_id is None else message_id
        reply = self.request(Command.NEW, {"text": message, "relays": relays, "id": chosen})[-1]
        return _receipt(reply.payload, chosen)

    def post_all(
        self, messages: list[str], relays: int = 1, message_ids: list[str] | None = None
    ) -> list[Receipt]:
        """Submit many messages at once, on one connection, in one write: the node stores
        them with one commit to its disk and answers each once a peer holds it. Their
        receipts, in order.

        ``message_ids``, one per message (new random ones unless given), make a retry
        safe, as ``post``'s does. If the node refused some (after all were answered),
        PartlyRefused says which, and holds the receipts of the others, which spread.
        """
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise GossipError("post_all takes a list of texts")
        if message_ids is not None and not isinstance(message_ids, list):
            raise GossipError("post_all's message_ids is a list of ids, one per text")
        chosen = [os.urandom(16).hex() for _ in messages] if message_ids is None else message_ids
        if len(chosen) != len(messages):
            raise GossipError(
                f"post_all was given {len(messages)} message(s) and {len(chosen)} id(s): "
                "give one id per message, or none"
            )
        try:
            frames = [
                encode_frame(Command.NEW, {"text": text, "relays": relays, "id": message_id})
                for text, message_id in zip(messages, chosen, strict=True)
            ]
        except FrameError as exc:
            raise GossipError(f"cannot send that to {self.who}: {exc}") from exc
        replies = self.exchange_all(frames)
        receipts: list[Receipt | None] = []
        refusals: dict[int, str] = {}
        for place, (reply, message_id) in enumerate(zip(replies, chosen, strict=True)):
            if reply[-1].command == Command.ERR:
                refusals[place] = str(reply[-1].payload.get("error"))
                receipts.append(None)
            else:
                receipts.append(_receipt(reply[-1].payload, message_id))
        if refusals:
            first = next(iter(refusals.values()))
            raise PartlyRefused(
                f"{self.who} refused {len(refusals)} message(s): {first}", receipts, refusals
            )
        return [r for r in receipts if r is not None]

    def get_messages(self) -> list[str]:
        """Every message, oldest first, as ``"Apple (Node 1 -> Node 8 -> Node 10)"``.

        The path is the one of the first copy that arrived. The simple call;
        ``read_messages`` gives whole MessageView records.
        """
        return [f"{m.text} ({format_path(m.copies[0].path)})" for m in self.read_messages()]

    def read_messages(self, which: str = "all", peek: bool = False) -> list[MessageView]:
        """The richer ``get_messages``: MessageView records, with every copy's path and
        arrival time, of ``all``, the ``unread`` or the ``read`` messages.

        They become read, unless ``peek`` (for watching a message spread).
        """
        with held_off(promote=True):
            frames = self.request(Command.GET, {"which": which, "peek": peek})
            try:
                return [
                    m for f in frames if f.command == Command.MSGS for m in messages_of(f.payload)
                ]
            except FrameError as exc:
                raise GossipError(f"{self.who} sent a bad message: {exc}") from exc

    def mark_read(self, ids: list[str]) -> int:
        """Mark these messages read, as a read without ``peek`` would have: for a reader
        that marks only what it managed to show. How many were unread."""
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise GossipError("mark_read takes a list of message ids")
        ids = list(dict.fromkeys(ids))  # each once: a node counts each it marks
        marked = 0
        for start in range(0, len(ids), MAX_READ_IDS):
            chunk = ids[start : start + MAX_READ_IDS]
            reply = self.request(Command.READ, {"ids": chunk})[-1].payload
            count = reply.get("marked")
            marked += count if type(count) is int else 0
        return marked

    def peers(self) -> list[Peer]:
        listed = self.request(Command.PEERS)[-1].payload.get("peers", [])
        found = [endpoint_of(item) for item in listed] if isinstance(listed, list) else [None]
        if None in found:
            raise GossipError(f"{self.who} sent a bad list of peers: {listed!r:.200}")
        return [Peer(n, host, port) for n, (host, port) in filter(None, found)]

    def status(self) -> dict[str, Any]:
        """The node's peers, how many it aims for, messages held and unread, start time."""
        return self.request(Command.STATUS)[-1].payload

    def remove(self, introduce: bool = True) -> dict[str, Any]:
        """Ask the node to leave the network; returns its former peers and the new links.

        ``introduce``: the node links its former peers up itself; the command line says
        no, as it plans their links against the whole network.
        """
        if type(introduce) is not bool:
            raise GossipError(f"introduce is True or False, not {introduce!r}")
        return self.request(Command.REMOVE, {"introduce": introduce})[-1].payload


def _receipt(payload: dict[str, Any], chosen: str) -> Receipt:
    return Receipt(
        str(payload.get("id", chosen)),
        held=payload.get("held") is True,
        duplicate=payload.get("duplicate") is True,
    )


def farewell(
    leaver: int, nodes: dict[int, tuple[str, int]], key: bytes | None, timeout: float = 10.0
) -> dict[int, tuple[str, int]]:
    """Tell ``nodes`` that node ``leaver`` is gone; those that had it as a peer, by number.

    A node that cannot be reached is skipped: it learns of the loss when a copy fails.
    """
    dropped = {}
    for number, address in nodes.items():
        node = GossipClient(address, key, timeout=timeout, name=f"node {number}")
        try:
            reply = node.request(Command.LEAVE, {"node": leaver})
        except GossipError:
            continue
        if reply[-1].payload.get("dropped"):
            dropped[number] = address
    return dropped
