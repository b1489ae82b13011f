"""The frame codec and payload validators of ``gossip.protocol``, with no I/O."""

from __future__ import annotations

import io
import json
import math
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.protocol import (
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    Copy,
    Frame,
    FrameError,
    MessageView,
    address_fields,
    decode_frame,
    encode_frame,
    encoded_row,
    field,
    message_row,
    message_text,
    messages_frames,
    messages_of,
    path_field,
    positive_int,
    read_frame,
    relay_fields,
    relay_frame,
    relays_fields,
    relays_frames,
    text_problem,
    unawaited,
)
from gossip.protocol import _relay_fields_checked as relay_fields_checked

# Frame overhead of ``/X {"t":"..."}\n`` around the text: 12 bytes.
OVERHEAD = len(b'/X {"t":""}\n')


def frame_of_size(size: int) -> bytes:
    """A valid one-line frame of exactly ``size`` bytes, newline included."""
    return b'/X {"t":"' + b"a" * (size - OVERHEAD) + b'"}\n'


# Encoding and decoding


def test_encode_frame_exact_bytes() -> None:
    assert encode_frame("NEW", {"text": "hé", "relays": 2}) == (
        '/NEW {"text":"hé","relays":2}\n'.encode()
    )


def test_encode_frame_without_payload_sends_empty_object() -> None:
    assert encode_frame("PING") == b"/PING {}\n"
    assert encode_frame("PING", {}) == b"/PING {}\n"


def test_round_trip_simple() -> None:
    payload = {"id": "abc", "text": "line one\nline two ➜", "path": [1, 8, 10], "sent": 1.5}
    assert decode_frame(encode_frame("RELAY", payload)) == Frame("RELAY", payload)


def test_decode_without_newline_and_with_crlf() -> None:
    assert decode_frame(b'/OK {"a":1}') == Frame("OK", {"a": 1})
    assert decode_frame(b'/OK {"a":1}\r\n') == Frame("OK", {"a": 1})


@pytest.mark.parametrize("line", [b"/PING", b"/PING\n", b"/PING \n", b"/PING    \n"])
def test_decode_bare_command_has_empty_payload(line: bytes) -> None:
    assert decode_frame(line) == Frame("PING", {})


