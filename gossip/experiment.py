"""``gossip experiment FILE``: a TOML scenario run once per strategy on a fresh network.

The scenario (``gossip.scenario``, checked whole before anything starts) gives the
network, the strategies to compare, the conditions, faults at given times and messages
at a rate. Each strategy gets a fresh network of real node processes; the messages are
submitted while the faults happen, then the run waits until every live node holds every
message (or ``settle_s`` runs out) and reads what the nodes recorded. The figures are the
nodes' own: arrival times on each node's clock, frames from their counters. ``Result``
holds them; ``gossip.labplots`` draws them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gossip import lab, network, state
from gossip.errors import GossipError
from gossip.network import client_for, survey, surveyor, wait_until
from gossip.protocol import MessageView
from gossip.scenario import Bar, Fault, Scenario
from gossip.state import NetworkState

GOSSIP_FRAMES = ("RELAY", "RELAYS", "SYNC", "IDS", "PULL")
"""The frames that spread messages: what msgs/op counts (links and pings are left out)."""

DEFAULT_PORT_ORIGIN = 17000


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

    def meets(self, bar: Bar) -> bool:
        """Whether every message was delivered, within the bar's cost and latencies."""
        return (
            self.delivered == self.submitted
            and self.msgs_per_op < bar.msgs_per_op
            and self.latency(50) < bar.median_ms
            and self.latency(100) < bar.max_ms
        )

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


def run(
    scenario: Scenario, port_origin: int, progress: Callable[[float, str], None]
) -> list[Result]:
    """Each strategy on a fresh network; their results, in the scenario's order."""
    graph = scenario.graph
    results = []
    for name, strategy in scenario.strategies.items():
        net = network.plan(graph.neighbours, port_origin, scenario.max_peers, graph.description)
        if not results:
            _refuse_kept(net.directory, port_origin)
        net.strategy = strategy.as_dict()
        with running(net) as directory:
            results.append(_measure(scenario, name, net, directory, progress))
    return results


def _refuse_kept(directory: Path, origin: int) -> None:
    """GossipError if a network stopped on this port origin keeps its messages there: each
    of the experiment's networks starts afresh in that run directory, which deletes them.
    (A network running there is refused by the start, in its own words.)"""
    if any(directory.glob("node-*.db")) and state.running(directory) is None:
        raise GossipError(
            f"the network stopped on port origin {origin} keeps its messages in {directory}, "
            "and the experiment's networks would delete them: give the experiment another "
            "--port-origin, or delete that folder if they are no longer wanted"
        )


@contextlib.contextmanager
def running(net: NetworkState) -> Iterator[Path]:
    """A started network, stopped when the block ends, whatever happens, and what it left
    in its run directory deleted: left, it was a stopped network that commands offered to
    resume. Anything else there (pictures ``draw`` wrote for an earlier network) stays.

    The start is inside the block, so an interrupt the moment it returns still stops the
    network; one that ran there before is not this block's to stop (the start refuses it,
    in its own words)."""
    directory = net.directory
    ours = not state.processes_of(directory)
    try:
        yield network.start(net)
    finally:
        if ours:
            with contextlib.suppress(GossipError, OSError):
                network.stop(directory, net)
                if not state.processes_of(directory):
                    network.forget(directory)


def _measure(
    scenario: Scenario,
    name: str,
    net: NetworkState,
    directory: Path,
    progress: Callable[[float, str], None],
) -> Result:
    if scenario.conditions:
        lab.impose(directory, net, scenario.conditions)
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


def _fault(directory: Path, net: NetworkState, fault: Fault) -> None:
    """Carry out one fault of the scenario, as the command line would."""
    if fault.node is None:
        lab.impose(directory, net, fault.changes)
    else:
        lab.pause(directory, net, fault.node, stop=fault.action == "pause")


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
                *("PASS" if r.meets(b) else "FAIL" for b in bars),
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
