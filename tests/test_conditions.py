"""Network conditions (``gossip.conditions``) as a node applies them, the ``/CONDITIONS``
frame through the core's entry point, and the lab's parsing of the command line's values."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

import pytest

from gossip import lab, state
from gossip.answers import answer
from gossip.commands import Command
from gossip.conditions import (
    EXCHANGE_TRIES,
    PERFECT,
    RETRY_AFTER,
    Conditions,
    conditions_from,
    group,
    sides,
)
from gossip.errors import GossipError, UsageError
from gossip.protocol import FrameError, decode_frame, encode_frame
from gossip.sends import Send
from gossip.simulation import address
from gossip.state import NetworkState, NodeEntry
from tests.core import make_node


def send(peer: int, kind: Command = Command.RELAY) -> Send:
    return Send(peer, address(peer), b"", kind)


def test_a_perfect_network_holds_nothing_back() -> None:
    assert not PERFECT.active
    assert PERFECT.fate(1, send(2), random.Random(0)) == 0.0


def test_a_partition_blocks_both_ways_and_only_across() -> None:
    cut = Conditions(groups=((1, 2, 3), (4, 5)))
    assert cut.blocked(1, 4) and cut.blocked(4, 1)
    assert not cut.blocked(1, 3) and not cut.blocked(5, 4)
    assert cut.blocked(6, 1) and not cut.blocked(6, 7)  # nodes in no group are one more side
    assert cut.fate(1, send(4, Command.PING), random.Random(0)) is None


def test_loss_drops_only_frames_that_carry_messages_at_about_its_rate() -> None:
    lossy = Conditions(loss=0.2)
    rng = random.Random(3)
    lost = sum(lossy.fate(1, send(2), rng) is None for _ in range(10_000))
    assert 1700 < lost < 2300
    assert all(lossy.fate(1, send(2, Command.PING), rng) == 0.0 for _ in range(100))
    assert all(lossy.fate(1, send(2, Command.CONNECT), rng) == 0.0 for _ in range(100))


@pytest.mark.parametrize("loss", [0.2, 0.4, 0.6])
def test_an_exchange_is_tried_again_while_it_is_lost(loss: float) -> None:
    """A request waited on and its reply: each try lost either way is sent again after its
    reply is overdue, up to EXCHANGE_TRIES; at 40 % loss a catch-up step used to get
    through 36 % of the time, and a round of three steps 5 %."""
    lossy = Conditions(delay=0.01, loss=loss)
    rng = random.Random(7)
    waits = [lossy.exchange(1, send(2, Command.SYNC), rng) for _ in range(10_000)]
    through = [w for w in waits if w is not None]
    once = (1 - loss) ** 2
    expected = 1 - (1 - once) ** EXCHANGE_TRIES
    assert abs(len(through) / len(waits) - expected) < 0.02
    retry = max(RETRY_AFTER, 2 * 0.01)
    assert all(
        any(abs(w - (k * retry + 0.02)) < 1e-9 for k in range(EXCHANGE_TRIES)) for w in through
    )
    assert Conditions(delay=0.01).exchange(1, send(2, Command.SYNC), rng) == pytest.approx(0.02)
    assert lossy.exchange(1, send(2, Command.PING), rng) == pytest.approx(0.02), "not lossy"


def test_an_exchange_under_long_delays_is_not_tried_again_past_the_longest_delay() -> None:
    """Each lost try waits twice the delay: at 1 s of delay, a step tried five times held
    a sending thread for 10 s, while rounds start every second."""
    slow = Conditions(delay=0.6, loss=0.9)
    rng = random.Random(2)
    waits = [slow.exchange(1, send(2, Command.SYNC), rng) for _ in range(2000)]
    through = [w for w in waits if w is not None]
    # a lost try (1.2 s) and another (1.2 s more) would pass MAX_DELAY: one try only, as
    # before retries, through once in a hundred (0.1 x 0.1)
    assert through and max(through) == pytest.approx(1.2)
    assert len(through) < 0.03 * len(waits)


def test_an_exchange_across_a_partition_fails_at_once() -> None:
    cut = Conditions(loss=0.5, groups=((1, 2), (3,)))
    assert cut.exchange(1, send(3, Command.SYNC), random.Random(0)) is None
    assert cut.exchange(1, send(2, Command.PING), random.Random(0)) == 0.0


def test_delay_and_jitter_on_one_link_only() -> None:
    slow = Conditions(delay=0.1, jitter=0.02, links=((3, 7),))
    rng = random.Random(1)
    waits = [slow.fate(7, send(3), rng) for _ in range(1000)]
    assert all(w is not None and 0.08 <= w <= 0.12 for w in waits)
    assert slow.fate(3, send(4), rng) == 0.0


def test_the_frame_replaces_the_conditions_in_force_and_status_shows_them() -> None:
    node = make_node(1, [2, 3], lambda: 10.0)
    payload = {"delay_ms": 100, "loss_percent": 5, "groups": [[1, 2], [3]]}
    answer(node, decode_frame(encode_frame(Command.CONDITIONS, payload)), 10.0)
    assert node.conditions == Conditions(delay=0.1, loss=0.05, groups=((1, 2), (3,)))
    assert node.status()["conditions"]["groups"] == [[1, 2], [3]]
    answer(node, decode_frame(encode_frame(Command.CONDITIONS, {})), 10.0)
    assert node.conditions == PERFECT


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"delay_ms": -1}, "'delay_ms' must be a number between 0 and 2000"),
        ({"delay_ms": "100"}, "'delay_ms' must be a number"),
        ({"delay_ms": 1500, "jitter_ms": 900}, "delay plus jitter must be at most 2000 ms"),
        ({"loss_percent": 101}, "'loss_percent' must be a number between 0 and 100"),
        ({"links": [[1]]}, "'links' must hold pairs"),
        ({"groups": [[1, 2], [2, 3]]}, "must not name a node twice"),
        ({"groups": [["a"]]}, "'groups' must hold node numbers"),
        ({"groups": "1-8"}, "'groups' must be a list"),
    ],
)
def test_a_bad_conditions_frame_is_refused(payload: dict[str, object], error: str) -> None:
    node = make_node(1, [2], lambda: 10.0)
    with pytest.raises(FrameError, match=error):
        answer(node, decode_frame(encode_frame(Command.CONDITIONS, payload)), 10.0)
    assert node.conditions == PERFECT


def test_the_supervisor_sees_each_side_of_a_partition_on_its_own() -> None:
    links = {1: [2, 5], 2: [1], 5: [1, 6], 6: [5], 9: []}
    assert sides(links, [[1, 2], [5, 6]]) == [{9: []}, {1: [2], 2: [1]}, {5: [6], 6: [5]}]


def test_describe_says_what_is_in_force() -> None:
    conditions = conditions_from(
        {
            "delay_ms": 100,
            "jitter_ms": 20,
            "loss_percent": 5,
            "groups": [[1, 2], [3]],
            "paused": [4],
        }
    )
    assert conditions.describe() == (
        "delay 100 ms ± 20 ms, loss 5 % on every link; partition 1-2 | 3; paused 4"
    )
    assert PERFECT.describe() == "none (a perfect network)"
    # status said "delay 0 ms, loss 5 %"; and the partition as asked, not as it is: a side
    # of removed nodes, and no word of the live nodes in no group
    assert conditions_from({"loss_percent": 5}).describe() == "loss 5 % on every link"
    assert conditions_from({"jitter_ms": 5}).describe() == "delay 0 ms ± 5 ms on every link"
    parted = conditions_from({"groups": [[1], [2, 3, 4]]})
    assert parted.describe([2, 3, 4, 5, 6]) == "partition 2-4 | 5-6 (in no group)"
    assert parted.describe([1, 2]) == "partition 1 | 2"


@pytest.mark.parametrize(
    ("parse", "raw", "value"),
    [
        (lambda r: lab.milliseconds(r, "--delay"), "100ms", 100.0),
        (lambda r: lab.milliseconds(r, "--delay"), "0.25s", 250.0),
        (lambda r: lab.milliseconds(r, "--delay"), "40", 40.0),
        (lab.percent, "5%", 5.0),
        (lab.link, "3-7", [3, 7]),
        (lambda r: group(r, 16), "1-3,5", [1, 2, 3, 5]),
        (lambda r: group(r, 16), "16", [16]),
    ],
)
def test_the_command_lines_values(parse: object, raw: str, value: object) -> None:
    assert parse(raw) == value  # type: ignore[operator]


@pytest.mark.parametrize(
    ("parse", "raw", "error"),
    [
        (lambda r: lab.milliseconds(r, "--delay"), "fast", "--delay must be a time like 100ms"),
        (lambda r: lab.milliseconds(r, "--delay"), "3s", "--delay must be at most 2000ms"),
        (lab.percent, "150%", "--loss must be a percentage from 0% to 100%"),
        (lab.link, "3", "--link must name two nodes"),
        (lambda r: group(r, 16), "8-1", "a range of nodes runs low to high"),
        (lambda r: group(r, 16), "a-b", "a partition group is nodes like 1-8"),
        (lambda r: group(r, 16), "0-5", "nodes are numbered from 1: there is no node 0"),
        (lambda r: group(r, 16), "1-17", "node 17 does not exist"),
        # Refused before the range is spelled out: no memory, no overflow.
        (lambda r: group(r, 16), "1-999999999999", "node 999999999999 does not exist"),
        (lambda r: group(r, 16), "2,1-99999999999999999999999", "does not exist"),
        (lambda r: group(r, 16), "1-" + "9" * 5000, "a partition group is nodes like 1-8"),
        (lambda r: group(r, 16), "1,1", "a partition group names a node twice: '1,1'"),
        (lambda r: group(r, 16), "3-5,1-10", "a partition group names a node twice"),
        (lambda r: group(r, 16), "1-16," * 1000 + "1", "names a node twice: '1-16,1-16,"),
        (lambda r: group(r, 16), "\u0661-\u0663", "a partition group is nodes like 1-8"),
        (lab.link, "1-" + "9" * 5000, "--link must name two nodes"),
        (lambda r: lab.milliseconds(r, "--delay"), "9" * 5000, "--delay must be a time like"),
        (lab.percent, "9" * 5000 + "%", "--loss must be a percentage"),
    ],
)
def test_bad_values_say_what_is_wrong(parse: object, raw: str, error: str) -> None:
    with pytest.raises(GossipError, match=error):
        parse(raw)  # type: ignore[operator]


def test_node_0_is_wrong_in_itself_and_a_node_past_the_last_is_the_networks_business() -> None:
    """Exit status 2 is for a command line wrong whatever the network, as node 0 is."""
    with pytest.raises(UsageError):
        group("0-5", 16)
    with pytest.raises(GossipError) as past:
        group("1-17", 16)
    assert not isinstance(past.value, UsageError)


def test_a_node_paused_twice_is_refused() -> None:
    """A peer's /CONDITIONS of one node paused 21,700 times made every /STATUS too big."""
    with pytest.raises(FrameError, match="'paused' must not name a node twice"):
        conditions_from({"paused": [10] * 21_700})
    assert conditions_from({"paused": [3, 10]}).paused == (3, 10)


