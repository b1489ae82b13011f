"""What the CLI prints: ``gossip.render``'s pure formatting functions."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip import render
from gossip.client import Peer
from gossip.conditions import conditions_from
from gossip.protocol import Copy, MessageView
from gossip.state import NetworkState, NodeEntry
from gossip.status import NodeStatus

# Exactly representable in binary: 125 ms past the second, 125 ms after SENT.
SENT = 1_700_000_000.0
ARRIVED = 1_700_000_000.125


def view(
    text: str,
    *paths: tuple[int, ...],
    sent: float = SENT,
    read: bool = False,
    message_id: str = "m1",
) -> MessageView:
    """A message whose copies arrived one second apart, in the order given."""
    copies = tuple(Copy(path, ARRIVED + i) for i, path in enumerate(paths))
    return MessageView(message_id, text, sent, copies, read)


# Headers and bodies


@pytest.mark.parametrize("which", ["all", "unread", "read"])
@pytest.mark.parametrize(
    ("mode", "wording"),
    [(0, "all"), (1, "shortest"), (2, "longest"), (3, "shortest and longest")],
)
def test_header_wording(which: str, mode: int, wording: str) -> None:
    out = render.messages(4, [view("x", (4,))], which, mode, 0)
    assert out.splitlines()[0] == (
        f"Fetched {which} messages from Gossip-Node-4; showing {wording} path(s):"
    )


def test_one_message_all_paths() -> None:
    out = render.messages(10, [view("Apple", (1, 8, 10), (1, 2, 3, 10))], "all", 0, 0)
    assert out == (
        "Fetched all messages from Gossip-Node-10; showing all path(s):\n"
        "\n"
        "• Apple\n"
        "  ↳ 1 ➜ 8 ➜ 10\n"
        "  ↳ 1 ➜ 2 ➜ 3 ➜ 10"
    )


def test_several_messages_in_order() -> None:
    views = [view("Apple", (1, 8, 10)), view("Pear", (10,), message_id="m2")]
    out = render.messages(10, views, "unread", 1, 0)
    assert out == (
        "Fetched unread messages from Gossip-Node-10; showing shortest path(s):\n"
        "\n"
        "• Apple\n"
        "  ↳ 1 ➜ 8 ➜ 10\n"
        "\n"
        "• Pear\n"
        "  ↳ 10"
    )


@pytest.mark.parametrize(
    ("which", "empty"),
    [("all", "No messages."), ("unread", "No unread messages."), ("read", "No read messages.")],
)
def test_no_messages(which: str, empty: str) -> None:
    assert render.messages(3, [], which, 2, 1) == (
        f"Fetched {which} messages from Gossip-Node-3; showing longest path(s):\n\n{empty}"
    )


def test_multi_line_text_stays_on_its_bullet_line() -> None:
    out = render.messages(2, [view("line one\nline two\n\nend", (1, 2))], "all", 0, 0)
    assert out == (
        "Fetched all messages from Gossip-Node-2; showing all path(s):\n"
        "\n"
        "• line one\\nline two\\n\\nend\n"
        "  ↳ 1 ➜ 2"
    )


# Message texts come from the network: what a terminal would obey is shown escaped

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def obeyed_by_a_terminal(char: str) -> bool:
    """Controls (C0, C1, DEL), bidi controls, line and paragraph separators, surrogates."""
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS


ANY_TEXT = st.text(st.characters(exclude_categories=()), min_size=1)
"""Any code points at all, lone surrogates included (as JSON's \\ud800 can deliver)."""
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1)


@given(ANY_TEXT)
def test_any_text_renders_on_one_line_with_no_control_characters(text: str) -> None:
    out = render.messages(4, [view(text, (1, 4), (1, 2, 4))], "all", 0, 2)
    lines = out.split("\n")
    assert len(lines) == 5, "one header, one blank, one bullet, two paths"
    assert lines[2].startswith("• ")
    assert not [c for c in out if c != "\n" and obeyed_by_a_terminal(c)]
    out.encode("utf-8")  # no lone surrogate left to print


