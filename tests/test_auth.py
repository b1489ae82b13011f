"""Sealed connections of ``gossip.auth`` and the line splitting of ``protocol.LineBuffer``.

No sockets: a "connection" is a node's Channel and a client's Channel built from its hello,
and the wire is whatever bytes the test hands from one to the other.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.auth import (
    MAC_HEX,
    MAX_LINE_BYTES,
    NONCE_HEX,
    SEAL_BYTES,
    TO_NODE,
    AuthError,
    Channel,
    Refused,
    Seal,
    new_secret,
)
from gossip.protocol import (
    MAX_FRAME_BYTES,
    Frame,
    FrameError,
    LineBuffer,
    decode_frame,
    encode_frame,
)

KEY = new_secret()
OTHER_KEY = new_secret()
KEYS = [pytest.param(KEY, id="secure"), pytest.param(None, id="insecure")]

PING = encode_frame("PING", {"node": 1})
OK = encode_frame("OK", {"n": 1})


def connect(key: bytes | None) -> tuple[Channel, Channel]:
    """A node's channel and the client's channel built from the node's hello."""
    node, hello = Channel.for_node(key)
    return node, Channel.for_client(key, decode_frame(hello))


def flip(line: bytes, index: int) -> bytes:
    """``line`` with the byte at ``index`` changed (to a different byte)."""
    changed = bytearray(line)
    changed[index] ^= 0x01
    return bytes(changed)


def assert_in_step(sender: Channel, receiver: Channel) -> None:
    """The next genuine frame still opens: a refused line did not move either count."""
    frame = encode_frame("NEW", {"text": "still in step"})
    assert receiver.receive(sender.send(frame)) == decode_frame(frame)


# Round trips


def test_auth_error_is_a_frame_error() -> None:
    """Callers that catch FrameError for any bad line also catch a bad seal."""
    assert issubclass(AuthError, FrameError)
    assert issubclass(Refused, FrameError)


@pytest.mark.parametrize("key", KEYS)
def test_many_frames_both_ways_arrive_in_order(key: bytes | None) -> None:
    node, client = connect(key)
    for i in range(50):
        request = encode_frame("GET", {"which": "all", "i": i})
        assert node.receive(client.send(request)) == Frame("GET", {"which": "all", "i": i})
        # Several replies in a row for one request, as /GET answers with /MSG frames.
        for j in range(3):
            reply = encode_frame("MSG", {"i": i, "j": j, "text": "a #b ##c"})
            assert client.receive(node.send(reply)) == Frame(
                "MSG", {"i": i, "j": j, "text": "a #b ##c"}
            )


@pytest.mark.parametrize("key", KEYS)
def test_frames_sent_in_a_batch_are_received_in_the_same_order(key: bytes | None) -> None:
    """Sealing runs ahead of opening: the counts only have to agree frame by frame."""
    node, client = connect(key)
    frames = [encode_frame("RELAY", {"n": n}) for n in range(20)]
    lines = [client.send(frame) for frame in frames]
    assert [node.receive(line) for line in lines] == [decode_frame(f) for f in frames]


def test_insecure_frames_go_bare_and_hello_says_so() -> None:
    node, hello = Channel.for_node(None)
    assert decode_frame(hello) == Frame("HELLO", {"auth": False})
    client = Channel.for_client(None, decode_frame(hello))
    assert client.send(PING) == PING
    assert node.send(OK) == OK
    # Anyone may type frames with nc: a bare line is accepted as is.
    assert node.receive(b"/PING {}\n") == Frame("PING", {})


def test_secure_hello_carries_a_fresh_nonce_and_frames_carry_a_seal() -> None:
    _, hello = Channel.for_node(KEY)
    _, other_hello = Channel.for_node(KEY)
    payload = decode_frame(hello).payload
    assert payload["auth"] is True
    assert len(payload["nonce"]) == NONCE_HEX
    assert set(payload["nonce"]) <= set(string.hexdigits.lower())
    assert payload["nonce"] != decode_frame(other_hello).payload["nonce"]

    _, client = connect(KEY)
    line = client.send(PING)
    body, mark, mac = line.removesuffix(b"\n").rpartition(b" #")
    assert (body + b"\n", mark) == (PING, b" #")
    assert len(mac) == MAC_HEX
    assert set(mac.decode()) <= set(string.hexdigits.lower())
    assert len(line) == len(PING) + SEAL_BYTES


def test_sealed_frame_is_accepted_with_crlf() -> None:
    """A line typed with CRLF line ends still opens: the seal covers the frame, not the ending."""
    node, client = connect(KEY)
    line = client.send(PING)
    assert node.receive(line.removesuffix(b"\n") + b"\r\n") == decode_frame(PING)