@pytest.mark.parametrize("command", ["new", "New", "NEW1", "NE W", "", "NEW!"])
def test_encode_refuses_bad_command(command: str) -> None:
    with pytest.raises(FrameError, match="upper-case"):
        encode_frame(command, {})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"PING {}\n", "must start with /COMMAND"),
        (b"\n", "must start with /COMMAND"),
        (b"/ping {}\n", "upper-case letters"),
        (b"/Ping {}\n", "upper-case letters"),
        (b"/ {}\n", "upper-case letters"),
        (b"/P1NG {}\n", "upper-case letters"),
        ("/NÉW {}\n".encode(), "upper-case letters"),
        (b"/NEW [1, 2]\n", "must be a JSON object"),
        (b'/NEW "text"\n', "must be a JSON object"),
        (b"/NEW 3\n", "must be a JSON object"),
        (b"/NEW null\n", "must be a JSON object"),
        (b"/NEW {not json}\n", "not valid JSON"),
        (b'/NEW {"a":1} trailing\n', "not valid JSON"),
        (b"/NEW \xff\xfe\n", "not valid UTF-8"),
        (b"/\xc3\n", "not valid UTF-8"),
    ],
)
def test_decode_refuses(line: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_frame(line)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_decode_refuses_nan_and_infinity(constant: str) -> None:
    with pytest.raises(FrameError, match="not valid JSON"):
        decode_frame(f'/RELAY {{"sent":{constant}}}\n'.encode())


TOO_LARGE = [b"1e999", b"-1E400", b"1" + b"0" * 400 + b".0", b"1" + b"0" * 400]
"""Numbers no float holds: a node could store one and never encode it again."""


@pytest.mark.parametrize("number", TOO_LARGE)
@pytest.mark.parametrize("command", [b"NEW", b"RELAY", b"COPY", b"MSGS"])
def test_decode_refuses_a_number_too_large_for_a_float(number: bytes, command: bytes) -> None:
    with pytest.raises(FrameError, match="not valid JSON"):
        decode_frame(b"/" + command + b' {"sent":' + number + b"}\n")


@pytest.mark.parametrize(
    "number", [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 30]
)
def test_a_whole_number_beyond_64_bits_is_refused_where_one_is_wanted(number: bytes) -> None:
    line = b'/RELAY {"id":"a","text":"t","path":[],"relays":' + number + b',"sent":1.0}'
    with pytest.raises(FrameError, match="relays"):
        relay_fields(decode_frame(line).payload)


@pytest.mark.parametrize("sent", [math.inf, -math.inf, math.nan, 10**400, 1e300, 1e10 + 1, -1.0])
def test_a_copy_refuses_a_sent_time_no_float_holds(sent: float) -> None:
    """Nor one no clock can show (1e300 printed as +-1000…000 ms after sending)."""
    payload = {"id": "a", "text": "t", "path": [], "relays": 1, "sent": sent}
    with pytest.raises(FrameError, match="sent"):
        relay_fields(payload)


def test_decode_refuses_deep_nesting() -> None:
    with pytest.raises(FrameError, match="not valid JSON"):
        decode_frame(b'/NEW {"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}\n")


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        encode_frame("RELAY", {"sent": float("nan")})


# Size limits


def test_encode_exactly_at_limit_and_one_over() -> None:
    at_limit = encode_frame("X", {"t": "a" * (MAX_FRAME_BYTES - OVERHEAD)})
    assert len(at_limit) == MAX_FRAME_BYTES
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame("X", {"t": "a" * (MAX_FRAME_BYTES - OVERHEAD + 1)})


def test_encode_limit_counts_utf8_bytes_not_characters() -> None:
    # "é" is two bytes: half as many characters already reach the limit.
    chars = (MAX_FRAME_BYTES - OVERHEAD) // 2 + 1
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame("X", {"t": "é" * chars})


def test_decode_exactly_at_limit_and_one_over() -> None:
    line = frame_of_size(MAX_FRAME_BYTES)
    assert len(line) == MAX_FRAME_BYTES
    assert decode_frame(line).payload["t"] == "a" * (MAX_FRAME_BYTES - OVERHEAD)
    with pytest.raises(FrameError, match="exceeds"):
        decode_frame(frame_of_size(MAX_FRAME_BYTES + 1))


# read_frame on a stream


def test_read_frame_clean_eof_is_none() -> None:
    assert read_frame(io.BytesIO(b"")) is None


def test_read_frame_reads_frames_in_order_then_none() -> None:
    stream = io.BytesIO(encode_frame("PING") + encode_frame("OK", {"node": 3}))
    assert read_frame(stream) == Frame("PING", {})
    assert read_frame(stream) == Frame("OK", {"node": 3})
    assert read_frame(stream) is None


def test_read_frame_truncated_line() -> None:
    stream = io.BytesIO(encode_frame("PING") + b'/OK {"node":')
    assert read_frame(stream) == Frame("PING", {})
    with pytest.raises(FrameError, match="middle of a frame"):
        read_frame(stream)


def test_read_frame_at_limit() -> None:
    stream = io.BytesIO(frame_of_size(MAX_FRAME_BYTES) + b"/PING\n")
    assert read_frame(stream) == Frame("X", {"t": "a" * (MAX_FRAME_BYTES - OVERHEAD)})
    assert read_frame(stream) == Frame("PING", {})


def test_read_frame_oversize_reads_at_most_limit_plus_one() -> None:
    stream = io.BytesIO(frame_of_size(MAX_FRAME_BYTES + 1) + b"a" * 100_000)
    with pytest.raises(FrameError, match="exceeds"):
        read_frame(stream)
    assert stream.tell() == MAX_FRAME_BYTES + 1


def test_read_frame_endless_line_without_newline() -> None:
    stream = io.BytesIO(b"/" + b"A" * (3 * MAX_FRAME_BYTES))
    with pytest.raises(FrameError, match="exceeds"):
        read_frame(stream)
    assert stream.tell() == MAX_FRAME_BYTES + 1


# Property tests

commands = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=12)
json_values = st.one_of(st.text(max_size=40), st.integers(min_value=-(2**63), max_value=2**64 - 1))
"""Whole numbers within 64 bits: a larger one is read as a float (below)."""
payloads = st.dictionaries(st.text(max_size=20), json_values, max_size=8)


def frame_like_bytes() -> st.SearchStrategy[bytes]:
    """Raw bytes, and bytes that start like a frame so the parser gets past the prefix."""
    body = st.one_of(
        st.binary(max_size=200),
        st.text(alphabet='{}[]":,0123456789.eE+-truefalsnNaIiy \\u', max_size=60).map(str.encode),
    )
    framed = st.tuples(commands.map(str.encode), st.sampled_from([b" ", b""]), body).map(
        lambda parts: b"/" + parts[0] + parts[1] + parts[2]
    )
    return st.one_of(st.binary(max_size=300), framed)


@settings(max_examples=300, deadline=None)
@given(frame_like_bytes())
def test_decode_any_bytes_gives_frame_or_frame_error(line: bytes) -> None:
    try:
        frame = decode_frame(line)
    except FrameError:
        return
    assert isinstance(frame, Frame)
    assert frame.command.isascii() and frame.command.isupper() and frame.command.isalpha()
    assert isinstance(frame.payload, dict)


@settings(max_examples=200, deadline=None)
@given(commands, payloads)
def test_encode_decode_round_trip(command: str, payload: dict[str, Any]) -> None:
    data = encode_frame(command, payload)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert decode_frame(data) == Frame(command, payload)
    assert read_frame(io.BytesIO(data + data)) == Frame(command, payload)


# Field validation


def test_field_returns_value_of_right_kind() -> None:
    assert field({"a": "x"}, "a", str) == "x"
    assert field({"a": 3}, "a", int) == 3
    assert field({"a": True}, "a", bool) is True
    assert field({"a": [1]}, "a", list) == [1]
    assert field({"a": 2.5}, "a", int | float) == 2.5
    assert field({"a": 2}, "a", int | float) == 2


@pytest.mark.parametrize(
    ("payload", "kind", "message"),
    [
        ({}, str, "field 'a' must be str"),
        ({"a": None}, str, "field 'a' must be str"),
        ({"a": 1}, str, "field 'a' must be str"),
        ({"a": "1"}, int, "field 'a' must be int"),
        ({"a": True}, int, "field 'a' must be int"),
        ({"a": False}, int, "field 'a' must be int"),
        ({"a": 1}, bool, "field 'a' must be bool"),
        ({"a": True}, int | float, "field 'a' must be a number"),
        ({"a": "1.5"}, int | float, "field 'a' must be a number"),
    ],
)
def test_field_refuses(payload: dict[str, Any], kind: Any, message: str) -> None:
    with pytest.raises(FrameError) as caught:
        field(payload, "a", kind)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [1, 5, 10])
