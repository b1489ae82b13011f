"""``gossip experiment FILE``: a TOML scenario run once per strategy on a fresh network.

The scenario gives the network (size, topology, seed), the strategies to compare, the
conditions, faults at given times and messages at a rate. Each strategy gets a fresh
network of real node processes; the messages are submitted while the faults happen, then
the run waits until every live node holds every message (or ``settle_s`` runs out) and
reads what the nodes recorded. The figures are the nodes' own: arrival times on each
node's clock, frames from their counters. ``Result`` holds them; ``gossip.labplots``
draws them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip import lab, network, state
from gossip.errors import GossipError
from gossip.network import client_for, survey, surveyor, wait_until
from gossip.protocol import MessageView
from gossip.state import NetworkState
from gossip.strategy import Strategy, strategy_from

GOSSIP_FRAMES = ("RELAY", "RELAYS", "SYNC", "IDS", "PULL")
"""The frames that spread messages: what msgs/op counts (links and pings are left out)."""

ACTIONS = ("partition", "heal", "pause", "resume", "netem")

DEFAULT_PORT_ORIGIN = 17000


@dataclass(frozen=True)
class Bar:
    """A target a strategy meets or not, as Gossip Glomers sets them."""

    name: str
    msgs_per_op: float
    median_ms: float
    max_ms: float

    def met(self, result: Result) -> bool:
        return (
            result.delivered == result.submitted
            and result.msgs_per_op < self.msgs_per_op
            and result.latency(50) < self.median_ms
            and result.latency(100) < self.max_ms
        )


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the first message."""
    action: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: int
    topology: str
    degree: int | None
    max_peers: int
    seed: int
    messages: int
    rate: float
    settle: float
    strategies: dict[str, Strategy]
    conditions: dict[str, Any]
    faults: tuple[Fault, ...]
    bars: tuple[Bar, ...]


@dataclass
class Result:
    """What one strategy's run measured."""

    strategy: str
    submitted: int
    delivered: int = 0
    """Messages every live node holds."""
    spreads: list[list[float]] = field(default_factory=list)
    """Per message: the ms after sending at which each live node first held it, sorted."""
    frames: int = 0
    duplicates: int = 0
    live: int = 0
    unanswered: int = 0
    """Submissions no node acknowledged (sent to a paused node, say): not counted."""

    @property
    def msgs_per_op(self) -> float:
        return self.frames / self.submitted if self.submitted else 0.0

    def all_reached(self) -> list[float]:
        """Per fully delivered message: ms until the last live node held it."""
        return sorted(s[-1] for s in self.spreads if len(s) == self.live)

    def latency(self, percentile: float) -> float:
        """The nearest-rank percentile of ``all_reached`` (infinite if none was)."""
        done = self.all_reached()
        if not done:
            return float("inf")
        index = min(len(done) - 1, max(0, math.ceil(percentile / 100 * len(done)) - 1))
        return done[index]


