"""An experiment's scenario file (``gossip experiment FILE``), read and checked whole.

Every field is checked for its type and range, and every fault against the network it
will hit (its node numbers, its partition groups, the conditions in force by then, a
pause before its resume), so that a mistake costs one line at once, before a network is
started and messages are sent. No I/O but reading the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gossip import topology
from gossip.conditions import Conditions, conditions_from, group
from gossip.config import checked_name, file_advice
from gossip.errors import GossipError
from gossip.protocol import FrameError
from gossip.strategy import Strategy, strategy_from
from gossip.topology import Topology

MAX_NODES = 200
MAX_MESSAGES = 10_000
MAX_RATE = 1000
"""Messages a second: eight threads send them, each waiting for its node's answer."""
DAY_S = 86_400
"""The longest wait a scenario may ask for: a fault's time, settle_s, sending the messages."""
MAX_MSGS_PER_OP = 1_000_000
MAX_SEED = 2**32 - 1

SECTIONS = ("name", "network", "messages", "conditions", "strategy", "fault", "bars")
NETWORK = ("nodes", "topology", "degree", "max_peers", "seed")
MESSAGES = ("count", "rate", "settle_s")
CONDITIONS = ("delay_ms", "jitter_ms", "loss_percent", "links", "groups")
BAR = (("msgs_per_op", MAX_MSGS_PER_OP), ("median_ms", DAY_S * 1000), ("max_ms", DAY_S * 1000))
"""A bar's settings, each with its highest value."""
ACTIONS = {
    "partition": ("groups",),
    "heal": (),
    "pause": ("node",),
    "resume": ("node",),
    "netem": CONDITIONS,
}
"""Each fault's action and the settings it takes besides ``action`` and ``at_ms``."""