# Refusals: every one is an AuthError, and none moves the count


def test_frame_without_seal_is_refused() -> None:
    node, client = connect(KEY)
    with pytest.raises(AuthError, match="carries no seal"):
        node.receive(PING)
    assert node.incoming.count == 0
    assert_in_step(client, node)


def test_tampered_body_is_refused() -> None:
    node, client = connect(KEY)
    line = client.send(encode_frame("NEW", {"text": "hello", "relays": 1}))
    forged = line.replace(b'"relays":1', b'"relays":9')
    assert forged != line
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(forged)
    assert node.incoming.count == 0
    assert node.receive(line) == Frame("NEW", {"text": "hello", "relays": 1})
    assert_in_step(client, node)


def test_tampered_mac_is_refused() -> None:
    node, client = connect(KEY)
    line = client.send(PING)
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(flip(line, len(line) - 2))  # last hex digit of the MAC
    with pytest.raises(AuthError):
        node.receive(line[:-2] + b"\n")  # MAC cut short
    assert node.receive(line) == decode_frame(PING)


def test_frame_sealed_with_another_key_is_refused() -> None:
    node, hello = Channel.for_node(KEY)
    intruder = Channel.for_client(OTHER_KEY, decode_frame(hello))
    honest = Channel.for_client(KEY, decode_frame(hello))
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(intruder.send(PING))
    assert_in_step(honest, node)


def test_frame_replayed_on_another_connection_is_refused() -> None:
    """The nonce differs per connection, so a recorded frame is worthless on a new one."""
    first_node, first_client = connect(KEY)
    second_node, second_client = connect(KEY)
    line = first_client.send(PING)
    assert first_node.receive(line) == decode_frame(PING)
    with pytest.raises(AuthError, match="seal is wrong"):
        second_node.receive(line)
    assert_in_step(second_client, second_node)


def test_same_frame_twice_on_one_connection_is_refused() -> None:
    node, client = connect(KEY)
    line = client.send(PING)
    assert node.receive(line) == decode_frame(PING)
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(line)
    assert node.incoming.count == 1
    assert_in_step(client, node)


def test_swapped_frames_are_refused_and_the_right_order_still_works() -> None:
    node, client = connect(KEY)
    first = client.send(encode_frame("NEW", {"text": "one"}))
    second = client.send(encode_frame("NEW", {"text": "two"}))
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(second)
    assert node.receive(first) == Frame("NEW", {"text": "one"})
    assert node.receive(second) == Frame("NEW", {"text": "two"})


def test_request_reflected_back_to_the_client_is_refused() -> None:
    """Both directions start counting at 0 with one nonce; only the direction tells them apart."""
    node, client = connect(KEY)
    request = client.send(OK)
    with pytest.raises(AuthError, match="seal is wrong"):
        client.receive(request)
    reply = node.send(OK)
    with pytest.raises(AuthError, match="seal is wrong"):
        node.receive(reply)
    # Neither refusal moved a count: both genuine frames still open where they belong.
    assert node.receive(request) == decode_frame(OK)
    assert client.receive(reply) == decode_frame(OK)


def test_sealed_frame_not_accepted_by_an_insecure_peer_as_a_frame() -> None:
    """A sealed line read bare is not a frame: its seal breaks the JSON."""
    secure_node, _ = connect(KEY)
    _, insecure_client = connect(None)
    with pytest.raises(FrameError):
        insecure_client.receive(secure_node.send(OK))


# The client's view of the hello


HELLO_REFUSALS = [
    pytest.param(Frame("OK", {}), KEY, "expected /HELLO first, got /OK", id="not-hello"),
    pytest.param(
        Frame("HELLO", {"auth": True, "nonce": "a" * NONCE_HEX}),
        None,
        "requires authentication",
        id="auth-but-no-key",
    ),
    pytest.param(Frame("HELLO", {"auth": False}), KEY, "--insecure", id="insecure-but-key"),
    pytest.param(Frame("HELLO", {"auth": True}), KEY, "no valid nonce", id="nonce-missing"),
    pytest.param(
        Frame("HELLO", {"auth": True, "nonce": "ab12"}), KEY, "no valid nonce", id="nonce-short"
    ),
    pytest.param(
        Frame("HELLO", {"auth": True, "nonce": "a" * (NONCE_HEX + 1)}),
        KEY,
        "no valid nonce",
        id="nonce-long",
    ),
    pytest.param(
        Frame("HELLO", {"auth": True, "nonce": 10**31}), KEY, "no valid nonce", id="nonce-int"
    ),
    pytest.param(
        Frame("HELLO", {"auth": True, "nonce": None}), KEY, "no valid nonce", id="nonce-null"
    ),
    pytest.param(Frame("HELLO", {}), KEY, "whether it authenticates", id="auth-missing-key"),
    pytest.param(Frame("HELLO", {}), None, "whether it authenticates", id="auth-missing-nokey"),
    pytest.param(
        Frame("HELLO", {"auth": "true", "nonce": "a" * NONCE_HEX}),
        KEY,
        "whether it authenticates",
        id="auth-string",
    ),
    pytest.param(Frame("HELLO", {"auth": None}), None, "whether it authenticates", id="auth-null"),
    pytest.param(Frame("HELLO", {"auth": []}), None, "whether it authenticates", id="auth-list"),
]