def test_positive_int_in_range(value: int) -> None:
    assert positive_int({"n": value}, "n", 10) == value


@pytest.mark.parametrize("value", [0, -1, 11, True, 1.0, "3", None])
def test_positive_int_refuses(value: Any) -> None:
    with pytest.raises(FrameError, match="'n'"):
        positive_int({"n": value}, "n", 10)


def test_positive_int_range_message() -> None:
    with pytest.raises(FrameError) as caught:
        positive_int({"relays": 11}, "relays", 10)
    assert str(caught.value) == "field 'relays' must be between 1 and 10"


def test_message_text_limits() -> None:
    assert message_text({"text": "Apple"}) == "Apple"
    assert message_text({"text": "a" * MAX_MESSAGE_BYTES}) == "a" * MAX_MESSAGE_BYTES
    with pytest.raises(FrameError) as caught:
        message_text({"text": "a" * (MAX_MESSAGE_BYTES + 1)})
    assert str(caught.value) == (
        f"message is {MAX_MESSAGE_BYTES + 1} bytes; the limit is {MAX_MESSAGE_BYTES} bytes"
    )


def test_message_text_counts_bytes() -> None:
    text = "é" * (MAX_MESSAGE_BYTES // 2)
    assert message_text({"text": text}) == text
    with pytest.raises(FrameError, match=f"message is {MAX_MESSAGE_BYTES + 2} bytes"):
        message_text({"text": text + "é"})


@pytest.mark.parametrize(
    "payload", [{}, {"text": ""}, {"text": "  \t\n"}, {"text": 3}, {"text": None}]
)
def test_message_text_refuses(payload: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        message_text(payload)


@pytest.mark.parametrize("text", ["", " ", "\t\n", "hi", " hi ", "é" * 10, "x" * 100_000])
def test_the_node_takes_exactly_what_the_cli_may_send(text: str) -> None:
    try:
        message_text({"text": text})
        taken = True
    except FrameError:
        taken = False
    assert taken == (text_problem(text) is None)


def test_a_lone_surrogate_is_refused() -> None:
    # JSON can write a lone surrogate; such text could never be encoded again to relay it.
    with pytest.raises(FrameError, match="not valid JSON"):
        decode_frame(b'/NEW {"text":"\\ud800","relays":1}\n')
    with pytest.raises(FrameError):
        message_text({"text": "\ud800", "relays": 1})


def test_path_field_valid() -> None:
    assert path_field({"path": [1, 8, 10]}) == (1, 8, 10)
    assert path_field({"path": [4]}) == (4,)


@pytest.mark.parametrize(
    "path",
    [None, "1,2", [], [0], [-1], [1, True], [1.0], [1, "2"], [[1]], (1, 2)],
)
def test_path_field_refuses(path: Any) -> None:
    with pytest.raises(FrameError, match="'path'"):
        path_field({"path": path})


def test_path_field_refuses_repeats() -> None:
    with pytest.raises(FrameError, match="visits a node twice"):
        path_field({"path": [1, 2, 1]})


def test_address_fields_valid() -> None:
    payload = {"node": 9, "host": "127.0.0.1", "port": 7009}
    assert address_fields(payload) == (9, ("127.0.0.1", 7009))
    assert address_fields({"node": 1, "host": "h", "port": 65535}) == (1, ("h", 65535))


@pytest.mark.parametrize(
    "payload",
    [
        {"node": True, "host": "h", "port": 7000},
        {"node": 0, "host": "h", "port": 7000},
        {"node": 1 << 32, "host": "h", "port": 7000},
        {"node": 1, "host": 7, "port": 7000},
        {"node": 1, "port": 7000},
        {"node": 1, "host": "h", "port": 0},
        {"node": 1, "host": "h", "port": 65536},
        {"node": 1, "host": "h", "port": True},
        {"node": 1, "host": "h", "port": "7000"},
    ],
)
def test_address_fields_refuses(payload: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        address_fields(payload)


# /MSG payloads


def sample_view() -> MessageView:
    copies = (Copy((1,), 100.0), Copy((1, 8, 10), 100.25), Copy((1, 2), 100.5))
    return MessageView("abc", "Apple\npie", 99.5, copies, True)


def test_message_row_shape() -> None:
    assert json.loads(encoded_row(sample_view())) == [
        "abc",
        "Apple\npie",
        99.5,
        True,
        [[[1], 100.0], [[1, 8, 10], 100.25], [[1, 2], 100.5]],
    ]


def test_message_row_round_trip_through_a_frame() -> None:
    view = sample_view()
    frame = decode_frame(encode_frame("MSGS", {"messages": [message_row(view)]}))
    assert messages_of(frame.payload) == [view]


def test_messages_of_converts_int_times_to_float() -> None:
    view = messages_of({"messages": [["x", "t", 5, False, [[[2, 3], 7]]]]})[0]
    assert view == MessageView("x", "t", 5.0, (Copy((2, 3), 7.0),), False)
    assert isinstance(view.sent, float) and isinstance(view.copies[0].arrived, float)


def good_row() -> list[Any]:
    return ["abc", "Apple", 99.5, True, [[[1], 100.0], [[1, 8, 10], 100.25]]]


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (4, [[[1], "now"]]),
        (4, [[[1]]]),
        (4, [[[1], 1.0, 2.0]]),
        (4, [[[], 1.0]]),
        (4, [[[1, 1], 1.0]]),
        (4, [[[1, 0], 1.0]]),
        (4, [[[1, -2], 1.0]]),
        (4, [[[1, True], 1.0]]),
        (4, [[[1, 2.0], 1.0]]),
        (4, [[[1, "2"], 1.0]]),
        (4, [[[1, None], 1.0]]),
        (4, [[[1, [2]], 1.0]]),
        (4, [[[1, {"2": 2}], 1.0]]),
        (4, [["12", 1.0]]),
        (4, [[[1], True]]),
        (4, [None]),
        (4, []),
        (4, "none"),
        (0, 3),
        (1, None),
        (2, "yesterday"),
        (2, True),
        (3, 1),
        (5, "one field too many"),
    ],
)
def test_messages_of_refuses(index: int, value: Any) -> None:
    """Any bad field of any listed message refuses the frame, wherever the message is."""
    bad = good_row()
    if index < len(bad):
        bad[index] = value
    else:
        bad.append(value)
    assert len(messages_of({"messages": [good_row(), good_row()]})) == 2
    for listing in ([bad], [good_row(), bad], [bad, good_row()]):
        with pytest.raises(FrameError):
            messages_of({"messages": listing})


def test_copies_that_took_the_same_walk_share_it() -> None:
    rows = [
        ["a", "t", 1.0, True, [[[1, 8, 10], 2.0], [[3], 2.5]]],
        ["b", "t", 1.0, True, [[[1, 8, 10], 3.0]]],
    ]
    a, b = messages_of({"messages": rows})
    assert a.copies[0].path == (1, 8, 10) and a.copies[0].path is b.copies[0].path
    assert a.copies[1].path == (3,)


def test_a_walk_of_other_numbers_equal_to_a_listed_one_is_read_as_that_one() -> None:
    """A walk is known by its value: after ``[1, 2]``, ``[1.0, 2]`` is that walk, whole
    numbers and all; first, it is refused."""
    good, odd = [[[1, 2], 2.0]], [[[1.0, 2], 3.0]]
    a, b = messages_of({"messages": [["a", "t", 1.0, True, good], ["b", "t", 1.0, True, odd]]})
    assert list(map(type, b.copies[0].path)) == [int, int] and b.copies[0].path is a.copies[0].path
    with pytest.raises(FrameError, match="node numbers"):
        messages_of({"messages": [["b", "t", 1.0, True, odd], ["a", "t", 1.0, True, good]]})


@pytest.mark.parametrize("payload", [{}, {"messages": "rows"}, {"messages": [["too", "short"]]}])
def test_messages_of_refuses_a_listing_that_is_not_rows(payload: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        messages_of(payload)


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan, 10**400])
@pytest.mark.parametrize("where", ["sent", "arrived"])
def test_a_listing_refuses_a_time_no_float_holds(number: float, where: str) -> None:
    sent, arrived = (number, 2.0) if where == "sent" else (1.0, number)
    with pytest.raises(FrameError, match="finite"):
        messages_of({"messages": [["a", "t", sent, True, [[[1], arrived]]]]})


