"""The wire format, with no I/O: one frame per line, ``/COMMAND {json object}``.

A frame is UTF-8 text ending in ``\\n``: a slash, an upper-case command name, and
optionally a space and a JSON object. Pseudo-IRC keeps frames readable with ``nc``;
JSON keeps the payload unambiguous whatever the message text holds. Every frame is
bounded by ``MAX_FRAME_BYTES`` so a peer can never make a node buffer without limit.
Payloads are read by orjson, which refuses what no field could hold (``NaN``, a number
beyond a float, a lone surrogate) and reads a whole number beyond 64 bits as a float, so
a field that wants a whole number refuses it.
On the wire a node first greets each connection with ``/HELLO``, and every frame after
that carries a seal (``gossip.auth``) unless the network runs ``--insecure``.

Requests a node understands:

``/NEW {"text", "relays", "id"?}``         a client submits a message (under the id it chose:
                                            the same id again is the same message); the
                                            answer says ``held`` if no peer took a copy yet
``/RELAY {"id", "text", "path", "relays", "sent", "later"?}``  a peer passes a copy on (an
                                            empty path: catch-up hands the node back a message
                                            it sent); ``later``: no one waits on the answer,
                                            which may come with the next ones
``/RELAYS {"copies": [relay, ...]}``        a run of copies for one peer, each a ``/RELAY``
                                            payload, taken in order (all refused if one is
                                            malformed or gives a held message another text)
``/GET {"which", "peek"}``                  a client reads messages (``all``/``unread``/``read``);
                                            they become read unless ``peek``
``/PEERS {}``                               a client asks for the node's peers
``/REMOVE {"introduce"?}``                  a client asks the node to leave the network (and
                                            to introduce its former peers, unless false: the
                                            CLI plans their links against the whole network)
``/LEAVE {"node", "silent"?}``              a leaving peer says goodbye (``silent``: it
                                            dropped this node for silence, in case it lives)
``/INTRODUCE {"node", "host", "port"}``     a leaving peer suggests a replacement peer
``/CONNECT {"node", "host", "port"}``       a node asks to become a peer
``/PING {"node"?}``                          anyone checks the node is up; a peer's ping
                                            learns whether the link is still two-way
``/WALK {"node", "host", "port", "hops", "visited", "any"}``
                                            a node short of peers looks for one with a slot
``/JOIN {"node", "host", "port", "prefer", "slots"}``
                                            a node with no peers (restarted, added) asks in
``/SWAP {"old", "node", "host", "port", "merge"?}``
                                            a peer hands its link with this node to ``node``
                                            (``merge``: a cut network heals; remember ``old``)
``/SEEK {"seek", "target", "node", "host", "port", "hops"}``, ``/FOUND {"seek", "target"}``
                                            is a node that lost ``target`` still connected to
                                            it through the network? (flooded; found: answered)
``/MERGE {"node", "host", "port"}``         a peer this node lost for silence is back (a cut
                                            network healed) and asks to link again
``/SYNC {"total"}``, ``/IDS {"buckets"}``, ``/PULL {"node", "ids"}``
                                            catch-up: compare digests, list ids, fetch copies
                                            (answered with ``/COPY`` frames shaped like ``/RELAY``)
``/STATUS {}``                              a client asks for the node's numbers

Replies: zero or more ``/MSGS {"messages": [row, ...]}`` frames (for ``/GET``, as many messages
to a frame as fit, each a ``message_row``) or ``/COPY`` frames (for ``/PULL``), then
``/OK {...}`` or ``/ERR {"error"}``. Requests that came in one batch and are each answered by
a bare ``/OK`` (relayed copies, above all) may be answered together by one
``/OK {"acked": n}``: the n requests before it, in order, are done.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, BinaryIO, NamedTuple

import orjson

MAX_FRAME_BYTES = 64 * 1024
"""Largest frame, newline included; a longer line is refused unread."""

MAX_MESSAGE_BYTES = 8 * 1024
"""Largest message text in UTF-8; with JSON escaping and a path it still fits a frame."""

MAX_RELAYS = 10
"""Largest ``--relays``: copies per peer grow the traffic linearly, more teaches nothing."""

MAX_READ_IDS = 800
"""Most ids one ``/READ`` marks: each is at most 67 bytes quoted, with its comma, so a full
list is 54 KB, inside a frame."""

READ_FILTERS = ("all", "unread", "read")


class FrameError(ValueError):
    """A frame or payload that does not follow the protocol; the text says what is wrong."""


class Frame(NamedTuple):
    """One decoded frame (a named tuple: every frame in or out makes one)."""

    command: str
    payload: dict[str, Any]


class Copy(NamedTuple):
    """One copy of a message as it reached a node: the walk it took and when it arrived."""

    path: tuple[int, ...]
    arrived: float


class MessageView(NamedTuple):
    """A message as a node reports it: what ``/MSGS`` carries (a named tuple: a read of
    10,000 messages makes 10,000, and a node holds a ``Copy`` per path)."""

    id: str
    text: str
    sent: float
    copies: tuple[Copy, ...]
    read: bool


def acked(payload: dict[str, Any]) -> int:
    """How many requests an ``/OK`` answers: ``{"acked": n}`` answers n, any other one."""
    count = payload.get("acked")
    return count if type(count) is int and count > 1 else 1


def _valid_command(command: str) -> bool:
    return command.isascii() and command.isalpha() and command.isupper()


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
"""The one encoder of every payload: ``json.dumps`` with options builds a new one per call,
a cost every copy of every message would pay."""


def encode_frame(command: str, payload: dict[str, Any] | None = None) -> bytes:
    """One frame as bytes; raises FrameError if it cannot be sent or exceeds the size limit."""
    if not _valid_command(command):
        raise FrameError(f"command must be upper-case letters: {command!r}")
    try:
        data = f"/{command} {_json(payload or {})}\n".encode()
    except (ValueError, TypeError) as exc:
        raise FrameError(f"payload cannot be encoded: {exc}") from exc
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return data


def decode_frame(line: bytes) -> Frame:
    """Parse one line (with or without its newline) into a Frame, or raise FrameError."""
    if len(line) > MAX_FRAME_BYTES:
        raise FrameError(f"frame exceeds the {MAX_FRAME_BYTES}-byte limit")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError("frame is not valid UTF-8") from exc
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.startswith("/"):
        raise FrameError("frame must start with /COMMAND")
    command, _, body = text[1:].partition(" ")
    if not _valid_command(command):
        raise FrameError("command must be upper-case letters, as in /NEW")
    if not body.strip():
        return Frame(command, {})
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FrameError("payload is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise FrameError("payload must be a JSON object")
    return Frame(command, payload)


def read_line(stream: BinaryIO, limit: int = MAX_FRAME_BYTES) -> bytes | None:
    """One line from a buffered binary stream, newline included; None at a clean end.

    Reads at most one byte past ``limit``, so an endless line costs bounded memory.
    """
    line = stream.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit:
        raise FrameError(f"frame exceeds the {MAX_FRAME_BYTES}-byte limit")
    if not line.endswith(b"\n"):
        raise FrameError("connection closed in the middle of a frame")
    return line


def read_frame(stream: BinaryIO) -> Frame | None:
    """Read one bare frame from a buffered binary stream; None at a clean end of stream."""
    line = read_line(stream)
    return None if line is None else decode_frame(line)


class LineBuffer:
    """Splits the bytes a connection delivers into lines of at most ``limit`` bytes.

    The node's reading side, fed whatever ``recv`` returned: it never holds more than
    one line's worth, so a sender that never ends its line costs bounded memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def complete_lines(self) -> list[bytes]:
        """Every complete line held, in order: one read may bring many frames.

        FrameError once the first line not complete exceeds the limit, newline or not
        (after the complete lines before it were taken).
        """
        buffer, lines, start = self._buffer, [], 0
        while (end := buffer.find(b"\n", start, start + self.limit)) >= 0:
            lines.append(bytes(buffer[start : end + 1]))
            start = end + 1
        del buffer[:start]
        if not lines and len(buffer) >= self.limit:
            raise FrameError(f"frame exceeds the {MAX_FRAME_BYTES}-byte limit")
        return lines

    @property
    def partial(self) -> bool:
        """Whether part of a line has arrived and waits for its end."""
        return bool(self._buffer)