@pytest.mark.parametrize(("hello", "key", "fragment"), HELLO_REFUSALS)
def test_client_refuses_a_bad_hello(hello: Frame, key: bytes | None, fragment: str) -> None:
    with pytest.raises(AuthError) as caught:
        Channel.for_client(key, hello)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        pytest.param(1, KEY, id="auth-1"),
        pytest.param(1.0, KEY, id="auth-1.0"),
        pytest.param(0, KEY, id="auth-0-with-key"),
        pytest.param(0, None, id="auth-0-no-key"),
    ],
)
def test_client_refuses_a_number_for_auth(auth: Any, key: bytes | None) -> None:
    """``"auth": 1`` is not a bool; it must be refused like ``"auth": "true"`` is."""
    with pytest.raises(AuthError, match="whether it authenticates"):
        Channel.for_client(key, Frame("HELLO", {"auth": auth, "nonce": "a" * NONCE_HEX}))


def test_numeric_auth_without_nonce_fails_only_with_frame_error() -> None:
    """Whatever a node says in its hello, the client fails with a FrameError, not a crash."""
    with pytest.raises(FrameError):
        client = Channel.for_client(KEY, Frame("HELLO", {"auth": 1}))
        client.send(PING)


def test_node_hello_agrees_with_its_seals_for_an_empty_key() -> None:
    """Any key, even an empty one, means sealed frames, and the hello says so."""
    node, hello = Channel.for_node(b"")
    assert decode_frame(hello).payload["auth"] is True
    client = Channel.for_client(b"", decode_frame(hello))
    assert client.receive(node.send(OK)) == decode_frame(OK)


# Bare /ERR: how a node refuses a frame whose seal is wrong


def test_client_accepts_a_bare_err_from_the_node() -> None:
    node, client = connect(KEY)
    refusal = encode_frame("ERR", {"error": "frame is not authenticated"})
    assert client.receive(refusal) == Frame("ERR", {"error": "frame is not authenticated"})
    assert client.incoming.count == 0
    assert_in_step(node, client)


def test_client_refuses_a_bare_ok_from_the_node() -> None:
    """Only a refusal may come unsealed: a bare /OK could be forged by anyone on the path."""
    node, client = connect(KEY)
    with pytest.raises(AuthError):
        client.receive(encode_frame("OK", {"stored": True}))
    assert_in_step(node, client)


def test_client_refuses_a_bare_err_that_is_not_a_frame() -> None:
    node, client = connect(KEY)
    with pytest.raises(AuthError):
        client.receive(b"/ERR not json\n")
    assert_in_step(node, client)


def test_node_refuses_a_bare_err_from_a_client() -> None:
    node, client = connect(KEY)
    with pytest.raises(AuthError):
        node.receive(encode_frame("ERR", {"error": "x"}))
    assert_in_step(client, node)


# Channel.connect and Channel.read over a stream


@pytest.mark.parametrize("key", KEYS)
def test_connect_reads_the_hello_then_sealed_frames(key: bytes | None) -> None:
    node, hello = Channel.for_node(key)
    replies = [encode_frame("MSG", {"n": n}) for n in range(5)] + [OK]
    stream = io.BytesIO(hello + b"".join(node.send(r) for r in replies))
    client = Channel.connect(key, stream)
    assert node.receive(client.send(PING)) == decode_frame(PING)
    assert [client.read(stream) for _ in replies] == [decode_frame(r) for r in replies]
    assert client.read(stream) is None


def test_connect_with_a_disagreeing_key_is_an_auth_error() -> None:
    _, hello = Channel.for_node(KEY)
    with pytest.raises(AuthError, match="requires authentication"):
        Channel.connect(None, io.BytesIO(hello))