def load(path: Path) -> Scenario:
    """The scenario in ``path``; GossipError saying what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise GossipError(f"cannot read the experiment file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GossipError(f"the experiment file {path} is not valid TOML: {exc}") from None
    where = f"the experiment file {path}"
    try:
        return _scenario(data, path.stem)
    except (GossipError, TypeError, ValueError) as exc:
        raise GossipError(f"{where}: {exc}") from None


def _scenario(data: dict[str, Any], stem: str) -> Scenario:
    net = data.get("network", {})
    send = data.get("messages", {})
    strategies = data.get("strategy", [])
    if not isinstance(strategies, list) or not strategies:
        raise GossipError("give one or more [[strategy]] tables (name, mode, fanout, ...)")
    chosen = {}
    for table in strategies:
        fields = dict(table)
        name = str(fields.pop("name", fields.get("mode", "push")))
        chosen[name] = strategy_from(fields)
    faults = []
    for table in data.get("fault", []):
        fields = dict(table)
        action = fields.pop("action", None)
        if action not in ACTIONS:
            raise GossipError(f"a fault's action must be one of {', '.join(ACTIONS)}")
        faults.append(Fault(float(fields.pop("at_ms", 0)) / 1000, action, fields))
    bars = [
        Bar(str(name), float(b["msgs_per_op"]), float(b["median_ms"]), float(b["max_ms"]))
        for name, b in data.get("bars", {}).items()
    ]
    scenario = Scenario(
        name=str(data.get("name", stem)),
        nodes=int(net.get("nodes", 16)),
        topology=str(net.get("topology", "random")),
        degree=int(net["degree"]) if "degree" in net else None,
        max_peers=int(net.get("max_peers", 3)),
        seed=int(net.get("seed", 1)),
        messages=int(send.get("count", 10)),
        rate=float(send.get("rate", 10)),
        settle=float(send.get("settle_s", 10)),
        strategies=chosen,
        conditions=dict(data.get("conditions", {})),
        faults=tuple(sorted(faults, key=lambda f: f.at)),
        bars=tuple(bars),
    )
    if not 2 <= scenario.nodes <= 200 or not 1 <= scenario.messages <= 10_000:
        raise GossipError("nodes must be 2-200 and messages.count 1-10000")
    if scenario.rate <= 0 or scenario.settle <= 0:
        raise GossipError("messages.rate and messages.settle_s must be above 0")
    return scenario


def run(
    scenario: Scenario, port_origin: int, progress: Callable[[float, str], None]
) -> list[Result]:
    """Each strategy on a fresh network; their results, in the scenario's order."""
    from gossip import topology

    graph = topology.build(
        scenario.topology,
        scenario.nodes,
        scenario.max_peers,
        degree=scenario.degree,
        seed=scenario.seed,
    )
    results = []
    for name, strategy in scenario.strategies.items():
        net = network.plan(graph.neighbours, port_origin, scenario.max_peers, graph.description)
        net.strategy = strategy.as_dict()
        with running(net) as directory:
            results.append(_measure(scenario, name, net, directory, progress))
    return results


@contextlib.contextmanager
def running(net: NetworkState) -> Iterator[Path]:
    """A started network, stopped when the block ends, whatever happens."""
    directory = network.start(net)
    try:
        yield directory
    finally:
        with contextlib.suppress(GossipError, OSError):
            network.stop(directory, net)


def _measure(
    scenario: Scenario,
    name: str,
    net: NetworkState,
    directory: Path,
    progress: Callable[[float, str], None],
) -> Result:
    if scenario.conditions:
        lab.impose(directory, net, _conditions(scenario.conditions))
    result = Result(name, scenario.messages)
    numbers = net.live_numbers()
    faults = list(scenario.faults)
    posts: list[Future[str | None]] = []

    def post(number: int, text: str) -> str | None:
        try:
            return client_for(net, net.nodes[number]).post(text).id
        except GossipError:
            return None  # a paused node, say: left out, and said so

    senders = ThreadPoolExecutor(max_workers=8)  # a hung node must not hold up the schedule
    began = time.monotonic()
    for i in range(scenario.messages):
        due = began + i / scenario.rate
        while faults and faults[0].at <= due - began:
            _fault(directory, net, faults.pop(0))
        time.sleep(max(0.0, due - time.monotonic()))
        posts.append(senders.submit(post, numbers[i % len(numbers)], f"{name} {i}"))
        progress((i + 1) / scenario.messages / 2, f"{name}: sent {i + 1}/{scenario.messages}")
    for fault in faults:
        time.sleep(max(0.0, began + fault.at - time.monotonic()))
        _fault(directory, net, fault)
    senders.shutdown(wait=True)
    ids = [i for i in (p.result() for p in posts) if i is not None]
    paused = set(lab.current(state.load(directory) or net).paused)
    live = [n for n in numbers if n not in paused]
    held: dict[int, dict[str, MessageView]] = {}

    def look(number: int) -> dict[str, MessageView]:
        try:
            return {v.id: v for v in surveyor(net, number).read_messages("all", peek=True)}
        except GossipError:
            return {}

    def everywhere() -> bool:
        held.update(zip(live, survey(live, look), strict=True))
        count = sum(all(i in held[n] for n in live) for i in ids)
        done = 0.5 + count / max(len(ids), 1) / 2
        progress(done, f"{name}: {count}/{len(ids)} messages on all {len(live)} live nodes")
        return count == len(ids)

    wait_until(everywhere, scenario.settle, interval=0.2)
    result.submitted = len(ids)
    result.unanswered = scenario.messages - len(ids)
    result.live = len(live)
    for message_id in ids:
        views = [held[n][message_id] for n in live if message_id in held[n]]
        result.spreads.append(
            sorted(max(0.0, (v.copies[0].arrived - v.sent) * 1000) for v in views)
        )
    result.delivered = sum(len(s) == len(live) for s in result.spreads)
    for number in live:
        with contextlib.suppress(GossipError):
            counters = surveyor(net, number).status()["counters"]
            result.frames += sum(counters["frames_out"].get(k, 0) for k in GOSSIP_FRAMES)
            result.duplicates += counters["duplicates"]
    return result


