"""``gossip experiment``: the scenario file, the figures from what nodes recorded, the
table with its bars, and the pictures (valid PNGs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.errors import GossipError
from gossip.experiment import Bar, Result, load, table
from gossip.strategy import Strategy
from tests.networks import png_size

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def result(name: str, spreads: list[list[float]], frames: int, live: int = 4) -> Result:
    done = Result(name, submitted=len(spreads), spreads=spreads, frames=frames, live=live)
    done.delivered = sum(len(s) == live for s in spreads)
    return done


def test_the_shipped_examples_load() -> None:
    glomers = load(EXAMPLES / "glomers.toml")
    assert glomers.nodes == 25
    assert glomers.conditions == {"delay_ms": 100}
    assert [b.name for b in glomers.bars] == ["3d", "3e"]
    assert glomers.strategies["push fanout 1"] == Strategy(fanout=1)
    assert glomers.strategies["pull 100 ms"] == Strategy(mode="pull", interval=0.1)
    faults = load(EXAMPLES / "faults.toml")
    assert [f.action for f in faults.faults] == ["partition", "pause", "heal", "resume"]
    assert load(EXAMPLES / "strategies.toml").strategies["push"] == Strategy()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name = 'x'", "give one or more [[strategy]] tables"),
        ("[[strategy]]\nmode = 'flood'", "--mode must be one of push, pull, push-pull"),
        ("[[strategy]]\n[[fault]]\naction = 'explode'", "a fault's action must be one of"),
        ("[network]\nnodes = 1\n[[strategy]]", "nodes must be 2-200"),
        ("[messages]\nrate = 0\n[[strategy]]", "messages.rate and messages.settle_s"),
        ("[[strategy]\n", "is not valid TOML"),
        ("[network]\nnodes = 'many'\n[[strategy]]", "invalid literal"),
    ],
)
def test_a_bad_scenario_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(GossipError) as raised:
        load(path)
    assert error in str(raised.value)
    assert "\n" not in str(raised.value).strip() or "TOML" in error


def test_latency_is_until_every_live_node_held_it() -> None:
    done = result("push", [[0, 10, 20, 30], [0, 5, 50, 300], [0, 5]], frames=30)
    assert done.delivered == 2
    assert done.all_reached() == [30, 300]
    assert done.latency(50) == 30
    assert done.latency(100) == 300
    assert done.msgs_per_op == 10


def test_the_table_says_which_bars_each_strategy_meets() -> None:
    fast = result("fast", [[0, 100, 200, 300]] * 10, frames=100)
    dear = result("dear", [[0, 100, 200, 300]] * 10, frames=400)
    lost = result("lost", [[0, 100, 200]] * 10, frames=10)
    bars = (Bar("3d", 30, 400, 600),)
    lines = table([fast, dear, lost], bars).splitlines()
    assert lines[0].split() == [
        "strategy", "delivered", "msgs/op", "p50", "ms", "p99", "ms", "max", "ms", "dups/msg", "3d"
    ]  # fmt: skip
    assert lines[1].split()[-1] == "PASS"
    assert lines[2].split()[-1] == "FAIL"  # 40 msgs/op
    assert lines[3].split()[-1] == "FAIL"  # nothing delivered to all
    assert lines[3].split()[1] == "0/10"
    assert "3d: msgs/op < 30, median < 400 ms, max < 600 ms" in lines[-1]


def test_the_pictures_are_pngs(tmp_path: Path) -> None:
    from gossip import labplots

    results = [
        result("push", [[0, 100, 200, 300], [0, 90, 150, 280]], frames=40),
        result("pull", [[0, 300, 500, 900], [0, 200, 600, 700]], frames=12),
    ]
    for picture in labplots.draw_all(results, tmp_path, "test"):
        assert png_size(picture.read_bytes()) == (700, 420)


def test_submissions_no_node_acknowledged_are_said_and_left_out() -> None:
    paused = result("push", [[0, 100, 200, 300]] * 9, frames=90)
    paused.unanswered = 1
    assert "push: 1 of 10 submissions were not acknowledged" in table([paused], ())
    assert "9/9" in table([paused], ())
