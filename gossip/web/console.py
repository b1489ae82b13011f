"""The network as the page sees it and drives it: surveys, spreads and the CLI's actions.

Plain blocking code over ``gossip.network`` and ``gossip.spread`` (the same functions the
CLI calls), so the web server only decides when to call it; and nothing it returns holds
the network's secret: what reaches the page is built here, from what the nodes report.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gossip import lab, network, render, state
from gossip.client import Receipt
from gossip.conditions import Conditions
from gossip.errors import GossipError
from gossip.protocol import MessageView, text_problem
from gossip.spread import Arrival, first_arrivals
from gossip.status import NodeStatus

SPREAD_TIMEOUT = 10.0
"""Seconds a message sent from the page gets to reach every live node."""
KILL_TIMEOUT = 5.0
FOLLOW_MOST = 1000
"""A node holding more messages than this is too busy to have its newest one looked for
after every survey (and a replay of one message among hundreds a second shows little)."""

Finder = Callable[[], tuple[Path, state.NetworkState]]
"""Finds the network again, as the CLI does (it changes: nodes come and go)."""


@dataclass(frozen=True)
class Survey:
    """What every node said at one moment: the rows ``gossip status`` shows."""

    network: state.NetworkState
    rows: list[NodeStatus]
    conditions: str = ""
    """The lab's conditions in force, in words (``gossip status`` says the same)."""
    at: float = field(default_factory=time.time)

    def up(self) -> list[int]:
        return [r.entry.number for r in self.rows if r.state == "up"]

    def view(self) -> dict[str, Any]:
        """The page's picture of the network: ``status --json``, each node's counters
        and the conditions in force."""
        parts = network.parts(network.live_links(self.rows))
        shown = render.status_json(self.network, self.rows, parts, self.at)
        for node, row in zip(shown["nodes"], self.rows, strict=True):
            node["counters"] = row.report.get("counters") if row.state == "up" else None
        survey = {"type": "survey", "label": self.network.label, **shown}
        return {**survey, "conditions": self.conditions, "at": self.at}


@dataclass(frozen=True)
class Spread:
    """How one message spread: its first-arrival tree, as ``draw --message`` shows it."""

    message_id: str
    text: str
    arrivals: list[Arrival]
    expected: int
    """Live nodes when it was looked at."""

    @property
    def everywhere(self) -> bool:
        return len(self.arrivals) >= self.expected

    @property
    def seconds(self) -> float:
        """Sent until the last node got its first copy."""
        return self.arrivals[-1].delay_ms / 1000 if self.arrivals else 0.0

    def view(self) -> dict[str, Any]:
        return {
            "type": "spread",
            "id": self.message_id,
            "text": self.text,
            "expected": self.expected,
            "arrivals": [
                {"node": a.node, "parent": a.parent, "hops": a.hops, "delay_ms": a.delay_ms}
                for a in self.arrivals
            ],
        }


class Follower:
    """Notices messages submitted elsewhere (the CLI, a script) from the nodes' counters,
    so the page can show them spreading too; those sent from the page it follows itself."""

    def __init__(self) -> None:
        self.submitted: dict[int, int] = {}
        self.ours: Counter[int] = Counter()
        """Messages the page sent, by node, that no survey has counted yet."""

    def sent_here(self, number: int) -> None:
        self.ours[number] += 1

    def not_sent(self, number: int) -> None:
        """A send from the page that failed: the node counts nothing."""
        self.ours[number] -= 1

    def new_elsewhere(self, survey: Survey) -> list[int]:
        """Nodes that took a message from elsewhere since the last survey and hold few
        enough (FOLLOW_MOST) to look for it. A restarted node counts from 0: no news."""
        now: dict[int, int] = {}
        held: dict[int, int] = {}
        for row in survey.rows:
            if row.state == "up":
                counted = row.report.get("counters") or {}
                now[row.entry.number] = int(counted.get("submitted", 0))
                held[row.entry.number] = int(row.report.get("messages", 0))
        found = []
        for number, count in now.items():
            grown = max(0, count - self.submitted.get(number, count))
            ours = min(grown, self.ours[number])
            self.ours[number] -= ours
            if grown > ours and held[number] <= FOLLOW_MOST:
                found.append(number)
        self.submitted.update(now)  # a node that missed this look keeps its last count
        return found