@settings(max_examples=300, deadline=None)
@given(
    message_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(
        lambda t: t.strip() != ""
    ),
    path=st.lists(st.integers(1, 1 << 31), unique=True, max_size=12).map(tuple),
    relays=st.integers(1, 10),
    sent=st.floats(0, 4e9, allow_nan=False, allow_infinity=False),
    later=st.booleans(),
)
def test_a_relay_frame_written_out_reads_back_as_the_encoder_would_write_it(
    message_id: str, text: str, path: tuple[int, ...], relays: int, sent: float, later: bool
) -> None:
    """``relay_frame`` writes the JSON itself; it must say what ``encode_frame`` says."""
    frame = relay_frame(message_id, text, path, relays, sent, later)
    payload = {"id": message_id, "text": text, "path": list(path), "relays": relays, "sent": sent}
    if later:
        payload["later"] = True
    assert decode_frame(frame) == decode_frame(encode_frame("RELAY", payload))
    assert relay_fields(decode_frame(frame).payload) == (message_id, text, path, relays, sent)
    assert frame.count(b"\n") == 1 and frame.endswith(b"\n")


def test_a_relay_frame_too_large_is_refused() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        relay_frame("a", "\x01" * MAX_MESSAGE_BYTES * 2, (1,), 1, 1.0, False)


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 1 << 33),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70),
    st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True),
    st.lists(st.one_of(st.integers(-2, 40), st.booleans(), st.floats(0, 3)), max_size=8),
)