@dataclass(frozen=True)
class Bar:
    """A target a strategy meets or not, as Gossip Glomers sets them."""

    name: str
    msgs_per_op: float
    median_ms: float
    max_ms: float


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the first message."""
    action: str
    changes: dict[str, Any]
    """What partition, heal and netem change in the conditions (``Conditions.as_dict`` form)."""
    node: int | None = None
    """The node pause and resume stop or continue."""


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: int
    graph: Topology
    max_peers: int
    messages: int
    rate: float
    settle: float
    strategies: dict[str, Strategy]
    conditions: dict[str, Any]
    faults: tuple[Fault, ...]
    bars: tuple[Bar, ...]


def load(path: Path) -> Scenario:
    """The scenario in ``path``; GossipError saying what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise GossipError(f"cannot read the experiment file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GossipError(f"the experiment file {path} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # bad TOML, an integer of 4300 digits, depth
        raise GossipError(f"the experiment file {path} is not valid TOML: {exc}") from None
    try:
        return parse(data, path.stem)
    except GossipError as exc:
        raise GossipError(f"the experiment file {path}: {exc}") from None


def parse(data: dict[str, Any], stem: str) -> Scenario:
    """The scenario a file's table describes (``stem`` names it if it does not); a
    GossipError naming the first setting that is wrong, and what it must be."""
    _known(data, SECTIONS, "")
    name = checked_name(data.get("name", stem))
    net = _table(data.get("network", {}), "[network]")
    _known(net, NETWORK, "[network] ")
    nodes = _whole(net.get("nodes", 16), "[network] nodes", 2, MAX_NODES)
    max_peers = _whole(net.get("max_peers", 3), "[network] max_peers", 1, MAX_NODES)
    graph = _graph(net, nodes, max_peers)
    send = _table(data.get("messages", {}), "[messages]")
    _known(send, MESSAGES, "[messages] ")
    count = _whole(send.get("count", 10), "[messages] count", 1, MAX_MESSAGES)
    rate = _number(send.get("rate", 10), "[messages] rate (a second)", MAX_RATE, zero=False)
    if (count - 1) / rate > DAY_S:
        raise GossipError(
            f"[messages] {count} messages at {rate:g} a second take over a day ({DAY_S} s) "
            "to send: raise rate or lower count"
        )
    conditions = _table(data.get("conditions", {}), "[conditions]")
    _known(conditions, CONDITIONS, "[conditions] ")
    conditions = _changes(conditions, nodes, "[conditions] ")
    faults = [
        _fault(index, table, nodes)
        for index, table in enumerate(_tables(data.get("fault", []), "[[fault]]"), 1)
    ]
    faults.sort(key=lambda labelled: labelled[1].at)  # stable: file order among equal times
    _rehearse(conditions, faults, nodes)
    return Scenario(
        name=name,
        nodes=nodes,
        graph=graph,
        max_peers=max_peers,
        messages=count,
        rate=rate,
        settle=_number(send.get("settle_s", 10), "[messages] settle_s", DAY_S, zero=False),
        strategies=_strategies(data.get("strategy")),
        conditions=conditions,
        faults=tuple(fault for _, fault in faults),
        bars=tuple(_bars(data.get("bars", {}))),
    )


def _graph(net: dict[str, Any], nodes: int, max_peers: int) -> Topology:
    """The starting topology, built now: one that cannot be says so before anything runs."""
    kind = net.get("topology", "random")
    if not isinstance(kind, str) or kind not in topology.KINDS:
        raise GossipError(
            f"[network] topology must be one of {', '.join(topology.KINDS)}{_not(kind)}"
        )
    degree = net.get("degree")
    if degree is not None:
        if kind != "random":
            raise GossipError(f"[network] degree is for a random topology only, not {kind}")
        degree = _whole(degree, "[network] degree", 1, nodes - 1)
    seed = _whole(net.get("seed", 1), "[network] seed", 0, MAX_SEED)
    try:
        return topology.build(kind, nodes, max_peers, degree=degree, seed=seed)
    except GossipError as exc:
        raise GossipError(f"[network] {file_advice(str(exc))}") from None


def _strategies(value: object) -> dict[str, Strategy]:
    if not isinstance(value, list) or not value or not all(isinstance(t, dict) for t in value):
        raise GossipError("give one or more [[strategy]] tables (name, mode, fanout, ...)")
    chosen: dict[str, Strategy] = {}
    for index, table in enumerate(value, 1):
        fields = dict(table)
        given = fields.pop("name", None)
        try:
            strategy = strategy_from(fields, in_file=True, also=("name",))
        except GossipError as exc:
            raise GossipError(f"[[strategy]] {index}: {exc}") from None
        name = strategy.mode if given is None else given
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable():
            raise GossipError(f"[[strategy]] {index}: name must be 1-64 characters on one line")
        if name in chosen:
            raise GossipError(
                f"[[strategy]] {index}: another strategy is named {name!r} already: give each "
                'its own name = "..."'
            )
        chosen[name] = strategy
    return chosen


def _fault(index: int, table: dict[str, Any], nodes: int) -> tuple[str, Fault]:
    """The fault of the ``index``-th ``[[fault]]`` table, with the label errors name it by."""
    action = table.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise GossipError(
            f"[[fault]] {index}: action must be one of {', '.join(ACTIONS)}{_not(action)}"
        )
    at_ms = _number(table.get("at_ms", 0), f"[[fault]] {index}: at_ms", DAY_S * 1000, zero=True)
    label = f"[[fault]] {index} ({action} at {at_ms:.12g} ms): "
    _known(table, ("action", "at_ms", *ACTIONS[action]), label)
    at = at_ms / 1000
    if action in ("pause", "resume"):
        return label, Fault(at, action, {}, _whole(table.get("node"), f"{label}node", 1, nodes))
    if action == "heal":
        return label, Fault(at, action, {"groups": []})
    if action == "partition":
        groups = _groups(table.get("groups"), nodes, label)
        if len(groups) < 2:
            raise GossipError(
                f'{label}a partition needs two groups or more, as groups = ["1-8", "9-16"]'
            )
        return label, Fault(at, action, {"groups": groups})
    fields = {k: v for k, v in table.items() if k in CONDITIONS}
    if not fields:
        raise GossipError(f"{label}say what to impose: {', '.join(CONDITIONS)}")
    return label, Fault(at, action, _changes(fields, nodes, label))


def _changes(fields: dict[str, Any], nodes: int, where: str) -> dict[str, Any]:
    """Conditions as a file gives them, in ``Conditions.as_dict`` form: groups spelt out,
    every node named one of the ``nodes``. Their values are checked by ``_rehearse``."""
    changes = dict(fields)
    if "groups" in changes:
        changes["groups"] = _groups(changes["groups"], nodes, where)
    if "links" in changes:
        changes["links"] = _links(changes["links"], nodes, where)
    return changes


def _groups(value: object, nodes: int, where: str) -> list[list[int]]:
    """A partition's groups, each as ``gossip partition`` takes it ("1-8", "1,3,5-7") or a
    list of node numbers."""
    shape = f'{where}groups must be a list of groups, each like "1-8" or [1, 2, 3]'
    if not isinstance(value, list):
        raise GossipError(shape)
    groups = []
    for given in value:
        if isinstance(given, str):
            try:
                groups.append(group(given, nodes))
            except GossipError as exc:
                raise GossipError(f"{where}groups: {exc}") from None
        elif isinstance(given, list) and given:
            groups.append(_node_numbers(given, nodes, f"{where}groups"))
        else:
            raise GossipError(shape)
    return groups


def _links(value: object, nodes: int, where: str) -> list[list[int]]:
    shape = f"{where}links must be a list of links, each two nodes as [3, 7]"
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise GossipError(shape)
    links = [_node_numbers(pair, nodes, f"{where}links") for pair in value]
    if any(a == b for a, b in links):
        raise GossipError(shape)
    return links


def _node_numbers(value: list[Any], nodes: int, what: str) -> list[int]:
    for number in value:
        if type(number) is not int:
            raise GossipError(f"{what} must hold node numbers, not {_shown(number)}")
        if not 1 <= number <= nodes:
            raise GossipError(f"{what}: node {number} does not exist: the nodes run up to {nodes}")
    return value


def _rehearse(conditions: dict[str, Any], faults: list[tuple[str, Fault]], nodes: int) -> None:
    """Play the conditions and the faults, in the order the run will, on paper: a
    GossipError for the first the run would refuse (its conditions out of range together,
    a node paused twice or resumed unpaused) or could not measure (every node paused)."""
    now = _conditions(conditions, "[conditions] ")
    paused: set[int] = set()
    for label, fault in faults:
        if fault.node is None:
            now = _conditions({**now.as_dict(), **fault.changes}, label)
        elif fault.action == "pause" and fault.node in paused:
            raise GossipError(f"{label}node {fault.node} is paused already by then")
        elif fault.action == "resume" and fault.node not in paused:
            raise GossipError(f"{label}node {fault.node} is not paused by then: pause it first")
        else:
            paused ^= {fault.node}
        if len(paused) == nodes:
            raise GossipError(f"{label}that pauses every node: leave one running")


def _conditions(fields: dict[str, Any], where: str) -> Conditions:
    try:
        return conditions_from(fields)
    except FrameError as exc:
        raise GossipError(f"{where}{exc}") from None


def _bars(value: object) -> list[Bar]:
    bars = []
    for name, table in _table(value, "[bars]").items():
        if not 1 <= len(name) <= 64 or not name.isprintable():
            raise GossipError("[bars] a bar's name must be 1-64 characters on one line")
        where = f"[bars.{name}] "
        _known(_table(table, where.strip()), tuple(k for k, _ in BAR), where)
        figures = [_number(table.get(k), where + k, highest, zero=False) for k, highest in BAR]
        bars.append(Bar(name, *figures))
    return bars


def _table(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GossipError(f"{what} must be a table of settings")
    return value


def _tables(value: object, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise GossipError(f"{what} must be tables, each under its own {what} line")
    return value


def _known(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise GossipError(f"{where}unknown setting {unknown[0]!r}: use {', '.join(known)}")


def _whole(value: object, what: str, lowest: int, highest: int) -> int:
    """A whole number (not a bool, not a float) from ``lowest`` to ``highest``."""
    if type(value) is not int or not lowest <= value <= highest:
        raise GossipError(f"{what} must be a whole number from {lowest} to {highest}{_not(value)}")
    return value


def _number(value: object, what: str, highest: int, zero: bool) -> float:
    """A finite number, whole or not, from 0 (or above it) to ``highest``; NaN fails
    every comparison, so it is refused with the rest."""
    least = "from 0" if zero else "above 0"
    wrong = GossipError(f"{what} must be a number {least} up to {highest}{_not(value)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong
    if not (value >= 0 if zero else value > 0) or not value <= highest:
        raise wrong
    return float(value)


def _not(value: object) -> str:
    """``, not 'x'`` for a message, cut short; `` (missing)`` for a setting not given."""
    if value is None:
        return " (missing)"
    return f", not {_shown(value)}"


def _shown(value: object) -> str:
    """A value as the file wrote it: TOML's true, false, inf and nan, not Python's."""
    spelled = {True: "true", False: "false"}.get(value) if isinstance(value, bool) else None
    if isinstance(value, float) and value != value:
        spelled = "nan"
    elif isinstance(value, float) and abs(value) == float("inf"):
        spelled = "inf" if value > 0 else "-inf"
    text = spelled or repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