def _conditions(fields: dict[str, Any]) -> dict[str, Any]:
    known = {"delay_ms", "jitter_ms", "loss_percent", "links", "groups"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise GossipError(f"unknown condition {unknown[0]!r}: use {', '.join(sorted(known))}")
    return fields


def _fault(directory: Path, net: NetworkState, fault: Fault) -> None:
    """Carry out one fault of the scenario, as the command line would."""
    if fault.action == "partition":
        lab.impose(directory, net, {"groups": fault.fields["groups"]})
    elif fault.action == "heal":
        lab.impose(directory, net, {"groups": []})
    elif fault.action == "netem":
        lab.impose(directory, net, _conditions(fault.fields))
    else:
        lab.pause(directory, net, int(fault.fields["node"]), stop=fault.action == "pause")


def table(results: list[Result], bars: tuple[Bar, ...]) -> str:
    """The results as a table, with a PASS/FAIL column for each bar."""
    head = ["strategy", "delivered", "msgs/op", "p50 ms", "p99 ms", "max ms", "dups/msg"]
    head += [b.name for b in bars]
    rows = [head]
    for r in results:
        rows.append(
            [
                r.strategy,
                f"{r.delivered}/{r.submitted}",
                f"{r.msgs_per_op:.1f}",
                _ms(r.latency(50)),
                _ms(r.latency(99)),
                _ms(r.latency(100)),
                f"{r.duplicates / max(r.submitted, 1):.1f}",
                *("PASS" if b.met(r) else "FAIL" for b in bars),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    for r in results:
        if r.unanswered:
            lines.append(
                f"{r.strategy}: {r.unanswered} of {r.submitted + r.unanswered} submissions were "
                "not acknowledged (their node was paused or cut off) and are left out"
            )
    for bar in bars:
        lines.append(
            f"{bar.name}: msgs/op < {bar.msgs_per_op:g}, median < {bar.median_ms:g} ms, "
            f"max < {bar.max_ms:g} ms, every message delivered"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return "-" if value == float("inf") else f"{value:.0f}"


class ProgressBar:
    """Progress on stderr: a bar redrawn in place on a terminal, else a line per change."""

    WIDTH = 30

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, done: float, text: str) -> None:
        filled = round(max(0.0, min(done, 1.0)) * self.WIDTH)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {text}"
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[K{line}")
        elif line != self.last:
            sys.stderr.write(line + "\n")
        self.last = line
        sys.stderr.flush()

    def end(self) -> None:
        if sys.stderr.isatty() and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()