def test_conditions_are_checked_as_they_are_kept_rounded(tmp_path: Path) -> None:
    """999.9015 + 1000.0985 ms passed, then were kept rounded as 999.902 + 1000.099, over
    the limit: the state could no longer be read, nor the network resumed."""
    net = NetworkState(
        7000, 3, "ring", {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in (1, 2)}
    )
    state.save(net, tmp_path)
    with pytest.raises(GossipError, match="delay plus jitter must be at most 2000 ms"):
        lab.impose(tmp_path, net, {"delay_ms": 999.9015, "jitter_ms": 1000.0985})
    assert state.load(tmp_path) is not None


def test_a_partition_side_or_a_link_of_removed_nodes_only_is_refused() -> None:
    """``partition 1-2 5`` and ``netem --link 1-5`` with node 5 removed were taken: a side
    no frame reaches, a link that is not there. A range keeps its removed nodes, so one
    brought back by restart-node is on the side it was."""
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, [], removed=n in (5, 6)) for n in range(1, 9)}
    net = NetworkState(7000, 3, "ring", nodes)
    for side in ("5", "5-6", "6,5"):
        with pytest.raises(GossipError, match=f"group '{side}' names only removed nodes: live"):
            lab.partition_groups(["1-2", side], net)
    assert lab.partition_groups(["1-4", "5-8"], net) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    with pytest.raises(
        GossipError, match="node 5 was removed from this network: live nodes are 1-4, 7-8"
    ):
        lab.check_live(net, [1, 5])
    with pytest.raises(GossipError, match="node 9 does not exist"):
        lab.check_live(net, [9, 1])
    lab.check_live(net, [1, 8])