@settings(max_examples=600, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": ANY_VALUE,
            "text": st.one_of(ANY_VALUE, st.text(min_size=1, max_size=20)),
            "path": st.one_of(ANY_VALUE, st.lists(st.integers(1, 40), max_size=6)),
            "relays": st.one_of(ANY_VALUE, st.integers(0, 11)),
            "sent": ANY_VALUE,
        },
    )
)
def test_relay_fields_says_what_the_field_by_field_checks_say(payload: dict[str, Any]) -> None:
    """The one-test path for copies as nodes write them takes exactly what the detailed
    checks take, and refuses the rest with their words."""

    def outcome(read: Any) -> Any:
        try:
            return read(payload)
        except FrameError as exc:
            return ("refused", str(exc))

    assert outcome(relay_fields) == outcome(relay_fields_checked)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, MAX_MESSAGE_BYTES), min_size=0, max_size=30),
    later=st.booleans(),
)
def test_relays_frames_carry_every_copy_in_order_within_the_frame_limit(
    sizes: list[int], later: bool
) -> None:
    copies = [
        (f"m{n}", "x" * size, (n + 1, 50), 1, float(n), later) for n, size in enumerate(sizes)
    ]
    frames = relays_frames([relay_frame(*copy) for copy in copies])
    if len(copies) == 1:
        assert frames == [relay_frame(*copies[0])], "a lone copy stays a /RELAY"
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in frames)
    carried = []
    for frame in map(decode_frame, frames):
        if frame.command == "RELAY":
            carried.append(relay_fields(frame.payload))
            assert unawaited(frame) is later
        else:
            assert frame.command == "RELAYS" and len(frame.payload["copies"]) > 1
            carried += relays_fields(frame.payload)
            assert unawaited(frame) is later
    assert carried == [copy[:5] for copy in copies]
    if sum(sizes) < MAX_FRAME_BYTES // 2:
        assert len(frames) <= 1, "what fits in one frame goes in one"


