"""``gossip experiment``: the scenario file, checked whole before anything starts; the
figures from what nodes recorded, the table with its bars, and the pictures (valid PNGs)."""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.errors import GossipError
from gossip.experiment import Result, table
from gossip.network import wait_until
from gossip.scenario import DAY_S, Bar, Scenario, load, parse
from gossip.strategy import Strategy
from tests.networks import (
    free_origin,
    gossip_cli,
    gossip_processes,
    interrupted_after,
    png_size,
)

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
        ("[[strategy]]\nmode = 'flood'", "[[strategy]] 1: mode must be one of push, pull"),
        ("[[strategy]]\n[[fault]]\naction = 'explode'", "[[fault]] 1: action must be one of"),
        ("[network]\nnodes = 1\n[[strategy]]", "[network] nodes must be a whole number from 2"),
        ("[messages]\nrate = 0\n[[strategy]]", "[messages] rate (a second) must be a number"),
        ("[[strategy]\n", "is not valid TOML"),
        ("x = " + "9" * 5000, "is not valid TOML"),
        ("x = " + "[" * 5000 + "]" * 5000, "is not valid TOML"),
        ("[network]\nnodes = 'many'\n[[strategy]]", "[network] nodes must be a whole number"),
    ],
)
def test_a_bad_scenario_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(GossipError) as raised:
        load(path)
    assert error in str(raised.value)
    assert "\n" not in str(raised.value).strip() or "TOML" in error


# The scenario's checks, driven directly: every field's wrong values give one line
# naming it, before anything starts.

VALID: dict[str, Any] = {
    "name": "lab",
    "network": {"nodes": 16, "topology": "random", "degree": 3, "max_peers": 3, "seed": 1},
    "messages": {"count": 10, "rate": 10, "settle_s": 10},
    "conditions": {"delay_ms": 20, "jitter_ms": 5, "loss_percent": 5},
    "strategy": [{"name": "push", "mode": "push", "fanout": 2, "interval_ms": 100, "ttl": 5}],
    "fault": [
        {"at_ms": 500, "action": "partition", "groups": [[1, 2, 3], [4, 5]]},
        {"at_ms": 600, "action": "pause", "node": 5},
        {"at_ms": 700, "action": "netem", "delay_ms": 50, "links": [[1, 2]]},
        {"at_ms": 800, "action": "resume", "node": 5},
        {"at_ms": 900, "action": "heal"},
    ],
    "bars": {"3d": {"msgs_per_op": 30, "median_ms": 400, "max_ms": 600}},
}

WILD = ["x", "", True, False, -1, 0, 2.5, 10**20, math.inf, -math.inf, math.nan, [1], {}]
"""Values to try in every numeric field; each field's spec says which of them it takes."""

FIELDS: list[tuple[tuple[Any, ...], str, tuple[Any, ...]]] = [
    (("network", "nodes"), "[network] nodes must be a whole number from 2 to 200", ()),
    (("network", "degree"), "[network] degree must be a whole number from 1 to 15", ()),
    (("network", "max_peers"), "[network] max_peers must be a whole number from 1 to 200", ()),
    (("network", "seed"), "[network] seed must be a whole number from 0 to 4294967295", (0,)),
    (("messages", "count"), "[messages] count must be a whole number from 1 to 10000", ()),
    (
        ("messages", "rate"),
        "[messages] rate (a second) must be a number above 0 up to 1000",
        (2.5,),
    ),
    (("messages", "settle_s"), "[messages] settle_s must be a number above 0 up to 86400", (2.5,)),
    *[
        (
            ("conditions", key),
            f"[conditions] field {key!r} must be a number between 0 and",
            (0, 2.5),
        )
        for key in ("delay_ms", "jitter_ms", "loss_percent")
    ],
    *[
        (("strategy", 0, key), f"[[strategy]] 1: {key} must be", ())
        for key in ("fanout", "interval_ms", "ttl")
    ],
    (("fault", 0, "at_ms"), "[[fault]] 1: at_ms must be a number from 0 up to 86400000", (0, 2.5)),
    (("fault", 1, "node"), "(pause at 600 ms): node must be a whole number from 1 to 16", ()),
    (("bars", "3d", "msgs_per_op"), "[bars.3d] msgs_per_op must be a number above 0", (2.5,)),
    (("bars", "3d", "median_ms"), "[bars.3d] median_ms must be a number above 0 up to", (2.5,)),
    (("bars", "3d", "max_ms"), "[bars.3d] max_ms must be a number above 0 up to 86400000", (2.5,)),
]