@given(SAFE_TEXT)
def test_printable_text_is_shown_as_it_is(text: str) -> None:
    out = render.messages(4, [view(text, (1, 4))], "all", 0, 0)
    assert out.split("\n")[2] == f"• {text}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[Hgot you", "\\x1b[2J\\x1b[Hgot you"),
        ("bell\x07, null\x00, tab\t, cr\r", "bell\\x07, null\\x00, tab\\t, cr\\r"),
        ("del\x7f, csi\x9b, nel\x85", "del\\x7f, csi\\x9b, nel\\x85"),
        ("abc\u202edcba\u202c", "abc\\u202edcba\\u202c"),
        ("\u2066isolate\u2069 \u200fmark", "\\u2066isolate\\u2069 \\u200fmark"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("lone \ud800 half", "lone \\ud800 half"),
        ("back\\slash stays", "back\\slash stays"),
    ],
)
def test_controls_are_shown_as_python_escapes(text: str, shown: str) -> None:
    out = render.messages(1, [view(text, (1,))], "all", 0, 0)
    assert out.split("\n")[2] == f"• {shown}"


@pytest.mark.parametrize(
    "text",
    [
        "Hello World",
        "café, naïve, Ångström",
        "東京で会いましょう",
        "emoji 👋🏽 family 👨\u200d👩\u200d👧",  # joined by zero-width joiners
        "flag 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # tag characters
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, zero-width non-joiner
        "no-break\u00a0space and ideographic\u3000space",
    ],
)
def test_ordinary_unicode_is_untouched(text: str) -> None:
    assert render.printable(text) == text


@given(ANY_TEXT)
def test_json_keeps_the_exact_text(text: str) -> None:
    data = render.view_json(view(text, (1, 2)))
    assert data["text"] == text
    assert json.loads(json.dumps(data, ensure_ascii=False))["text"] == text


def test_modes_pick_paths() -> None:
    message = view("m", (1, 2, 3, 9), (1, 9), (1, 5, 9))
    lines = {
        mode: [line for line in render.messages(9, [message], "all", mode, 0).splitlines()[3:]]
        for mode in range(4)
    }
    assert lines[0] == ["  ↳ 1 ➜ 2 ➜ 3 ➜ 9", "  ↳ 1 ➜ 9", "  ↳ 1 ➜ 5 ➜ 9"]
    assert lines[1] == ["  ↳ 1 ➜ 9"]
    assert lines[2] == ["  ↳ 1 ➜ 2 ➜ 3 ➜ 9"]
    # Both, in the order they arrived.
    assert lines[3] == ["  ↳ 1 ➜ 2 ➜ 3 ➜ 9", "  ↳ 1 ➜ 9"]


# Times


def test_time_suffix_levels() -> None:
    moment = datetime.fromtimestamp(ARRIVED)
    assert moment.microsecond == 125_000
    hms = f"{moment:%H:%M:%S}"
    day = f"{moment:%Y-%m-%d}"
    expected = {
        0: "",
        1: f"  at {hms}",
        2: f"  at {hms}.125",
        3: f"  at {day} {hms}.125000 (+125.000 ms after sending)",
    }
    for level, suffix in expected.items():
        out = render.messages(8, [view("x", (1, 8))], "all", 0, level)
        assert out.splitlines()[-1] == "  ↳ 1 ➜ 8" + suffix, level


def test_time_level_2_pads_milliseconds() -> None:
    arrived = 1_700_000_000.0 + 0.0078125  # 7.8125 ms, exact in binary
    copy = Copy((1,), arrived)
    moment = datetime.fromtimestamp(arrived)
    assert render.format_time(copy, SENT, 2) == f"  at {moment:%H:%M:%S}.007"
    assert render.format_time(copy, SENT, 3) == (
        f"  at {moment:%Y-%m-%d %H:%M:%S}.007812 (+7.812 ms after sending)"
    )