def test_pauses_and_changes_made_at_once_are_all_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pause 3`` beside ``pause 6`` and ``netem``: each pause read the pauses in force
    before taking the state's lock, and the last to write undid the other's; its node
    stayed stopped, and ``resume`` said it was not paused."""
    monkeypatch.setattr(state, "pid_alive", lambda pid, directory=None: True)
    signalled: list[int] = []
    monkeypatch.setattr(lab.os, "kill", lambda pid, sig: signalled.append(pid))
    free = [socket.socket() for _ in range(6)]  # ports nothing listens on: nodes "down"
    for sock in free:
        sock.bind(("127.0.0.1", 0))
    nodes = {
        n: NodeEntry(n, "127.0.0.1", free[n - 1].getsockname()[1], [], pid=100 + n)
        for n in range(1, 7)
    }
    for sock in free:
        sock.close()
    state.save(NetworkState(7000, 3, "ring", nodes, insecure=True), tmp_path)
    failed: list[BaseException] = []

    def loaded() -> NetworkState:
        net = state.load(tmp_path)
        assert net is not None
        return net

    for round_ in range(6):
        stop = round_ % 2 == 0
        start = threading.Barrier(5)

        def pause(number: int, stop: bool = stop, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                lab.pause(tmp_path, loaded(), number, stop)
            except GossipError as exc:
                failed.append(exc)

        def change(fields: dict[str, object], start: threading.Barrier = start) -> None:
            start.wait()
            lab.impose(tmp_path, loaded(), fields)

        threads = [threading.Thread(target=pause, args=(n,)) for n in (1, 3, 5)]
        threads += [threading.Thread(target=change, args=({"delay_ms": round_},))]
        threads += [threading.Thread(target=change, args=({"groups": []},))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        kept = lab.current(loaded())
        assert not failed and kept.paused == ((1, 3, 5) if stop else ()), (round_, failed)
        assert kept.delay == round_ / 1000
    assert sorted(signalled) == [101] * 6 + [103] * 6 + [105] * 6
    with pytest.raises(GossipError, match="node 3 is not paused: gossip pause 3 pauses it"):
        lab.pause(tmp_path, loaded(), 3, stop=False)


def test_on_several_hosts_a_command_takes_the_conditions_the_nodes_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition healed from another host stayed in this host's state, and restart-node
    started a node under it, cut off for good; a node another host paused and resumed
    since stayed 'paused' here, and every command to it was refused."""
    nodes = {n: NodeEntry(n, "10.0.0.1", 7000 + n, [], pid=100 + n) for n in (1, 2)}
    nodes |= {n: NodeEntry(n, "10.0.0.2", 7000 + n, [], local=False) for n in (3, 4)}
    here = NetworkState(0, 3, "file", nodes, name="lab", conditions={"paused": [1, 3]})
    here.conditions["groups"] = [[1, 2], [3, 4]]
    state.save(here, tmp_path)
    monkeypatch.setattr(lab, "held", lambda network: conditions_from({"paused": [4]}))
    lab.refresh(tmp_path, here)
    kept = lab.current(state.load(tmp_path))  # type: ignore[arg-type]
    assert (kept.groups, kept.paused) == ((), (1, 4)), "this host's pause 1 is its own to know"
    monkeypatch.setattr(state, "pid_alive", lambda pid, directory=None: True)
    assert lab.halted(here, here.nodes[1], tmp_path)
    assert not lab.halted(here, here.nodes[4], tmp_path), "asked: it answers, or times out"
    view = NetworkState(
        0, 3, "file", {n: NodeEntry(n, "h", 7000 + n, [], local=False) for n in (1, 2)}
    )
    lab.refresh(tmp_path / "none", view)  # a file's view: no state to write, only the view
    assert view.conditions["paused"] == [4] and not (tmp_path / "none").exists()


def test_the_conditions_in_force_are_asked_of_this_hosts_running_nodes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every command given --config asks; a host cut off (or a paused node) costs a
    timeout per node asked before one answers."""
    asked: list[int] = []

    class Asked:
        def __init__(self, number: int) -> None:
            self.number, self.timeout = number, 0.0

        def status(self) -> dict[str, object]:
            asked.append(self.number)
            if self.number != 4:
                raise GossipError("no answer")
            return {"conditions": {"loss_percent": 5}}

    monkeypatch.setattr(lab, "client_for", lambda network, entry: Asked(entry.number))
    nodes = {n: NodeEntry(n, "10.0.0.2", 7000 + n, [], local=False) for n in (1, 2)}
    nodes |= {n: NodeEntry(n, "10.0.0.1", 7000 + n, []) for n in (3, 4, 5)}
    net = NetworkState(0, 3, "file", nodes, name="lab", conditions={"paused": [3]})
    assert lab.held(net) == conditions_from({"loss_percent": 5})
    assert asked == [4], "this host's running node first: not 3 (paused), not 1, 2 (far)"