def changed(where: tuple[Any, ...], value: Any, data: dict[str, Any] = VALID) -> dict[str, Any]:
    """``data`` with the setting at ``where`` set to ``value`` (or left out, if ``...``)."""
    data = copy.deepcopy(data)
    inner = data
    for key in where[:-1]:
        inner = inner[key]
    if value is ...:
        del inner[where[-1]]
    else:
        inner[where[-1]] = value
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(GossipError) as raised:
        parse(data, "stem")
    message = str(raised.value)
    assert message and "\n" not in message
    return message


def test_the_valid_scenario_is_taken_whole() -> None:
    scenario = parse(VALID, "stem")
    assert isinstance(scenario, Scenario)
    assert (scenario.name, scenario.nodes, scenario.messages, scenario.rate) == ("lab", 16, 10, 10)
    assert scenario.strategies == {"push": Strategy("push", 2, 0.1, 5)}
    assert [f.at for f in scenario.faults] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert scenario.faults[0].changes == {"groups": [[1, 2, 3], [4, 5]]}
    assert scenario.faults[1].node == 5
    assert scenario.bars == (Bar("3d", 30, 400, 600),)


@pytest.mark.parametrize(
    ("where", "value", "error"),
    [
        (where, value, error)
        for where, error, takes in FIELDS
        for value in WILD
        if not any(value is t or (type(value) is type(t) and value == t) for t in takes)
    ],
)
def test_every_number_of_the_wrong_type_or_range_is_named(
    where: tuple[Any, ...], value: Any, error: str
) -> None:
    assert error in refusal(changed(where, value))


@pytest.mark.parametrize(
    ("where", "value"),
    [(where, value) for where, _, takes in FIELDS for value in takes],
)
def test_the_edges_of_each_range_are_taken(where: tuple[Any, ...], value: Any) -> None:
    parse(changed(where, value), "stem")


PAUSE = {"action": "pause", "node": 5}
TWO_NODES = {"nodes": 2, "topology": "circular", "max_peers": 2}