def test_time_level_3_delay_of_each_copy() -> None:
    message = view("x", (1,), (2, 1), sent=ARRIVED)
    lines = render.messages(1, [message], "all", 0, 3).splitlines()
    assert lines[-2].endswith("(+0.000 ms after sending)")
    assert lines[-1].endswith("(+1000.000 ms after sending)")


# select_paths


def copies(*paths: tuple[int, ...]) -> tuple[Copy, ...]:
    return tuple(Copy(path, float(i)) for i, path in enumerate(paths))


def test_select_paths_all_and_empty() -> None:
    some = copies((1, 2), (1, 3, 2))
    assert render.select_paths(some, 0) == list(some)
    for mode in range(4):
        assert render.select_paths((), mode) == []


def test_select_paths_ties_first_arrived_wins() -> None:
    some = copies((1, 2, 9), (1, 9), (1, 3, 9), (1, 4, 9), (1, 5, 6, 9), (1, 7, 8, 9))
    assert render.select_paths(some, 1) == [some[1]]
    assert render.select_paths(some, 2) == [some[4]]
    assert render.select_paths(some, 3) == [some[1], some[4]]


def test_select_paths_all_same_length() -> None:
    some = copies((1, 2, 9), (1, 3, 9), (1, 4, 9))
    assert render.select_paths(some, 1) == [some[0]]
    assert render.select_paths(some, 2) == [some[0]]
    assert render.select_paths(some, 3) == [some[0]]


def test_select_paths_mode_3_single_copy_once() -> None:
    one = copies((4,))
    assert render.select_paths(one, 3) == [one[0]]
    out = render.messages(4, [view("x", (4,))], "all", 3, 0)
    assert out.count("↳") == 1


def test_select_paths_mode_3_keeps_arrival_order() -> None:
    some = copies((1, 2, 3, 9), (1, 9))
    assert render.select_paths(some, 3) == [some[0], some[1]]


# Peers, removal, start


def test_peers_listed() -> None:
    peer_list = [Peer(9, "127.0.0.1", 7009), Peer(12, "10.0.0.2", 7012)]
    assert render.peers(4, peer_list) == (
        "Gossip-Node-4 has peers:\n"
        "* Gossip-Node-9 (127.0.0.1:7009)\n"
        "* Gossip-Node-12 (10.0.0.2:7012)"
    )


def test_single_peer() -> None:
    assert render.peers(4, [Peer(9, "127.0.0.1", 7009)]) == (
        "Gossip-Node-4 has peers:\n* Gossip-Node-9 (127.0.0.1:7009)"
    )


def test_no_peers() -> None:
    assert render.peers(4, []) == "Gossip-Node-4 has no peers."


def test_node_name() -> None:
    assert render.node_name(16) == "Gossip-Node-16"


def test_removed_dead() -> None:
    assert render.removed(3, {"dead": True}) == (
        "Removed Gossip-Node-3, which was already down.\n"
        "Its peers had already noticed and healed around it."
    )
    result = {"dead": True, "former_peers": [2, 4], "links": [[2, 4]]}
    assert render.removed(3, result) == (
        "Removed Gossip-Node-3, which was already down.\nIts former peers: 2, 4.\nNew links: 2 ⟷ 4."
    )
    # healed around it, then new links: which was it?
    assert render.removed(3, {"dead": True, "links": [[2, 4]]}).splitlines()[1:] == [
        "Its peers had already noticed and dropped it.",
        "New links: 2 ⟷ 4.",
    ]


def test_removed_with_links() -> None:
    result = {"node": 3, "former_peers": [2, 4], "links": [[2, 4]]}
    assert render.removed(3, result) == (
        "Removed Gossip-Node-3.\nIts former peers: 2, 4.\nNew links: 2 ⟷ 4."
    )


