"""Gossip strategies (``gossip.strategy``) driven through the core's entry point and the
simulation: every mode delivers every message to every node with real paths, and each
knob changes what it costs as it says."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from gossip.answers import answer
from gossip.commands import Command
from gossip.errors import GossipError
from gossip.protocol import decode_frame, encode_frame
from gossip.simulation import Simulation
from gossip.strategy import DEFAULT, Strategy, stored, strategy_from
from tests.core import make_node, neighbours, numbered

GRAPH = numbered(nx.random_regular_graph(3, 16, seed=4))

STRATEGIES = {
    "push": Strategy(),
    "pull": Strategy(mode="pull"),
    "push-pull": Strategy(mode="push-pull"),
    "fanout 1": Strategy(fanout=1),
    "rounds of 100 ms": Strategy(interval=0.1),
    "ttl 2": Strategy(ttl=2),
    "pull every 100 ms, fanout 2 push": Strategy(mode="push-pull", fanout=2, interval=0.1),
}


def simulate(
    strategy: Strategy, messages: int = 5, seconds: float = 6.0
) -> tuple[Simulation, list[str]]:
    """Messages submitted to nodes 1..``messages`` of ``GRAPH``, then time passing."""
    sim = Simulation(neighbours(GRAPH), max_peers=3, seed=1, strategy=strategy)
    ids = []
    for origin in range(1, messages + 1):
        frame = encode_frame(Command.NEW, {"text": f"m{origin}", "relays": 1})
        for reply in sim.exchange(origin, frame):
            ids.append(reply.payload["id"])
    sim.flush()
    sim.run(seconds)
    return sim, ids


def check_paths(sim: Simulation, message_id: str, origin: int) -> None:
    """Every copy's path starts at the origin, ends at the holder, never repeats a node,
    and steps only along links of the graph (the simulation's topology never changes)."""
    for number, node in sim.nodes.items():
        for copy in node.messages[message_id].copies:
            path = copy.path
            assert path[0] == origin and path[-1] == number
            assert len(set(path)) == len(path)
            assert all(GRAPH.has_edge(a, b) for a, b in itertools.pairwise(path))


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_delivers_every_message_to_all_16_with_real_paths(name: str) -> None:
    sim, ids = simulate(STRATEGIES[name])
    assert len(ids) == 5
    for origin, message_id in enumerate(ids, start=1):
        holders = [n for n, node in sim.nodes.items() if message_id in node.messages]
        assert len(holders) == 16, f"{name}: {message_id} reached {holders}"
        check_paths(sim, message_id, origin)


def relays_sent(sim: Simulation) -> int:
    return sum(node.counters.frames_out[Command.RELAY] for node in sim.nodes.values())


def test_fanout_1_sends_fewer_relays_than_every_peer() -> None:
    flood, _ = simulate(DEFAULT, seconds=0.05)
    one, _ = simulate(Strategy(fanout=1), seconds=0.05)
    assert relays_sent(one) < relays_sent(flood) / 2


def test_pull_learns_each_message_once_by_digest_exchange() -> None:
    sim, _ = simulate(Strategy(mode="pull"))
    counters = [node.counters for node in sim.nodes.values()]
    # No relay on arrival: each node got each message once, pulled or pushed by an exchange.
    assert sum(c.copies for c in counters) == 5 * 15
    assert sum(c.duplicates for c in counters) == 0
    assert sum(c.pulls for c in counters) + relays_sent(sim) == 5 * 15


def test_ttl_stops_relaying_after_its_hops_and_catch_up_does_the_rest() -> None:
    sim, ids = simulate(Strategy(ttl=1), seconds=0.05)
    for message_id in ids:
        paths = [
            c.path
            for n in sim.nodes.values()
            if message_id in n.messages
            for c in n.messages[message_id].copies
        ]
        assert max(len(p) for p in paths) == 2  # the origin, then one hop: no further
    sim.run(12)  # catch-up offers a message once it is a second old: a hop a second
    assert all(len(n.messages) == 5 for n in sim.nodes.values())


def test_rounds_hold_relays_until_the_next_round() -> None:
    clock = [10.0]
    node = make_node(5, [1, 2, 9], lambda: clock[0], strategy=Strategy(interval=0.5))
    relay = {"id": "a", "text": "hi", "path": [1], "relays": 1, "sent": 1.0}
    got = answer(node, decode_frame(encode_frame(Command.RELAY, relay)), clock[0])
    assert got.sends == ()
    assert node.tick(10.2) == [] or all(s.kind != Command.RELAY for s in node.tick(10.2))
    due = [s for s in node.tick(10.6) if getattr(s, "kind", None) == Command.RELAY]
    assert sorted(s.peer for s in due) == [2, 9]
    assert node.due == []


@pytest.mark.parametrize(
    "strategy",
    [Strategy(mode="pull"), Strategy(fanout=1), Strategy(mode="push-pull", fanout=1)],
    ids=["pull", "fanout 1", "push-pull fanout 1"],
)
def test_a_clients_message_goes_to_every_peer_before_it_is_acknowledged(
    strategy: Strategy,
) -> None:
    """Acknowledged with no peer holding it, it was lost to every other node while its
    origin, killed at once, stayed down (law 1): in pull mode no copy went, and with one
    peer chosen (pull, a fanout) that one could be dead while the others lived."""
    node = make_node(1, [2, 3, 4], lambda: 10.0, strategy=strategy)
    new = encode_frame(Command.NEW, {"text": "x", "relays": 1})
    got = answer(node, decode_frame(new), 10.0)
    assert sorted(s.peer for s in got.sends) == [2, 3, 4]
    assert {s.kind for s in got.sends} == {Command.RELAY}
    assert got.acked is not None
    assert decode_frame(got.acked(True).replies[0]).payload["held"] is False
    assert decode_frame(got.acked(False).replies[0]).payload["held"] is True  # no one took it
    relay = {"id": "b", "text": "y", "path": [2], "relays": 1, "sent": 1.0}
    passed_on = answer(node, decode_frame(encode_frame(Command.RELAY, relay)), 10.0).sends
    assert len(passed_on) == (0 if strategy.mode == "pull" else 1), "a copy keeps its strategy"


def test_pull_exchanges_digests_every_interval_and_offers_at_once() -> None:
    node = make_node(1, [2], lambda: 10.0, strategy=Strategy(mode="pull", interval=0.3))
    assert node.timing.sync_every == 0.3
    assert node.timing.settle == 0.0
    assert node.timing.tick <= 0.3


def test_the_default_strategy_changes_no_timing() -> None:
    node = make_node(1, [2], lambda: 10.0)
    assert node.timing == make_node(1, [2], lambda: 10.0, strategy=DEFAULT).timing
    assert node.status()["strategy"] == {"mode": "push", "fanout": 0, "interval_ms": 0, "ttl": 0}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"mode": "gossip"}, "--mode must be one of push, pull, push-pull"),
        ({"fanout": "0"}, "--fanout must be between 1 and 1000"),
        ({"fanout": "x"}, "--fanout must be a whole number"),
        ({"interval_ms": "-5"}, "--interval must be between 1 and"),
        ({"fanout": "-1"}, "--fanout must be between 1 and 1000, not -1"),
        ({"ttl": -3}, "--ttl must be between 1 and"),
        ({"ttl": "--3"}, "--ttl must be a whole number"),
        ({"fanout": "²"}, "--fanout must be a whole number"),
        ({"fanout": "-" + "0" * 5000 + "5"}, "--fanout must be between 1 and 1000, not -000"),
        ({"ttl": "0" * 5000}, "--ttl must be between 1 and"),
        ({"ttl": "9" * 5000}, "--ttl must be between 1 and .*, not 99999999999999999999…"),
        ({"interval_ms": 10**400}, "--interval must be between 1 and"),
        ({"ttl": "1.5"}, "--ttl must be a whole number"),
        ({"fanout": " 2"}, "--fanout must be a whole number, not ' 2'"),
        ({"ttl": "3\n"}, "--ttl must be a whole number"),
        ({"interval_ms": "100 ms"}, "--interval must be a whole number"),
        # 100ms was taken and 2s refused as "not a whole number": the unit it takes, said
        ({"interval_ms": "2s"}, "--interval must be a whole number of milliseconds, as 100 or "),
        ({"speed": 3}, "unknown strategy setting 'speed'"),
        ({"mode": "pull", "fanout": 1}, "--fanout shapes pushing, and --mode pull pushes nothing"),
        ({"mode": "pull", "ttl": "2"}, "--ttl shapes pushing, and --mode pull pushes nothing"),
    ],
)
def test_bad_strategy_settings_say_what_is_wrong(fields: dict[str, str], error: str) -> None:
    with pytest.raises(GossipError, match=error):
        strategy_from(fields)


def test_a_strategy_survives_the_networks_state() -> None:
    strategy = strategy_from({"mode": "push-pull", "fanout": 2, "interval_ms": "150ms", "ttl": 4})
    assert strategy == Strategy("push-pull", 2, 0.15, 4)
    assert stored(strategy.as_dict()) == strategy
    assert stored({}) is DEFAULT
    described = "push-pull: push to 2 random peers every 150 ms, digest exchange every 150 ms"
    assert described in strategy.describe()
    assert Strategy(ttl=1).describe().endswith(", at most 1 hop")
    assert Strategy(ttl=2).describe().endswith(", at most 2 hops")


def test_leading_zeros_are_read_without_int_of_thousands_of_digits() -> None:
    """int() refuses over 4,300 digits: zeros in front must not get that far."""
    assert strategy_from({"fanout": "0" * 5000 + "5", "ttl": "007"}) == Strategy("push", 5, 0, 7)
