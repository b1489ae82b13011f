"""Integration tests of what the tool shows: JSON for scripts and the pictures it draws."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from docopt import docopt

from gossip import cli, network, pictures, plot
from gossip.errors import GossipError
from gossip.network import wait_until
from gossip.protocol import Copy, MessageView
from gossip.state import NetworkState, NodeEntry
from gossip.topology import Topology
from tests.networks import Networks, peer_numbers, png_size, send


def test_status_json_matches_the_network(networks: Networks) -> None:
    net = networks.start("circular", "-n", "6")
    send(net, 2, "counted")
    net.kill(4)
    assert wait_until(lambda: peer_numbers(net, 3) == {2, 5}, 10)
    result = net.cli("status", "--json")
    assert result.code == 0, result.err
    status = json.loads(result.out)
    assert (status["port_origin"], status["max_peers"]) == (net.origin, 3)
    assert status["topology"] == "circular"
    rows = {n["node"]: n for n in status["nodes"]}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert rows[4] == {
        "node": 4,
        "state": "down",
        "host": "127.0.0.1",
        "port": net.origin + 4,
        "peers": None,
        "messages": None,
        "unread": None,
        "uptime": None,
        "pid": None,
        "error": None,
    }
    for number in (1, 2, 3, 5, 6):
        row = rows[number]
        assert row["state"] == "up" and row["port"] == net.origin + number
        assert row["pid"] == net.state.nodes[number].pid > 0  # what kill -9 needs
        assert set(row["peers"]) == peer_numbers(net, number)
        assert (row["messages"], row["unread"]) == (1, 1)
        assert row["uptime"] >= 0
    assert status["parts"] == [[1, 2, 3, 5, 6]]


def test_list_peers_and_get_messages_json(networks: Networks) -> None:
    net = networks.start("circular", "-n", "5")
    message_id = send(net, 1, "for scripts")
    net.wait_copies(3, message_id, 2)
    peers = json.loads(net.cli("list-peers", "3", "--json").out)
    assert peers == {
        "node": 3,
        "peers": [
            {"node": 2, "host": "127.0.0.1", "port": net.origin + 2},
            {"node": 4, "host": "127.0.0.1", "port": net.origin + 4},
        ],
    }
    shortest = json.loads(net.cli("get-messages", "3", "-p", "--json").out)
    assert shortest["node"] == 3 and shortest["which"] == "all"
    [message] = shortest["messages"]
    assert (message["id"], message["text"], message["read"]) == (message_id, "for scripts", False)
    assert [c["path"] for c in message["copies"]] == [[1, 2, 3]]
    assert json.loads(net.cli("get-messages", "3", "unread", "--json").out)["messages"] == []
    every = json.loads(net.cli("get-messages", "3", "read", "--json").out)["messages"][0]
    assert sorted(c["path"] for c in every["copies"]) == [[1, 2, 3], [1, 5, 4, 3]]
    assert every["read"] is True


def test_draw_message_pictures_its_spread_and_lists_first_arrivals(networks: Networks) -> None:
    net = networks.start("random", "--seed", "6")
    send(net, 5, "old news")
    message_id = send(net, 5, "watched")
    net.wait_delivered(message_id)
    picture = net.cwd / "spread.png"
    result = net.cli("draw", "--message", "watched", "-o", str(picture))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "'watched' reached 16 nodes; first arrivals:"
    assert lines[1].startswith("  5 (+0.0 ms), ")
    assert lines[-1] == f"Spread picture: {picture}"
    assert sum(line.count(" ms)") for line in lines[1:-1]) == 16
    data = picture.read_bytes()
    assert png_size(data) == (840, 840) and len(data) > 30_000
    default = net.cli("draw", "--message", "watched")
    assert default.out.splitlines()[-1] == f"Spread picture: {net.directory / 'spread.png'}"
    missing = net.cli("draw", "--message", "never sent")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.startswith(
        "gossip: no live node holds a message 'never sent': send it first, as in "
    )
    assert missing.err.endswith(f"gossip send-message 1 --port-origin {net.origin} 'never sent'\n")


def test_a_spread_title_shows_the_text_as_sent_and_the_hint_quotes_it_for_a_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = r"C:\temp's here"
    view = MessageView("m1", text, 1.0, (Copy((1,), 1.0),), False)
    titles: list[str] = []
    monkeypatch.setattr(network, "holders_of", lambda net, t: {1: view} if t == text else {})
    monkeypatch.setattr(
        plot, "draw_spread", lambda live, arrivals, output, title: titles.append(title) or output
    )
    live = Topology("circular", "a lone node", {1: []})
    entries = {n: NodeEntry(n, "127.0.0.1", 7000 + n, [], removed=n == 1) for n in (1, 2)}
    net = NetworkState(7000, 3, "circular", entries)
    pictures.draw_message(net, live, text, tmp_path / "s.png")
    assert titles == [r"gossip: 'C:\temp's here' reached 1 of 1 live nodes in 0.0 ms"]
    for sent in ("not sent", text + "!", "-x", "--help"):  # as the shell and docopt read it
        with pytest.raises(GossipError) as missing:
            pictures.draw_message(net, live, sent, tmp_path / "s.png")
        said = shlex.split(str(missing.value).rpartition("as in ")[2])
        assert said[:3] == ["gossip", "send-message", "2"], said  # node 1 was removed
        assert docopt(cli.__doc__, said[1:], default_help=False)["<message>"] == sent