def test_removed_with_several_links() -> None:
    result = {"former_peers": [2, 4, 7], "links": [[2, 4], [4, 7]]}
    assert render.removed(3, result) == (
        "Removed Gossip-Node-3.\nIts former peers: 2, 4, 7.\nNew links: 2 ⟷ 4, 4 ⟷ 7."
    )


def test_removed_without_links_needed() -> None:
    result = {"former_peers": [2, 4], "links": [], "parts": 1}
    assert render.removed(3, result) == (
        "Removed Gossip-Node-3.\n"
        "Its former peers: 2, 4.\n"
        "No new links were needed: the rest of the network is still one piece."
    )


def test_removed_with_traded_links_and_parts_left_apart() -> None:
    result = {"former_peers": [1, 4], "links": [[1, 10]], "given_up": [[1, 5]], "parts": 1}
    assert render.removed(6, result).splitlines()[2:] == [
        "New links: 1 ⟷ 10.",
        "Links traded for them, to keep the network in one piece: 1 ⟷ 5.",
    ]
    apart = {"former_peers": [1, 2], "links": [], "parts": 2}
    assert render.removed(6, apart).splitlines()[-1] == (
        "The live nodes are still in 2 parts: see gossip status (the supervisor joins them "
        "within seconds, where max-peers allows)."
    )


def test_removed_with_one_or_no_former_peer() -> None:
    assert render.removed(3, {"former_peers": [2], "links": []}) == (
        "Removed Gossip-Node-3.\nIts former peers: 2."
    )
    assert render.removed(3, {"former_peers": [], "links": []}) == "Removed Gossip-Node-3."
    assert render.removed(3, {}) == "Removed Gossip-Node-3."


def test_started() -> None:
    nodes = {
        10: NodeEntry(10, "127.0.0.1", 7010, [1, 9]),
        1: NodeEntry(1, "127.0.0.1", 7001, [2, 10]),
        2: NodeEntry(2, "127.0.0.1", 7002, []),
    }
    network = NetworkState(7000, 3, "circular", nodes)
    assert render.started(network) == (
        "Started 3 nodes on ports 7001-7010: circular, at most 3 peers each.\n"
        "* Gossip-Node-1 (127.0.0.1:7001)   peers: 2, 10\n"
        "* Gossip-Node-2 (127.0.0.1:7002)   peers: none\n"
        "* Gossip-Node-10 (127.0.0.1:7010)  peers: 1, 9"
    )
    network.max_peers = 1
    assert render.started(network).startswith(
        "Started 3 nodes on ports 7001-7010: circular, at most 1 peer each.\n"
    )


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-3, "0s"), (0, "0s"), (59.9, "59s"), (60, "1m 00s"), (185, "3m 05s"), (7830, "2h 10m")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert render.duration(seconds) == shown


def _status_rows() -> tuple[NetworkState, list[NodeStatus]]:
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in (1, 2, 3, 10)}
    nodes[3].removed = True
    net = NetworkState(7000, 3, "circular", nodes)
    up = {"peers": [2, 10], "messages": 4, "unread": 1, "started": 1000.0}
    rows = [
        NodeStatus(nodes[1], "up", up),
        NodeStatus(nodes[2], "down", {}),
        NodeStatus(nodes[3], "removed", {}),
        NodeStatus(nodes[10], "up", dict(up, peers=[1], started=1130.0)),
    ]
    return net, rows


def test_status_table_aligns_columns_and_dashes_nodes_that_are_not_up() -> None:
    net, rows = _status_rows()
    assert render.status(net, rows, [[1, 10]], now=1190.0).splitlines() == [
        "Network on ports 7001-7010: circular, at most 3 peers each; 2 of 4 nodes up.",
        "",
        "Node  State    Peers  Messages  Unread  Port  Uptime",
        "1     up       2, 10  4         1       7001  3m 10s",
        "2     down     -      -         -       7002  -",
        "3     removed  -      -         -       7003  -",
        "10    up       1      4         1       7010  1m 00s",
        "",
        "The 2 live nodes are connected by 1 link.",  # node 1's link to node 2, down, is none
    ]