@pytest.mark.parametrize("key", KEYS)
def test_connect_to_a_busy_node_is_refused_with_its_reason(key: bytes | None) -> None:
    with pytest.raises(Refused) as caught:
        Channel.connect(key, io.BytesIO(b'/ERR {"error":"busy"}\n'))
    assert str(caught.value) == "busy"


def test_connect_to_a_closed_stream_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="before the hello"):
        Channel.connect(KEY, io.BytesIO(b""))


def test_read_returns_frames_in_order_then_none() -> None:
    node, client = connect(KEY)
    frames = [encode_frame("COPY", {"n": n}) for n in range(10)]
    stream = io.BytesIO(b"".join(node.send(f) for f in frames))
    assert [client.read(stream) for _ in frames] == [decode_frame(f) for f in frames]
    assert client.read(stream) is None
    assert client.read(stream) is None


def test_read_refuses_a_truncated_last_line() -> None:
    node, client = connect(KEY)
    whole = node.send(OK)
    stream = io.BytesIO(whole + node.send(OK)[:-5])
    assert client.read(stream) == decode_frame(OK)
    with pytest.raises(FrameError, match="middle of a frame"):
        client.read(stream)


def largest_frame() -> bytes:
    """A frame of exactly MAX_FRAME_BYTES, newline included."""
    overhead = len(encode_frame("X", {"t": ""}))
    frame = encode_frame("X", {"t": "a" * (MAX_FRAME_BYTES - overhead)})
    assert len(frame) == MAX_FRAME_BYTES
    return frame


def test_read_accepts_the_largest_frame_with_its_seal() -> None:
    """MAX_LINE_BYTES leaves room for the seal on the largest frame the codec allows."""
    node, client = connect(KEY)
    line = node.send(largest_frame())
    assert len(line) == MAX_LINE_BYTES
    assert client.read(io.BytesIO(line)) == decode_frame(largest_frame())


def test_read_refuses_a_line_longer_than_the_limit() -> None:
    _, client = connect(KEY)
    stream = io.BytesIO(b"/X " + b"a" * MAX_LINE_BYTES + b"\n")
    with pytest.raises(FrameError, match="exceeds"):
        client.read(stream)


# Properties: whatever arrives, receive() returns a Frame or raises FrameError

SIDES = st.sampled_from(["node", "client"])
MAYBE_KEY = st.sampled_from([KEY, None])

mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0)),
    st.tuples(st.just("truncate"), st.integers(min_value=0)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.binary(min_size=1, max_size=5)),
)


def mutate(line: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind = mutation[0]
    if kind == "flip":
        return flip(line, mutation[1] % len(line))
    if kind == "truncate":
        return line[: mutation[1] % len(line)]
    if kind == "extend":
        return line + mutation[1]
    at = mutation[1] % len(line)
    return line[:at] + mutation[2] + line[at:]


def sides(key: bytes | None, side: str) -> tuple[Channel, Channel]:
    """(sender, receiver) of a fresh connection; ``side`` is the receiving end."""
    node, client = connect(key)
    return (client, node) if side == "node" else (node, client)


@settings(max_examples=300, deadline=None)
@given(line=st.binary(max_size=300), key=MAYBE_KEY, side=SIDES)
def test_receive_of_arbitrary_bytes_is_a_frame_or_a_frame_error(
    line: bytes, key: bytes | None, side: str
) -> None:
    _, receiver = sides(key, side)
    try:
        result = receiver.receive(line)
    except FrameError:
        return
    assert isinstance(result, Frame)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4),
    mutation=mutations,
    key=MAYBE_KEY,
    side=SIDES,
)
def test_receive_of_a_mutated_sealed_frame_is_the_frame_or_a_frame_error(
    payload: dict[str, str], mutation: tuple[Any, ...], key: bytes | None, side: str
) -> None:
    """In secure mode a changed line never passes as a different frame."""
    sender, receiver = sides(key, side)
    frame = encode_frame("RELAY", payload)
    changed = mutate(sender.send(frame), mutation)
    try:
        result = receiver.receive(changed)
    except FrameError:
        return
    assert isinstance(result, Frame)
    if key is not None:
        # Only a change to the line ending (\n dropped or made \r) may still open.
        assert result == decode_frame(frame)