@pytest.mark.parametrize(
    ("where", "value", "error"),
    [
        # The sections themselves.
        (("surprise",), 1, "unknown setting 'surprise': use name, network, messages"),
        (("network",), 5, "[network] must be a table of settings"),
        (("messages",), [], "[messages] must be a table of settings"),
        (("conditions",), "x", "[conditions] must be a table of settings"),
        (("bars",), 5, "[bars] must be a table of settings"),
        (("bars", "3d"), 5, "[bars.3d] must be a table of settings"),
        (("fault",), 5, "[[fault]] must be tables"),
        (("fault",), [5], "[[fault]] must be tables"),
        (("strategy",), [], "give one or more [[strategy]] tables"),
        (("strategy",), [5], "give one or more [[strategy]] tables"),
        (("network", "nodez"), 3, "[network] unknown setting 'nodez'"),
        (("messages", "cout"), 3, "[messages] unknown setting 'cout'"),
        (("conditions", "paused"), [1], "[conditions] unknown setting 'paused'"),
        (("bars", "3d", "p99_ms"), 3, "[bars.3d] unknown setting 'p99_ms'"),
        (("bars", "3d", "max_ms"), ..., "[bars.3d] max_ms must be a number above 0 up to"),
        # The name is a file name: no path, not . or ..
        *[
            (("name",), name, "name must be 1-64 letters, digits, '.', '-' or '_', other than")
            for name in ["../../x", ".", "..", "", "a b", "x" * 65, "a/b", 5, True, ["lab"]]
        ],
        # The network.
        (("network", "topology"), "ring", "[network] topology must be one of circular, random"),
        (("network", "topology"), 5, "[network] topology must be one of"),
        (("network", "degree"), 4, "would have 4 peers in this random graph but max_peers is 3"),
        (("network", "nodes"), 15, "random regular graph needs N x degree to be even"),
        (("network",), {"nodes": 2}, "degree 3 with 2 nodes: use a degree from 1 to 1"),
        (
            ("network",),
            {"nodes": 2, "topology": "powerlaw"},
            "[network] powerlaw graph needs more than 2 nodes: set nodes = 3 or more",
        ),
        (("network",), {"topology": "circular", "degree": 2}, "degree is for a random topology"),
        # Messages: the whole sending must end within a day.
        (("messages",), {"count": 10_000, "rate": 0.1}, "take over a day (86400 s) to send"),
        # Strategies.
        (("strategy",), [{}, {}], "[[strategy]] 2: another strategy is named 'push' already"),
        (("strategy", 0, "name"), 5, "[[strategy]] 1: name must be 1-64 characters on one line"),
        (("strategy", 0, "name"), "", "[[strategy]] 1: name must be 1-64 characters"),
        (("strategy", 0, "name"), "a\nb", "[[strategy]] 1: name must be 1-64 characters"),
        (("strategy", 0, "mode"), False, "[[strategy]] 1: mode must be one of push, pull"),
        (("strategy", 0, "mode"), "", "[[strategy]] 1: mode must be one of push, pull"),
        (
            ("strategy", 0, "speed"),
            3,
            "[[strategy]] 1: unknown strategy setting 'speed': use name, mode, fanout, interval_ms",
        ),
        (("strategy", 0, "fanout"), "2", "[[strategy]] 1: fanout must be a whole number, not '2'"),
        (("strategy", 0, "ttl"), 0, "[[strategy]] 1: ttl must be between 1 and 1000, not 0"),
        # Faults: every one checked whole, against the network, in the order they happen.
        (("fault", 0, "action"), "explode", "[[fault]] 1: action must be one of partition, heal"),
        (("fault", 0, "action"), ..., "[[fault]] 1: action must be one of partition, heal"),
        (("fault", 0, "action"), ["heal"], "[[fault]] 1: action must be one of"),
        (("fault", 1, "node"), 99, "[[fault]] 2 (pause at 600 ms): node must be a whole number"),
        (("fault", 1, "node"), ..., "node must be a whole number from 1 to 16 (missing)"),
        (("fault", 1, "node"), "5", "node must be a whole number from 1 to 16, not '5'"),
        (("fault", 4, "node"), 3, "[[fault]] 5 (heal at 900 ms): unknown setting 'node'"),
        (("fault", 0, "groups"), [[1, 2], [2, 3]], "must not name a node twice"),
        (("fault", 0, "groups"), ["a"], "groups: a partition group is nodes like 1-8"),
        (("fault", 0, "groups"), ["1-8"], "a partition needs two groups or more"),
        (("fault", 0, "groups"), ["1-8", "9-99"], "groups: node 99 does not exist"),
        (("fault", 0, "groups"), ["1-8", "9-99999999999"], "node 99999999999 does not exist"),
        (("fault", 0, "groups"), ["1-4", "8-5"], "a range of nodes runs low to high"),
        (("fault", 0, "groups"), [[1], [17]], "groups: node 17 does not exist"),
        (("fault", 0, "groups"), [[1], [True]], "groups must hold node numbers, not true"),
        (("fault", 0, "groups"), [[1], ["2"]], "groups must hold node numbers, not '2'"),
        (("fault", 0, "groups"), [[1], []], "groups must be a list of groups"),
        (("fault", 0, "groups"), [1, 2], "groups must be a list of groups"),
        (("fault", 0, "groups"), 5, "groups must be a list of groups"),
        (("fault", 0, "groups"), ..., "groups must be a list of groups"),
        (("fault", 2, "links"), [[1, 99]], "(netem at 700 ms): links: node 99 does not exist"),
        (("fault", 2, "links"), [[3, 3]], "links must be a list of links, each two nodes"),
        (("fault", 2, "links"), [[1, 2, 3]], "links must be a list of links, each two nodes"),
        (("fault", 2, "links"), "1-2", "links must be a list of links, each two nodes"),
        (("fault", 2, "delay_ms"), math.inf, "(netem at 700 ms): field 'delay_ms' must be"),
        (("fault", 2, "jitter_ms"), 1990, "(netem at 700 ms): delay plus jitter must be at most"),
        (("fault", 2), {"action": "netem"}, "[[fault]] 3 (netem at 0 ms): say what to impose"),
        # (in time order: the 4th, moved first, pauses node 5 before the 2nd does)
        (("fault", 3), PAUSE, "[[fault]] 2 (pause at 600 ms): node 5 is paused already by then"),
        (("fault", 1), {**PAUSE, "action": "resume"}, "node 5 is not paused by then"),
        (("network", "nodes"), 2, "[network] degree must be a whole number from 1 to 1, not 3"),
        (("conditions", "groups"), ["1-3", "x"], "[conditions] groups: a partition group"),
        (("conditions", "links"), [[1, 17]], "[conditions] links: node 17 does not exist"),
    ],
)
def test_a_wrong_setting_is_named_before_anything_starts(
    where: tuple[Any, ...], value: Any, error: str
) -> None:
    assert error in refusal(changed(where, value))