def held_still(net: state.NetworkState, conditions: Conditions) -> set[int]:
    """The nodes the lab holds paused (SIGSTOP), bar one of this host that has died since
    (killed while paused): that one is down, and asking it says so at once."""
    nodes = net.nodes
    return {n for n in conditions.paused if n in nodes and state.may_run(nodes[n], net.directory)}


def answering(net: state.NetworkState, number: int) -> state.NodeEntry:
    """Node ``number``, unless it cannot answer because the lab paused it: asking would
    hold the page's one action at a time for the client's whole timeout (the resume that
    would mend it too), so it is refused at once, as the command line refuses it."""
    entry = net.node(number)
    if lab.halted(net, entry, net.directory):
        raise GossipError(f"node {number} is paused: resume it first")
    return entry


class Console:
    """The CLI's commands for one network, as the web server calls them (from threads)."""

    def __init__(self, find: Finder) -> None:
        self.find = find
        self.closing = threading.Event()
        """Set as the server stops: a watch under way ends at its next look, rather than
        hold the stop for the rest of SPREAD_TIMEOUT (a paused node never gets it)."""

    def close(self) -> None:
        self.closing.set()

    def _open(self, *_: object) -> None:
        """GossipError once the server stops (``await_spread`` calls it after each look)."""
        if self.closing.is_set():
            raise GossipError("the page's server is stopping")

    def survey(self) -> Survey:
        """Every node's status; a paused one (the lab's SIGSTOP) is not asked, as it could
        only keep the survey waiting SURVEY_TIMEOUT for no answer, unless this host's node
        has died since (killed while paused): asked, it is down, as the command line says."""
        _, net = self.find()
        conditions = lab.current(net)
        paused = held_still(net, conditions)
        asked = replace(net, nodes={n: e for n, e in net.nodes.items() if n not in paused})
        rows = network.status(asked) if asked.nodes else []
        rows += [NodeStatus(net.nodes[n], "paused", {}) for n in paused if n in net.nodes]
        rows.sort(key=lambda r: r.entry.number)
        return Survey(net, rows, conditions.describe(net.live_numbers()))

    def send(self, number: int, text: str) -> Receipt:
        """Submit a message to a node, checked as send-message checks it."""
        problem = text_problem(text)
        if problem is not None:
            raise GossipError(problem)
        _, net = self.find()
        return network.client_for(net, answering(net, number)).post(text)

    def watch(self, message_id: str, text: str, nodes: list[int]) -> Spread:
        """Wait until the listed nodes hold a message just sent (or SPREAD_TIMEOUT passes),
        then how it spread. A paused node is not asked: it cannot have it, and each look
        at it would wait for its answer until the client gives up."""
        _, net = self.find()
        began = time.monotonic()
        asked = sorted(set(nodes) - held_still(net, lab.current(net)))
        network.await_spread(
            net, message_id, SPREAD_TIMEOUT, nodes=asked, interval=0.02, progress=self._open
        )
        held: dict[int, MessageView] = {}

        def complete() -> bool:  # a node slow to answer one look may answer the next
            self._open()
            found = network.holders_of(net, text, asked).items()
            held.update((n, v) for n, v in found if v.id == message_id)
            return set(asked) <= set(held)

        left = SPREAD_TIMEOUT - (time.monotonic() - began)
        network.wait_until(complete, max(left, 0.0), interval=0.2)
        live = set(nodes) | set(held)  # one that missed the last survey may hold it too
        return Spread(message_id, text, first_arrivals(held), len(live))

    def newest_from(self, number: int) -> tuple[str, str] | None:
        """The id and text of the newest message submitted to this node, if any."""
        _, net = self.find()
        views = network.surveyor(net, number).read_messages("all", peek=True)
        own = [v for v in views if v.copies and v.copies[0].path == (number,)]
        newest = max(own, key=lambda v: v.sent, default=None)
        return None if newest is None else (newest.id, newest.text)

    def spread_of(self, text: str) -> Spread:
        """How the newest message with this text spread, as ``draw --message`` finds it."""
        _, net = self.find()
        held = network.holders_of(net, text)
        if not held:
            raise GossipError(f"no live node holds a message {text!r}")
        message_id = next(iter(held.values())).id
        live = sum(1 for r in network.status(net) if r.state == "up")
        return Spread(message_id, text, first_arrivals(held), live)

    def messages(self, number: int) -> list[dict[str, Any]]:
        """A node's messages with every copy's path, left unread (the page only looks)."""
        _, net = self.find()
        answering(net, number)  # one that does not exist, was removed or is paused: said
        views = network.surveyor(net, number).read_messages("all", peek=True)
        return [render.view_json(v) for v in views]

    def kill(self, number: int) -> str:
        """``kill -9`` a node of this host: no goodbye, its peers must notice by themselves."""
        directory, net = self.find()
        entry = net.node(number)
        if not entry.local:
            raise GossipError(f"node {number} runs on host {entry.host}: kill it there")
        if not state.pid_alive(entry.pid, directory):
            raise GossipError(f"node {number} is not running")
        os.kill(entry.pid, signal.SIGKILL)
        if not network.wait_until(lambda: not state.pid_alive(entry.pid, directory), KILL_TIMEOUT):
            raise GossipError(f"node {number} survived kill -9")
        return f"Killed {render.node_name(number)} (kill -9)."

    def remove(self, number: int) -> str:
        directory, net = self.find()
        net.node(number)
        return render.removed(number, network.remove(directory, net, number))

    def restart(self, number: int) -> str:
        directory, net = self.find()
        entry, damaged = network.restart(directory, net, number)
        report = network.client_for(net, entry).status()
        return render.rejoined(entry, report, restarted=True, damaged=damaged)

    def add(self) -> str:
        directory, net = self.find()
        entry = network.add(directory, net)
        report = network.client_for(net, entry).status()
        return render.rejoined(entry, report, restarted=False)

    def pause(self, number: int) -> str:
        """The lab's ``gossip pause``: SIGSTOP, as a hung machine."""
        directory, net = self.find()
        lab.pause(directory, net, number, stop=True)
        return f"Paused {render.node_name(number)} (SIGSTOP): it stops answering."

    def resume(self, number: int) -> str:
        directory, net = self.find()
        lab.pause(directory, net, number, stop=False)
        return f"Resumed {render.node_name(number)} (SIGCONT): it catches up on what it missed."

    def partition(self, groups: str) -> str:
        """The lab's ``gossip partition``: groups as the command takes them (``1-8 9-16``)."""
        if len(groups.split()) < 2:
            raise GossipError("a partition needs two groups or more, as in 1-8 9-16")
        directory, net = self.find()
        cut = lab.partition_groups(groups.split(), net)
        return f"Network conditions: {lab.impose(directory, net, {'groups': cut}).describe()}."

    def heal(self) -> str:
        directory, net = self.find()
        return (
            f"Healed. Network conditions: {lab.impose(directory, net, {'groups': []}).describe()}."
        )

    def netem(self, delay: str, jitter: str, loss: str) -> str:
        """The lab's ``gossip netem`` on every link: blank fields are 0 (all blank clears)."""
        changes = {
            "delay_ms": lab.milliseconds(delay, "the delay") if delay.strip() else 0,
            "jitter_ms": lab.milliseconds(jitter, "the jitter") if jitter.strip() else 0,
            "loss_percent": lab.percent(loss, "the loss") if loss.strip() else 0,
            "links": [],
        }
        directory, net = self.find()
        return f"Network conditions: {lab.impose(directory, net, changes).describe()}."