payloads = st.dictionaries(  # whole numbers within 64 bits, as frames carry them
    st.text(max_size=12),
    st.one_of(st.text(max_size=40), st.integers(-(2**63), 2**64 - 1)),
    max_size=6,
)
commands = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(st.tuples(commands, payloads), min_size=1, max_size=5),
    key=MAYBE_KEY,
    side=SIDES,
)
def test_sealed_frames_round_trip(
    frames: list[tuple[str, dict[str, Any]]], key: bytes | None, side: str
) -> None:
    sender, receiver = sides(key, side)
    for command, payload in frames:
        assert receiver.receive(sender.send(encode_frame(command, payload))) == Frame(
            command, payload
        )


# LineBuffer


@st.composite
def lines_and_chunks(draw: st.DrawFn) -> tuple[int, list[bytes], list[int]]:
    """A limit, lines that each fit it, and the sizes of the chunks they arrive in."""
    limit = draw(st.integers(min_value=1, max_value=40))
    body = st.binary(max_size=limit - 1).map(lambda b: b.replace(b"\n", b"x") + b"\n")
    lines = draw(st.lists(body, max_size=12))
    chunks = draw(st.lists(st.integers(min_value=1, max_value=2 * limit + 3), min_size=1))
    return limit, lines, chunks


@settings(max_examples=300, deadline=None)
@given(case=lines_and_chunks())
def test_line_buffer_yields_the_lines_in_order_whatever_the_chunks(
    case: tuple[int, list[bytes], list[int]],
) -> None:
    limit, lines, chunks = case
    data = b"".join(lines)
    buffer = LineBuffer(limit)
    got: list[bytes] = []
    at = 0
    sizes = iter(chunks * (len(data) + 1))
    while at < len(data):
        size = next(sizes)
        buffer.feed(data[at : at + size])
        at += size
        got += buffer.complete_lines()
    assert got == lines
    assert buffer.complete_lines() == []
    assert not buffer.partial


def test_line_buffer_accepts_a_line_of_exactly_the_limit() -> None:
    buffer = LineBuffer(10)
    line = b"123456789\n"
    for byte in line[:-1]:
        buffer.feed(bytes([byte]))
        assert buffer.complete_lines() == []
        assert buffer.partial
    buffer.feed(b"\n")
    assert buffer.complete_lines() == [line]
    assert not buffer.partial


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(min_value=1, max_value=60), at_once=st.booleans())
def test_line_buffer_refuses_a_line_one_byte_over_the_limit(limit: int, at_once: bool) -> None:
    """Refused as soon as ``limit`` bytes hold no newline, before the newline ever arrives."""
    line = b"x" * limit + b"\n"
    buffer = LineBuffer(limit)
    if at_once:
        buffer.feed(line)
        with pytest.raises(FrameError, match="exceeds"):
            buffer.complete_lines()
        return
    for held in range(1, limit):
        buffer.feed(b"x")
        assert buffer.complete_lines() == [], held
        assert buffer.partial
    buffer.feed(b"x")  # limit bytes, no newline yet
    with pytest.raises(FrameError, match="exceeds"):
        buffer.complete_lines()


def test_line_buffer_refuses_a_long_line_after_a_good_one() -> None:
    buffer = LineBuffer(8)
    buffer.feed(b"ok\n" + b"y" * 8)
    assert buffer.complete_lines() == [b"ok\n"]
    with pytest.raises(FrameError):
        buffer.complete_lines()


def test_line_buffer_at_the_real_limit() -> None:
    """The node's buffer takes the largest sealed frame and refuses one byte more."""
    node, client = connect(KEY)
    line = client.send(largest_frame())
    buffer = LineBuffer(MAX_LINE_BYTES)
    buffer.feed(line)
    assert [node.receive(line) for line in buffer.complete_lines()] == [
        decode_frame(largest_frame())
    ]
    buffer.feed(b" " + line)
    with pytest.raises(FrameError):
        buffer.complete_lines()


@pytest.mark.parametrize("size", [0, 1, 32, 64, 65, 200])
def test_a_seal_is_the_hmac_sha256_of_direction_nonce_count_and_frame(size: int) -> None:
    """The seal keys SHA-256 once per secret (RFC 2104 by hand): it must stay the HMAC
    the standard library computes, for a secret of any length."""
    key = bytes(range(size % 256)) * (size // 256 + 1)
    key = key[:size]
    nonce = "ab" * (NONCE_HEX // 2)
    seal = Seal(key, nonce, TO_NODE)
    for count, frame in enumerate([PING, encode_frame("NEW", {"text": "hi"}), PING]):
        head = TO_NODE + nonce.encode() + count.to_bytes(8, "big")
        body = frame.removesuffix(b"\n")
        mac = hmac.new(key, head + body, hashlib.sha256).hexdigest().encode()
        assert seal.seal(frame) == body + b" #" + mac + b"\n"
