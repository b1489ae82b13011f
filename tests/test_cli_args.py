"""How the command line parses: docopt against ``gossip.cli``'s usage, with no network."""

from __future__ import annotations

from typing import Any

import pytest
from docopt import DocoptExit, docopt

from gossip import cli
from tests.networks import Networks, gossip_cli

NO_NETWORK = f"gossip: no network is running: start one with {cli.how_to_run()} start-network\n"
"""As the command line words it here: under ``uv run`` its advice is ``uv run gossip ...``."""


def parse(*argv: str) -> dict[str, Any]:
    return docopt(cli.__doc__, list(argv))


@pytest.mark.parametrize(
    ("argv", "message", "relays"),
    [
        (["send-message", "1", "plain"], "plain", "1"),
        (["send-message", "1", "hi", "-r", "2"], "hi", "2"),
        (["send-message", "1", "--", "- buy milk"], "- buy milk", "1"),
        (["send-message", "1", "--", "-x"], "-x", "1"),
        (["send-message", "1", "--", "--relays"], "--relays", "1"),
        (["send-message", "1", "--", "plain"], "plain", "1"),
        (["send-message", "1", "-r", "3", "--", "-x"], "-x", "3"),
        (["send-message", "--port-origin", "9000", "1", "--", "-x"], "-x", "1"),
    ],
)
def test_send_message_parses(argv: list[str], message: str, relays: str) -> None:
    args = parse(*argv)
    assert args["send-message"]
    assert args["<node>"] == "1"
    assert args["<message>"] == message
    assert args["--relays"] == relays


@pytest.mark.parametrize(
    "argv",
    [
        ["send-message", "1"],
        ["send-message", "1", "-x"],  # a message starting with - needs the --
        ["send-message", "1", "--"],
        ["send-message", "1", "--", "-x", "-r", "2"],  # nothing is an option after --
    ],
)
def test_send_message_refuses(argv: list[str]) -> None:
    with pytest.raises(DocoptExit):
        parse(*argv)


def test_the_usage_line_of_send_message_shows_the_double_dash() -> None:
    line = cli.usage_line(["send-message", "1"])
    assert line.startswith(
        "<message> is missing; usage is gossip send-message <node> [--] <message> "
    )
    assert line.endswith("[--port-origin P | --config FILE]")
    assert "\n" not in line and "  " not in line


def test_the_help_says_where_a_message_starting_with_a_dash_goes() -> None:
    result = gossip_cli("--help")
    assert result.code == 0
    assert "gossip send-message <node> [--] <message>" in result.out
    assert "starting with - goes last, after --" in result.out


@pytest.mark.parametrize("message", ["-x", "- buy milk", "--relays"])
def test_a_message_after_the_double_dash_gets_past_the_parser(message: str) -> None:
    result = gossip_cli("send-message", "1", "--", message)
    assert result.code == 1, result.err
    assert result.err == NO_NETWORK
    assert result.out == ""


def test_a_message_starting_with_a_dash_reaches_the_nodes(networks: Networks) -> None:
    net = networks.start("circular", "-n", "3")
    origin = str(net.origin)
    sent = gossip_cli("send-message", "--port-origin", origin, "1", "--", "- buy milk")
    assert sent.code == 0, sent.err
    assert sent.out.startswith("Sent to Gossip-Node-1: '- buy milk' (id ")
    message_id = sent.out.strip().rsplit(" ", 1)[-1].rstrip(")")
    net.wait_delivered(message_id)
    assert [v.text for v in net.peek(3)] == ["- buy milk"]