def test_a_fault_may_not_pause_every_node() -> None:
    data = {**changed(("network",), TWO_NODES), "conditions": {}}
    data["fault"] = [PAUSE | {"node": 1}, PAUSE | {"node": 2, "at_ms": 10}]
    assert "[[fault]] 2 (pause at 10 ms): that pauses every node" in refusal(data)
    data["fault"][1]["node"] = 1
    data["fault"].insert(1, {"action": "resume", "node": 1, "at_ms": 5})
    assert parse(data, "stem").faults[2].node == 1  # paused, resumed, paused again


def test_the_upper_edges_are_taken() -> None:
    data = changed(("messages",), {"count": 10_000, "rate": 1000, "settle_s": 86_400})
    data["network"] |= {"nodes": 200, "seed": 2**32 - 1}
    data["fault"][4]["at_ms"] = 86_400_000
    data["bars"]["3d"] = {"msgs_per_op": 1_000_000, "median_ms": 86_400_000, "max_ms": 1e-9}
    scenario = parse(data, "stem")
    assert (scenario.nodes, scenario.messages, scenario.settle) == (200, 10_000, 86_400)
    assert scenario.faults[-1].at == 86_400


def test_a_partition_takes_the_command_lines_groups() -> None:
    data = changed(("fault", 0, "groups"), ["1-3,5", "6-8"])
    assert parse(data, "stem").faults[0].changes == {"groups": [[1, 2, 3, 5], [6, 7, 8]]}


def test_the_file_name_names_a_scenario_without_one(tmp_path: Path) -> None:
    assert parse(changed(("name",), ...), "lab-2").name == "lab-2"
    assert "name must be 1-64" in refusal(changed(("name",), ...) | {"name": ".."})
    path = tmp_path / "my lab.toml"
    path.write_bytes(b"[[strategy]]\n")
    with pytest.raises(GossipError, match=r"my lab\.toml: name must be 1-64 letters"):
        load(path)
    path.write_bytes(b"name = '\xff'\n")
    with pytest.raises(GossipError, match="is not UTF-8 text"):
        load(path)