def field(payload: dict[str, Any], name: str, kind: Any) -> Any:
    """The payload's ``name`` if it has type ``kind`` (bool never passes as int)."""
    value = payload.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise FrameError(f"field {name!r} must be {getattr(kind, '__name__', 'a number')}")
    return value


def positive_int(payload: dict[str, Any], name: str, upper: int) -> int:
    """An integer field in 1..upper."""
    value: int = field(payload, name, int)
    if not 1 <= value <= upper:
        raise FrameError(f"field {name!r} must be between 1 and {upper}")
    return value


def message_text(payload: dict[str, Any]) -> str:
    """The ``text`` field, checked against the message size limit: what ``text_problem``
    lets the CLI and the web page send, a node takes, and no more."""
    text: str = field(payload, "text", str)
    if not text.strip():
        raise FrameError("message text is empty")
    size = len(text) if text.isascii() else utf8_size(text)
    if size > MAX_MESSAGE_BYTES:
        raise FrameError(f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")
    return text


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; FrameError if it holds lone surrogates (not sendable)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise FrameError("message text is not valid Unicode (it holds lone surrogates)") from exc


def text_problem(text: str) -> str | None:
    """What keeps ``text`` from being sent as a message, or None: the CLI and the web page
    check with this before they ask a node, which checks again."""
    if not text.strip():
        return "the message is empty"
    try:
        size = utf8_size(text)
    except FrameError:
        return "the message is not valid UTF-8 text"
    if size > MAX_MESSAGE_BYTES:
        return f"the message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes"
    return None


def path_field(payload: dict[str, Any], empty: bool = False) -> tuple[int, ...]:
    """The ``path`` field: a walk of distinct positive node numbers, non-empty unless
    ``empty`` (a message handed back to the node that sent it: its walk starts there)."""
    return _walk(field(payload, "path", list), empty)


def _walk(raw: list[Any], empty: bool) -> tuple[int, ...]:
    """A path as a tuple, checked (the type test runs in C: reads check thousands)."""
    if (not raw and not empty) or (raw and ({*map(type, raw)} != {int} or min(raw) <= 0)):
        raise FrameError("field 'path' must be a list of node numbers")
    path = tuple(raw)
    if len(set(path)) != len(path):
        raise FrameError("field 'path' visits a node twice")
    return path


def address_fields(payload: dict[str, Any]) -> tuple[int, tuple[str, int]]:
    """A peer's number and address from ``node``, ``host`` and ``port``."""
    number = positive_int(payload, "node", 1 << 31)
    host = field(payload, "host", str)
    if not is_host(host):
        raise FrameError("field 'host' must be a host name or an IP address")
    port = positive_int(payload, "port", 65535)
    return number, (host, port)


HOST_NAME = re.compile(r"[A-Za-z0-9._:%-]{1,253}")
"""What a host name or an IP address (v4, v6 with its zone) is written with."""


def is_host(host: str) -> bool:
    """Whether a resolver could take ``host``: a name whose labels are at most 63
    characters (a longer one raised UnicodeError deep in a connect), or an address."""
    return HOST_NAME.fullmatch(host) is not None and all(
        len(part) <= 63 for part in host.split(".")
    )


def endpoint_of(item: Any) -> tuple[int, tuple[str, int]] | None:
    """A node as frames list one, ``[node, host, port]``; None if it is not one."""
    try:
        return address_fields(dict(zip(("node", "host", "port"), item, strict=True)))
    except (FrameError, TypeError, ValueError):
        return None


def message_row(view: MessageView) -> list[Any]:
    """A message as ``/MSGS`` lists it: ``[id, text, sent, read, [[path, arrived], ...]]``,
    a row rather than an object, as a read lists thousands and names cost on both ends."""
    return [view.id, view.text, view.sent, view.read, view.copies]  # a Copy is [path, arrived]


new_tuple = tuple.__new__
"""Builds a named tuple (``Copy``, ``MessageView``, ``Send``) without its Python-level
``__new__``: a read of 10,000 messages builds 40,000 of them, and a flood one ``Copy`` and
a ``Send`` a peer for every copy."""


def messages_of(payload: dict[str, Any]) -> list[MessageView]:
    """The messages an ``/MSGS`` frame lists, each checked.

    Copies that took the same walk share one tuple, and each walk is checked once: a read
    of 10,000 messages holds some 30,000 paths, but a network of 16 nodes has few walks.
    (A walk is known by its value, so a copy whose walk writes a node number as ``1.0``
    where another copy of the listing wrote ``1`` shares that copy's walk of whole numbers:
    no walk that is not one is ever listed.)
    """
    try:
        return _listed(field(payload, "messages", list))
    except OverflowError:  # a whole number too large for a time
        raise FrameError("a listed message's times must be finite numbers") from None
    except TypeError:  # a path holding a list or an object, which no tuple of them hashes
        raise FrameError("a listed message's paths must be lists of node numbers") from None


def _listed(rows: list[Any]) -> list[MessageView]:
    views: list[MessageView] = []
    walks: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    shared = walks.setdefault
    for row in rows:
        if type(row) is not list or len(row) != 5:
            raise FrameError("a listed message must be [id, text, sent, read, copies]")
        message_id, text, sent, read, listed = row
        if type(message_id) is not str or type(text) is not str:
            raise FrameError("a listed message's id and text must be strings")
        if (type(sent) is not float and type(sent) is not int) or sent - sent:
            raise FrameError("a listed message's sent time must be a finite number")
        if type(read) is not bool or type(listed) is not list or not listed:
            raise FrameError("a listed message must say whether it is read, and list its copies")
        copies = []
        for item in listed:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not list:
                raise FrameError("a listed message's copies must be [path, time] pairs")
            path, arrived = item
            if (type(arrived) is not float and type(arrived) is not int) or arrived - arrived:
                raise FrameError("a listed message's copies must be [path, finite time] pairs")
            walk = tuple(path)
            copies.append(new_tuple(Copy, (shared(walk, walk), float(arrived))))
        views.append(new_tuple(MessageView, (message_id, text, float(sent), tuple(copies), read)))
    _check_walks(list(walks))
    return views


def _check_walks(walks: list[tuple[Any, ...]]) -> None:
    """FrameError unless every path is a walk: non-empty, node numbers, none twice."""
    if not walks:
        return
    numbers = list(chain.from_iterable(walks))
    if {*map(type, numbers)} != {int} or min(numbers) <= 0 or min(map(len, walks)) == 0:
        raise FrameError("a listed message's paths must be lists of node numbers")
    if list(map(len, map(set, walks))) != list(map(len, walks)):
        raise FrameError("a listed message's path visits a node twice")


def encoded_row(view: MessageView) -> bytes:
    """``message_row`` as it goes in a ``/MSGS`` frame. A message whose copies' walks
    together outgrow a frame is listed with its first copies, as many as fit: else no
    read of the node could list it, nor any other message."""
    row = _json(message_row(view)).encode()
    if len(row) <= LISTING_ROOM or len(view.copies) < 2:
        return row
    fits, over = 1, len(view.copies)  # the most copies that fit: at least 1, fewer than all
    while over - fits > 1:
        middle = (fits + over) // 2
        shorter = view._replace(copies=view.copies[:middle])
        if len(_json(message_row(shorter)).encode()) <= LISTING_ROOM:
            fits = middle
        else:
            over = middle
    return _json(message_row(view._replace(copies=view.copies[:fits]))).encode()


LISTING_HEAD = b'/MSGS {"messages":['
LISTING_TAIL = b"]}\n"
LISTING_ROOM = MAX_FRAME_BYTES - len(LISTING_HEAD) - len(LISTING_TAIL)
"""Most bytes one listed message takes."""


def messages_frames(rows: Iterable[bytes]) -> Iterator[bytes]:
    """``/MSGS`` frames listing these encoded rows (``encoded_row``), as many to a frame
    as fit: a read of 10,000 messages is a few dozen frames (each sealed once), not
    10,000. Rows are taken only as frames are asked for.
    """
    room = LISTING_ROOM

    def fitting() -> Iterator[bytes]:
        for row in rows:
            if len(row) > room:
                raise FrameError(f"a message of {len(row)} bytes exceeds the frame limit")
            yield row

    for run in _packed(fitting(), room):
        yield LISTING_HEAD + b",".join(run) + LISTING_TAIL


def _packed(items: Iterable[bytes], room: int) -> Iterator[list[bytes]]:
    """``items`` in order, in runs that fit ``room`` bytes once joined by commas (an item
    longer than ``room`` is a run of its own): the rows of ``/MSGS`` frames, the copies of
    ``/RELAYS`` ones. Each run is made only when asked for."""
    run: list[bytes] = []
    size = -1  # n items take n - 1 commas
    for item in items:
        if run and size + 1 + len(item) > room:
            yield run
            run, size = [], -1
        run.append(item)
        size += 1 + len(item)
    if run:
        yield run


LATER_TAIL = b',"later":true}\n'
_quoted = json.encoder.encode_basestring
"""A string as ``_json`` writes it (in C)."""


def relay_frame(
    message_id: str, text: str, path: tuple[int, ...], relays: int, sent: float, later: bool
) -> bytes:
    """The ``/RELAY`` frame handing on a copy (``relay_fields`` reads it back), written
    out directly: every copy of every message is one, and the encoder took longer than
    the rest of deciding it. ``later``: a copy passed on, whose sender does not wait on
    its answer. The id and path need no quoting, as the node checked them."""
    tail = LATER_TAIL if later else b"}\n"
    data = (
        f'/RELAY {{"id":"{message_id}","text":{_quoted(text)},'
        f'"path":[{",".join(map(str, path))}],"relays":{relays},"sent":{float(sent)!r}'
    ).encode() + tail
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return data


RELAY_HEAD = b"/RELAY "
RELAY_ID_HEAD = b'/RELAY {"id":"'
"""How a ``/RELAY`` frame as ``relay_frame`` writes it begins: its id comes first."""


def relay_id(line: bytes) -> str | None:
    """The message id of a ``/RELAY`` line as ``relay_frame`` writes it, read without
    decoding it or checking its seal (the frame is checked whole when it is taken);
    None for any other line."""
    if not line.startswith(RELAY_ID_HEAD):
        return None
    start = len(RELAY_ID_HEAD)
    end = line.find(b'"', start, start + 65)
    return None if end < 0 else line[start:end].decode("ascii", "replace")


RELAYS_HEAD = b'/RELAYS {"copies":['
RELAYS_TAIL = b"]}\n"


def relays_frames(frames: list[bytes]) -> list[bytes]:
    """``/RELAY`` frames (``relay_frame``) for one peer as few ``/RELAYS`` frames, each
    within the frame limit: a run of copies is one frame to seal, read and acknowledge
    rather than one each. A lone copy stays a ``/RELAY``."""
    if len(frames) < 2:
        return frames
    room = MAX_FRAME_BYTES - len(RELAYS_HEAD) - len(RELAYS_TAIL)
    bodies = (frame[len(RELAY_HEAD) : -1] for frame in frames)
    return [
        RELAYS_HEAD + b",".join(run) + RELAYS_TAIL if len(run) > 1 else RELAY_HEAD + run[0] + b"\n"
        for run in _packed(bodies, room)
    ]


def relays_fields(payload: dict[str, Any]) -> list[tuple[str, str, tuple[int, ...], int, float]]:
    """The copies a ``/RELAYS`` frame carries, each as ``relay_fields`` reads a ``/RELAY``."""
    copies = field(payload, "copies", list)
    if not copies or {*map(type, copies)} != {dict}:
        raise FrameError("field 'copies' must list /RELAY payloads")
    return [relay_fields(copy) for copy in copies]


def unawaited(frame: Frame) -> bool:
    """Whether no one waits on the answer to this ``/RELAY`` or ``/RELAYS`` (its copies were
    passed on, not a client's own): its ``/OK`` may wait for the next."""
    if frame.command == "RELAY":
        return frame.payload.get("later") is True
    copies = frame.payload.get("copies")
    return type(copies) is list and all(type(c) is dict and c.get("later") is True for c in copies)


def relay_fields(payload: dict[str, Any]) -> tuple[str, str, tuple[int, ...], int, float]:
    """A copy of a message as ``/RELAY`` and ``/COPY`` carry it: id, text, path, relays, sent.

    A copy as nodes write it passes one test of all its fields at once (every copy of
    every message is read here); any other is checked field by field, which says what
    is wrong.
    """
    message_id, text, path, relays, sent = (
        payload.get("id"),
        payload.get("text"),
        payload.get("path"),
        payload.get("relays"),
        payload.get("sent"),
    )
    if (
        type(message_id) is str
        and type(text) is str
        and type(path) is list
        and type(relays) is int
        and type(sent) is float
        and 0.0 <= sent <= MAX_SENT  # neither nan nor infinite
        and 0 < len(text) <= MAX_MESSAGE_BYTES
        and text.isascii()
        and 1 <= relays <= MAX_RELAYS
        and MESSAGE_ID.fullmatch(message_id) is not None
        and (not path or ({*map(type, path)} == {int} and min(path) > 0))
        and len(set(path)) == len(path)
    ):
        return message_id, text, tuple(path), relays, sent
    return _relay_fields_checked(payload)


def _relay_fields_checked(
    payload: dict[str, Any],
) -> tuple[str, str, tuple[int, ...], int, float]:
    message_id = message_id_field(payload, "id")
    text = message_text(payload)
    path = path_field(payload, empty=True)
    relays = positive_int(payload, "relays", MAX_RELAYS)
    try:
        sent = float(field(payload, "sent", int | float))
    except OverflowError:  # a whole number too large for a time
        sent = math.inf
    if not 0 <= sent <= MAX_SENT:
        raise FrameError(f"field 'sent' must be a time in seconds from 0 to {MAX_SENT:.0f}")
    return message_id, text, path, relays, sent


MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SENT = 1e10
"""The latest a message can say it was sent (the year 2286), in seconds since 1970: a peer's
1e300 showed as a time no one can read."""


def is_message_id(value: object) -> bool:
    """1 to 64 ASCII letters, digits, ``-`` or ``_`` (nodes make 32 hex digits)."""
    return isinstance(value, str) and MESSAGE_ID.fullmatch(value) is not None


def message_id_field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not is_message_id(value):
        raise FrameError(f"field {name!r} must be a message id: 1 to 64 letters, digits, - or _")
    return str(value)


def int_list(payload: dict[str, Any], name: str, limit: int) -> list[int]:
    """A list of at most ``limit`` non-negative integers."""
    raw = field(payload, name, list)
    if len(raw) > limit or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in raw
    ):
        raise FrameError(f"field {name!r} must be a list of at most {limit} whole numbers")
    return raw


def id_list(payload: dict[str, Any], name: str, limit: int) -> list[str]:
    """A list of at most ``limit`` message ids."""
    raw = field(payload, name, list)
    if len(raw) > limit:
        raise FrameError(f"field {name!r} must be a list of at most {limit} message ids")
    wrong = [i for i in raw if not is_message_id(i)][:1]
    if wrong:
        shown = repr(wrong[0]) if len(repr(wrong[0])) <= 40 else f"{repr(wrong[0])[:37]}..."
        raise FrameError(
            f"field {name!r} must hold message ids (1-64 letters, digits, - or _), not {shown}"
        )
    return raw