@pytest.mark.parametrize(
    "copies", [[], "x", ["x"], [{"id": "a"}], [{"id": "a", "text": "t", "path": [], "relays": 0}]]
)
def test_relays_fields_refuses_a_frame_that_is_not_copies(copies: Any) -> None:
    with pytest.raises(FrameError):
        relays_fields({"copies": copies})


def test_a_relays_frame_waits_on_its_answer_unless_every_copy_was_passed_on() -> None:
    copy = {"id": "a", "text": "t", "path": [1], "relays": 1, "sent": 0.0}
    assert unawaited(Frame("RELAYS", {"copies": [{**copy, "later": True}] * 2}))
    assert not unawaited(Frame("RELAYS", {"copies": [{**copy, "later": True}, copy]}))
    assert not unawaited(Frame("RELAYS", {"copies": "none"}))


@pytest.mark.parametrize("host", ["a" * 64, "a" * 100 + ".example", "", "bad host", "é.fr", "x/y"])
def test_a_host_no_resolver_takes_is_refused(host: str) -> None:
    """A label over 63 letters raised UnicodeError in a connect, which killed a peer
    connection's writer and leaked a slot."""
    with pytest.raises(FrameError, match="field 'host' must be a host name or an IP address"):
        address_fields({"node": 2, "host": host, "port": 7002})


@pytest.mark.parametrize("host", ["127.0.0.1", "node-3.lab", "gossip_node_1", "::1", "a" * 63])
def test_hosts_and_addresses_are_taken(host: str) -> None:
    assert address_fields({"node": 2, "host": host, "port": 7002}) == (2, (host, 7002))


def test_a_message_whose_walks_outgrow_a_frame_is_listed_with_those_that_fit() -> None:
    """One such message made every read of every node that held it fail."""
    walks = [tuple(range(1_000_000_000 + 600 * k, 1_000_000_600 + 600 * k)) for k in range(20)]
    view = MessageView("m1", "\x01" * 8000, 1.0, tuple(Copy(w, 2.0) for w in walks), False)
    row = encoded_row(view)
    assert len(row) <= MAX_FRAME_BYTES - len(b'/MSGS {"messages":[]}\n')
    (listed,) = messages_of(decode_frame(next(messages_frames([row]))).payload)
    assert 1 <= len(listed.copies) < len(walks)
    assert listed.copies == view.copies[: len(listed.copies)], "the first ones, in order"
    more = view._replace(copies=view.copies[: len(listed.copies) + 1])
    whole = json.dumps(message_row(more), separators=(",", ":"), ensure_ascii=False).encode()
    assert len(whole) > MAX_FRAME_BYTES - len(b'/MSGS {"messages":[]}\n'), "as many as fit"
    small = view._replace(copies=view.copies[:1])
    assert encoded_row(small) == encoded_row(small._replace()), "a row that fits is whole"