def leaves(table: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every setting's place in ``table``, with the sections and tables that hold them."""
    pairs = table.items() if isinstance(table, dict) else enumerate(table)
    found = [where] if where else []
    for key, value in pairs:
        tables = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        holds = bool(value) and (isinstance(value, dict) or tables)
        found += leaves(value, (*where, key)) if holds else [(*where, key)]
    return found


wild = st.recursive(
    st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(leaves(VALID)), wild | st.just(...)), min_size=1, max_size=3
    )
)
def test_any_change_to_a_valid_scenario_is_taken_or_named_in_one_line(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    data = VALID
    for where, value in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier change's gone
            data = changed(where, value, data)
    try:
        scenario = parse(data, "stem")
    except GossipError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert all(0 <= f.at <= DAY_S and (f.node or 1) <= scenario.nodes for f in scenario.faults)
    assert scenario.rate > 0 and (scenario.messages - 1) / scenario.rate <= DAY_S


BUGS = [
    "[messages]\ncount = 1e400\n",
    "[[fault]]\nat_ms = 99999999999999999999\naction = 'heal'\n",
    "name = '../../x'\n",
    "[[fault]]\naction = 'pause'\nnode = 99\n",
    "[[fault]]\naction = 'partition'\ngroups = [[1, 2], [2, 3]]\n",
    "[network]\nnodes = 'x'\n",
]


@pytest.mark.parametrize("text", BUGS)
def test_the_command_refuses_a_bad_file_in_one_line_and_starts_nothing(
    tmp_path: Path, gossip_home: Path, text: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "[[strategy]]\n")
    pictures = tmp_path / "deep" / "er" / "pictures"  # a name of ../../x stays in tmp_path
    origin = str(free_origin())
    result = gossip_cli("experiment", str(path), "-o", str(pictures), "--port-origin", origin)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(f"gossip: the experiment file {path}: ")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err  # no progress bar
    assert not pictures.exists() and not list(tmp_path.rglob("*.png"))
    assert not list(gossip_home.glob("network-*")) and not gossip_processes(str(gossip_home))


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


@pytest.mark.parametrize("where", ["a file", "under a file", "/dev/null"])
def test_a_picture_directory_that_cannot_be_made_is_refused_before_anything_runs(
    tmp_path: Path, gossip_home: Path, where: str
) -> None:
    """It was found only once every run had ended, and the results went with it."""
    path = tmp_path / "ok.toml"
    path.write_text("[[strategy]]\n")
    afile = tmp_path / "afile"
    afile.write_text("")
    output = {"a file": afile, "under a file": afile / "sub", "/dev/null": Path("/dev/null")}
    origin = str(free_origin())
    result = gossip_cli("experiment", str(path), "-o", str(output[where]), "--port-origin", origin)
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith("gossip: ") and "give -o " in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert not list(gossip_home.glob("network-*")) and not gossip_processes(str(gossip_home))


def test_a_picture_that_cannot_be_written_costs_no_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder where a picture goes, found once every run had ended: the table was lost."""
    from gossip import cli
    from gossip import experiment as lab_experiment

    path = tmp_path / "q.toml"
    path.write_text("name = 'q'\n[[strategy]]\n")
    (tmp_path / "out" / "q-latency.png").mkdir(parents=True)
    ran = [result("push", [[0, 100, 200, 300]] * 3, frames=30)]
    monkeypatch.setattr(lab_experiment, "run", lambda scenario, origin, bar: ran)
    code = cli.main(["experiment", str(path), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "push" in out and "3/3" in out, "the table is out"
    assert err.startswith("gossip: the pictures could not be written: ") and err.count("\n") == 1


@pytest.mark.slow
def test_an_experiment_runs_real_networks_and_leaves_nothing_behind(
    tmp_path: Path, gossip_home: Path
) -> None:
    """Two strategies through a partition and a pause, on real nodes, from the command
    line: every message counted, the pictures drawn, and neither network left as a
    stopped one that commands then offered to resume."""
    path = tmp_path / "small.toml"
    path.write_text(
        "name = 'small'\n[network]\nnodes = 6\ntopology = 'circular'\n"
        "[messages]\ncount = 8\nrate = 20\nsettle_s = 20\n"
        "[[strategy]]\nname = 'push'\n[[strategy]]\nname = 'pull'\nmode = 'pull'\n"
        "interval_ms = 100\n"
        "[[fault]]\nat_ms = 50\naction = 'partition'\ngroups = ['1-3', '4-6']\n"
        "[[fault]]\nat_ms = 150\naction = 'pause'\nnode = 2\n"
        "[[fault]]\nat_ms = 250\naction = 'heal'\n"
        "[[fault]]\nat_ms = 300\naction = 'resume'\nnode = 2\n"
    )
    out = tmp_path / "out"
    origin = str(free_origin())
    earlier = gossip_home / f"network-{origin}"  # a picture draw wrote for another network
    earlier.mkdir(parents=True)
    (earlier / "spread.png").write_bytes(b"mine")
    result = gossip_cli("experiment", str(path), "-o", str(out), "--port-origin", origin)
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if line.startswith(("push", "pull"))]
    assert len(rows) == 2 and all(" 8/8 " in row for row in rows), result.out
    for picture in ("small-coverage.png", "small-latency.png", "small-msgs-per-op.png"):
        assert png_size((out / picture).read_bytes())[0] > 0
    assert [p.name for p in gossip_home.glob("network-*/*")] == ["spread.png"]
    assert not gossip_processes(str(gossip_home))
    (earlier / "spread.png").unlink()
    assert gossip_cli("experiment", str(path), "-o", str(out), "--port-origin", origin).code == 0
    assert not list(gossip_home.glob("network-*")), "an emptied run directory stays"


def test_an_experiment_keeps_a_stopped_networks_messages(tmp_path: Path, gossip_home: Path) -> None:
    """The experiment's networks start afresh in the run directory of its port origin,
    which would delete what a network stopped there kept for ``--resume``."""
    path = tmp_path / "q.toml"
    path.write_text("name = 'q'\n[network]\nnodes = 4\ntopology = 'circular'\n[[strategy]]\n")
    origin = free_origin()
    kept = gossip_home / f"network-{origin}"
    kept.mkdir(parents=True)
    (kept / "node-1.db").write_bytes(b"its messages")
    result = gossip_cli("experiment", str(path), "-o", str(tmp_path), "--port-origin", str(origin))
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith(f"gossip: the network stopped on port origin {origin} keeps ")
    assert "another --port-origin" in result.err and result.err.count("\n") == 1
    assert (kept / "node-1.db").read_bytes() == b"its messages"
    assert not gossip_processes(str(gossip_home))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_experiment_ended_by_a_signal_stops_its_network(
    tmp_path: Path, gossip_home: Path, signum: signal.Signals
) -> None:
    """Ctrl-C, ``timeout`` (SIGTERM) and a closed terminal (SIGHUP) all stop the network
    the experiment runs, rather than leave it serving under the scenario's faults."""
    path = tmp_path / "long.toml"
    path.write_text(
        "name = 'long'\n[network]\nnodes = 6\ntopology = 'circular'\n"
        "[messages]\ncount = 400\nrate = 20\n[[strategy]]\n"
        "[[fault]]\nat_ms = 100\naction = 'pause'\nnode = 2\n"
    )
    origin = str(free_origin())
    command = [sys.executable, "-m", "gossip", "experiment", str(path), "-o", str(tmp_path)]
    runner = subprocess.Popen(
        [*command, "--port-origin", origin],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: len(gossip_processes(str(gossip_home))) == 7, 30, 0.05)
        runner.send_signal(signum)
        _, err = runner.communicate(timeout=60)
        left = gossip_processes(str(gossip_home))
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
        gossip_cli("stop-network", "--port-origin", origin)
    assert runner.returncode == 130, err
    assert err.splitlines()[-1] == "gossip: interrupted" and "Traceback" not in err
    assert left == []
    assert not list(gossip_home.glob("network-*/node-*")), "nothing kept to resume"


def test_an_experiment_interrupted_as_its_network_starts_stops_it(
    gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal the moment the start returns, before the experiment took the network
    on: it is stopped all the same. A network that ran there before is left alone."""
    from gossip import experiment, network

    real = network.start
    monkeypatch.setattr(network, "start", interrupted_after(real))
    net = network.plan({1: [2], 2: [1]}, free_origin(), 3, "circular")
    try:
        with pytest.raises(KeyboardInterrupt), experiment.running(net):
            pass
        left = gossip_processes(str(gossip_home))
    finally:
        network.stop_processes(net.directory)
    assert left == []
    monkeypatch.setattr(network, "start", real)
    network.start(net)
    try:
        with pytest.raises(GossipError, match="already"), experiment.running(net):
            pass
        left = gossip_processes(str(gossip_home))
    finally:
        network.stop_processes(net.directory)
    assert len(left) == 3, "the network that ran there first runs on"