def test_status_counts_only_links_between_live_nodes() -> None:
    """A node that is down or paused still shows in its peers' lists until they drop it:
    3 live nodes all linked to dead ones have no link among them to count."""
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in range(1, 8)}
    net = NetworkState(7000, 3, "circular", nodes)
    up = {"messages": 0, "unread": 0, "started": 1000.0}
    rows = [NodeStatus(nodes[n], "up", dict(up, peers=[n + 3, n + 4, 7])) for n in (1, 2, 3)]
    rows += [NodeStatus(nodes[n], "down", {}) for n in (4, 5, 6)]
    rows.append(NodeStatus(nodes[7], "paused", {}))
    last = render.status(net, rows, [[1, 2, 3]], now=1190.0).splitlines()[-1]
    assert last == "The 3 live nodes are connected by 0 links."
    rows[0].report["peers"] = [2, 4, 7]
    rows[1].report["peers"] = [1, 5, 7]
    last = render.status(net, rows, [[1, 2, 3]], now=1190.0).splitlines()[-1]
    assert last == "The 3 live nodes are connected by 1 link."


def test_status_names_the_parts_of_a_split_network() -> None:
    net, rows = _status_rows()
    text = render.status(net, rows, [[1, 2, 3], [5], [7, 8]], now=1190.0)
    assert text.splitlines()[-1] == "The live nodes are split into 3 parts: 1-3; 5; 7-8."


def test_rejoined_says_what_the_node_brought_back() -> None:
    entry = NodeEntry(5, "127.0.0.1", 7005, [])
    assert render.rejoined(entry, {"messages": 1, "peers": [4, 6]}, restarted=True) == (
        "Restarted Gossip-Node-5 (127.0.0.1:7005) with the 1 message it held; peers: 4, 6.\n"
        "It catches up on the messages it missed from its peers within seconds."
    )
    caught_up = {"messages": 4, "loaded": 1, "peers": [4, 6]}  # read once catch-up began
    assert "with the 1 message it held;" in render.rejoined(entry, caught_up, restarted=True)
    log = Path("/run/node-5.db-wal.corrupt-7")
    assert (
        "with the 1 message it held outside its store's log, which was damaged and is kept as "
        "/run/node-5.db-wal.corrupt-7;"
    ) in render.rejoined(entry, caught_up, restarted=True, damaged=log)
    assert render.rejoined(entry, {"messages": 0, "peers": []}, restarted=False) == (
        "Added Gossip-Node-5 (127.0.0.1:7005); peers: none yet.\n"
        "It links up with peers, then catches up on what it missed, within seconds."
    )
    assert render.rejoined(entry, {"loaded": 0, "peers": [4]}, restarted=True).startswith(
        "Restarted Gossip-Node-5 (127.0.0.1:7005) with no message held; peers: 4.\nIt catches"
    )


def test_view_json_selects_paths_as_p_does() -> None:
    message = MessageView("m1", "hi", 10.0, (Copy((1, 5), 10.5), Copy((1, 3, 5), 10.2)), True)
    assert render.view_json(message) == {
        "id": "m1",
        "text": "hi",
        "sent": 10.0,
        "read": True,
        "copies": [{"path": [1, 5], "arrived": 10.5}, {"path": [1, 3, 5], "arrived": 10.2}],
    }
    assert render.view_json(message, 2)["copies"] == [{"path": [1, 3, 5], "arrived": 10.2}]


def test_a_failing_node_is_shown_with_why_and_the_others_as_usual() -> None:
    net, rows = _status_rows()
    why = "cannot talk to node 2: its hello does not say whether it authenticates"
    rows[1] = NodeStatus(net.nodes[2], "failing", {"error": why})
    lines = render.status(net, rows, [[1, 10]], now=1190.0).splitlines()
    assert lines[4] == "2     failing  -      -         -       7002  -"
    assert lines[7:9] == ["", f"Node 2 is failing: {why}"]
    data = render.status_json(net, rows, [[1, 10]], now=1190.0)
    assert data["nodes"][1]["state"] == "failing" and data["nodes"][1]["error"] == why
    assert data["nodes"][1]["peers"] is None


