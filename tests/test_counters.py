"""The counters every node keeps (``gossip.counters``), driven through the core's entry
point and the simulation, and as a real node reports them in ``/STATUS``."""

from __future__ import annotations

from gossip.answers import answer
from gossip.commands import Command
from gossip.network import wait_until
from gossip.protocol import decode_frame, encode_frame
from gossip.simulation import Simulation
from tests.core import make_node, neighbours, ring
from tests.networks import Networks, send


def relay(message_id: str, path: list[int]) -> bytes:
    payload = {"id": message_id, "text": "hi", "path": path, "relays": 1, "sent": 1.0}
    return encode_frame(Command.RELAY, payload)


def test_answer_counts_each_frame_in_copies_and_duplicates() -> None:
    node = make_node(5, [1, 2, 9], lambda: 10.0)
    answer(node, decode_frame(relay("a", [1])), 10.0)
    answer(node, decode_frame(relay("a", [2])), 10.0)
    answer(node, decode_frame(relay("a", [1, 5])), 10.0)  # its own walk: a duplicate too
    answer(node, decode_frame(encode_frame(Command.PING)), 10.0)
    counters = node.status()["counters"]
    assert counters["frames_in"] == {"RELAY": 3, "PING": 1}
    assert counters["copies"] == 3
    assert counters["duplicates"] == 2
    assert counters["submitted"] == 0
    assert node.status()["received"] == 3


def test_a_retried_submission_is_submitted_once() -> None:
    node = make_node(1, [2], lambda: 10.0)
    new = encode_frame(Command.NEW, {"text": "x", "relays": 1, "id": "m1"})
    answer(node, decode_frame(new), 10.0)
    answer(node, decode_frame(new), 10.0)
    assert node.counters.submitted == 1
    assert node.counters.frames_in[Command.NEW] == 2


def test_a_simulated_flood_counts_every_frame_on_both_ends() -> None:
    sim = Simulation(neighbours(ring(6)), max_peers=3)
    message_id, sends = sim.nodes[1].submit("hello", 1)
    for relayed in sends:
        sim.send(1, relayed)
    assert all(message_id in node.messages for node in sim.nodes.values())
    out = sum(n.counters.frames_out[Command.RELAY] for n in sim.nodes.values())
    received = sum(n.counters.frames_in[Command.RELAY] for n in sim.nodes.values())
    copies = sum(n.counters.copies for n in sim.nodes.values())
    assert out == received == copies > 0
    duplicates = sum(n.counters.duplicates for n in sim.nodes.values())
    assert duplicates == copies - 5  # every node but the origin got one first copy
    assert sim.nodes[1].counters.submitted == 1


def test_a_death_is_a_link_break_and_its_replacement_a_heal() -> None:
    sim = Simulation(neighbours(ring(8)), max_peers=3)
    sim.kill(4)
    sim.run(5)
    assert sim.nodes[3].counters.link_breaks == 1
    assert sim.nodes[5].counters.link_breaks == 1
    assert 3 in sim.nodes[5].peers
    assert sim.nodes[3].counters.heals == sim.nodes[5].counters.heals == 1


def test_catch_up_counts_pulls_and_its_frames() -> None:
    sim = Simulation({1: [2], 2: [1]}, max_peers=3)
    sim.nodes[2].peers.clear()  # node 2 misses the message: it is not linked at first
    message_id, _ = sim.nodes[1].submit("late", 1)
    sim.nodes[2].peers[1] = sim.nodes[1].address
    sim.run(4)
    assert message_id in sim.nodes[2].messages
    # Node 2 pulls it, or node 1 pushes it: whichever held the round.
    traded = sim.nodes[2].counters.pulls + sim.nodes[2].counters.frames_in[Command.RELAY]
    assert traded == 1
    assert sim.nodes[1].counters.frames_in[Command.SYNC] + sim.nodes[2].counters.frames_in[
        Command.SYNC
    ] == sum(n.counters.frames_out[Command.SYNC] for n in sim.nodes.values())


def test_a_real_node_reports_its_counters_in_status(networks: Networks) -> None:
    net = networks.start("-n", "4", "circular")
    message_id = send(net, 1, "counted")
    net.wait_delivered(message_id)

    def counted() -> bool:
        reports = [net.client(n).status()["counters"] for n in range(1, 5)]
        relays_out = sum(r["frames_out"].get("RELAY", 0) for r in reports)
        relays_in = sum(r["frames_in"].get("RELAY", 0) for r in reports)
        return relays_out == relays_in == sum(r["copies"] for r in reports) >= 3

    assert wait_until(counted, 5)
    origin = net.client(1).status()["counters"]
    assert origin["submitted"] == 1
    assert origin["frames_in"]["NEW"] == 1
    assert set(origin) == {
        "frames_in",
        "frames_out",
        "copies",
        "duplicates",
        "submitted",
        "link_breaks",
        "heals",
        "merges",
        "pulls",
    }