def test_status_json_has_the_table_facts_and_nulls_for_nodes_not_up() -> None:
    net, rows = _status_rows()
    data = render.status_json(net, rows, [[1, 10]], now=1190.0)
    assert (data["port_origin"], data["topology"], data["max_peers"]) == (7000, "circular", 3)
    assert data["parts"] == [[1, 10]]
    first, down, removed, last = data["nodes"]
    assert first == {
        "node": 1,
        "state": "up",
        "host": "127.0.0.1",
        "port": 7001,
        "peers": [2, 10],
        "messages": 4,
        "unread": 1,
        "uptime": 190.0,
        "pid": 0,  # the process this host runs it as (made up here)
        "error": None,
    }
    assert down["state"] == "down" and removed["state"] == "removed"
    assert down["peers"] is down["messages"] is down["uptime"] is down["pid"] is None
    assert last["uptime"] == 60.0


# The commands the demo suggests, written as the user's shell can run them

PROJECT = Path("/home/ann/gossip")
PYTHON = "/home/ann/gossip/.venv/bin/python"


@pytest.mark.parametrize(
    ("environ", "on_path", "cwd", "project", "command"),
    [
        ({"UV": "/usr/bin/uv"}, True, PROJECT, PROJECT, "uv run gossip"),
        ({"UV": "/usr/bin/uv"}, True, PROJECT / "images", PROJECT, "uv run gossip"),
        ({"UV_RUN_RECURSION_DEPTH": "1"}, True, PROJECT, PROJECT, "uv run gossip"),
        ({"UV": "/usr/bin/uv"}, True, Path("/tmp"), None, "uv run gossip"),
        (
            {"UV": "/usr/bin/uv"},
            True,
            Path("/tmp"),
            Path("/home/ann/my gossip"),
            "uv run --project '/home/ann/my gossip' gossip",
        ),
        ({"VIRTUAL_ENV": "/home/ann/gossip/.venv"}, True, PROJECT, PROJECT, "gossip"),
        ({}, True, Path("/tmp"), None, "gossip"),
        ({}, False, PROJECT, PROJECT, f"{PYTHON} -m gossip"),
    ],
)
def test_gossip_command_is_one_the_users_shell_can_run(
    environ: dict[str, str], on_path: bool, cwd: Path, project: Path | None, command: str
) -> None:
    assert render.gossip_command(environ, on_path, PYTHON, cwd, project) == command


def test_gossip_command_is_the_script_run_by_its_path() -> None:
    """Run as .venv/bin/gossip, not on the PATH, its hints said .venv/bin/python -m gossip."""
    script = "/home/ann/gossip/.venv/bin/gossip"
    assert render.gossip_command({}, False, PYTHON, PROJECT, PROJECT, script) == script
    assert render.gossip_command({}, True, PYTHON, PROJECT, PROJECT, script) == "gossip"


def test_gossip_command_quotes_a_python_with_a_space() -> None:
    python = "/opt/my python/bin/python3"
    command = render.gossip_command({}, False, python, PROJECT, PROJECT)
    assert command == "'/opt/my python/bin/python3' -m gossip"


def test_removed_says_what_it_handed_over_and_when_it_was_hung() -> None:
    result = {"former_peers": [], "links": [], "handed_over": 2, "hung": True, "dead": True}
    assert render.removed(3, result).splitlines() == [
        "Removed Gossip-Node-3, which did not answer: its process was killed.",
        "2 messages it held that the others lacked went to the rest.",
    ]
    result["handed_over"] = 1
    assert "1 message it held that the others lacked went to the rest." in render.removed(3, result)


# --json documents


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=30,
    )
)
@settings(max_examples=300, deadline=None)
def test_as_json_keeps_the_data_exact_and_hides_nothing(data: object) -> None:
    text = render.as_json(data)
    assert json.loads(text) == data
    assert all(not render.escaped(c) for c in text if c != "\n")


def test_as_json_lays_out_two_levels_then_an_item_a_line() -> None:
    data = {"node": 3, "messages": [{"id": "a", "copies": [[1, 2]]}, {"id": "b\u202e"}], "e": []}
    assert render.as_json(data).splitlines() == [
        "{",
        '  "node": 3,',
        '  "messages": [',
        '    {"id": "a", "copies": [[1, 2]]},',
        '    {"id": "b\\u202e"}',
        "  ],",
        '  "e": []',
        "}",
    ]


def test_a_paused_node_is_paused_in_the_table_and_the_json_alike(
    fake_supervisor: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """The table said paused, ``--json`` said down with no pid: the README's jq for the
    nodes that are down listed paused ones, and its kill -9 recipe got null."""
    net, rows = _status_rows()
    net.conditions = {"paused": [2]}
    pid = net.nodes[2].pid = fake_supervisor(net.directory).pid  # stopped, it still runs
    table = render.status(net, rows, [[1, 10]], now=1190.0).splitlines()
    assert [line.split()[:2] for line in table if line.startswith("2 ")] == [["2", "paused"]]
    paused = render.status_json(net, rows, [[1, 10]], now=1190.0)["nodes"][1]
    assert (paused["state"], paused["pid"], paused["peers"]) == ("paused", pid, None)


def test_a_paused_node_killed_since_is_down() -> None:
    """It stayed 'paused' for good: resume said it was not running, and the page offered
    only resume, so nothing but a hand-made restart-node brought it back."""
    net, rows = _status_rows()
    net.conditions = {"paused": [2]}
    net.nodes[2].pid = 0  # gone
    table = render.status(net, rows, [[1, 10]], now=1190.0).splitlines()
    assert [line.split()[:2] for line in table if line.startswith("2 ")] == [["2", "down"]]
    assert render.status_json(net, rows, [[1, 10]], now=1190.0)["nodes"][1]["state"] == "down"
    net.nodes[2].local = False  # another host's: only that host knows whether it runs
    assert render.status_json(net, rows, [[1, 10]], now=1190.0)["nodes"][1]["state"] == "paused"


def test_a_node_added_outside_a_partition_is_told_which_side_it_is_on() -> None:
    """Nodes in no group are one side: node 11 joins 9 and 10, not a side of its own."""
    cut = conditions_from({"groups": [[1, 2, 3, 4], [5, 6, 7, 8]]})
    live = list(range(1, 12))
    assert render.outside(11, cut, live, "gossip heal") == (
        "\nA partition is in force and names no node 11: it is on one side with nodes 9-10, "
        "the others in no group, until gossip heal."
    )
    alone = render.outside(9, cut, list(range(1, 10)), "gossip heal")
    assert alone.endswith("names no node 9: it is a side of its own until gossip heal.")
    assert render.outside(4, cut, live, "gossip heal") == ""
    assert render.outside(11, conditions_from({}), live, "gossip heal") == ""


def test_uptime_is_the_nodes_own_not_the_askers_clock_minus_its_start() -> None:
    """Across machines two hours apart the table said 2h 00m for a node up 15 s, and the
    JSON -7195.2 the other way."""
    net, rows = _status_rows()
    skewed = dict(rows[0].report, started=1190.0 + 7200, uptime=15.0)
    rows[0] = NodeStatus(net.nodes[1], "up", skewed)
    table = render.status(net, rows, [[1, 10]], now=1190.0).splitlines()
    assert table[3].split()[-1] == "15s", table[3]
    assert render.status_json(net, rows, [[1, 10]], now=1190.0)["nodes"][0]["uptime"] == 15.0
