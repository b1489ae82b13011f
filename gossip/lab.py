"""The lab's network conditions, from the command line's side: parse them, keep them in the
network's state, impose them on every node (``/CONDITIONS``), pause and resume nodes.

Pausing is a ``SIGSTOP`` of the node's process, sent by the command line on the host it
runs on (``SIGCONT`` resumes it): the process stops answering at once, its sockets stay
open and its port still accepts connections into the kernel's backlog, exactly as a hung
machine behaves; its peers notice only by silence (pings, overdue replies).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gossip import state
from gossip.client import NodeUnreachable
from gossip.commands import Command
from gossip.conditions import MAX_DELAY, RANGE, Conditions, conditions_from, group, kept
from gossip.errors import GossipError, UsageError
from gossip.network import SURVEY_TIMEOUT, client_for, survey
from gossip.protocol import FrameError
from gossip.ranges import compress_ranges
from gossip.state import NetworkState

DURATION = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*(ms|s)?\s*$", re.ASCII)
PERCENT = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*%?\s*$", re.ASCII)
"""Digits are ASCII and at most 30 (a time or a percentage has fewer; int() of thousands of
digits raises). Node ranges (``RANGE``) are read the same way."""


def milliseconds(raw: str, name: str) -> float:
    """``100ms``, ``100`` (ms) or ``0.1s`` as milliseconds."""
    match = DURATION.match(raw)
    if not match:
        raise UsageError(f"{name} must be a time like 100ms or 0.5s, not {raw!r}")
    value = float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    if value > MAX_DELAY * 1000:
        raise UsageError(f"{name} must be at most {MAX_DELAY * 1000:g}ms, not {raw!r}")
    return value


def percent(raw: str, name: str = "--loss") -> float:
    match = PERCENT.match(raw)
    if not match or float(match.group(1)) > 100:
        raise UsageError(f"{name} must be a percentage from 0% to 100%, not {raw!r}")
    return float(match.group(1))


def link(raw: str) -> list[int]:
    """``3-7``: the link between nodes 3 and 7."""
    match = RANGE.match(raw.strip())
    if not match or match.group(2) is None or match.group(1) == match.group(2):
        raise UsageError(f"--link must name two nodes, as in --link 3-7, not {raw!r}")
    return [int(match.group(1)), int(match.group(2))]


def partition_groups(raws: list[str], network: NetworkState) -> list[list[int]]:
    """The groups of ``gossip partition``: nodes of ``network``, each in one group only."""
    groups: list[list[int]] = []
    side: dict[int, int] = {}
    for index, raw in enumerate(raws):
        groups.append(group(raw, max(network.nodes)))
        check_nodes(network, groups[-1])
        if all(network.nodes[n].removed for n in groups[-1]):
            # A removed node in a range keeps its side (restart-node brings it back
            # there); a group of removed nodes only would be a side no frame reaches.
            live = compress_ranges(network.live_numbers())
            raise GossipError(
                f"partition group {raw!r} names only removed nodes: live nodes are {live}"
            )
        for number in groups[-1]:
            if side.setdefault(number, index) != index:
                raise UsageError(
                    f"node {number} is in two groups: each node is on one side of a partition"
                )
    return groups


def check_live(network: NetworkState, numbers: list[int]) -> None:
    """GossipError naming the first number that is not a live node of the network (one
    removed, or none at all)."""
    for number in numbers:
        network.node(number)


def current(network: NetworkState) -> Conditions:
    """The conditions the network's state holds."""
    return kept(network.conditions)


def halted(network: NetworkState, entry: state.NodeEntry, directory: Path) -> bool:
    """Whether the lab paused this node and it still runs: asked, it would not answer, and
    the asker would wait its whole timeout for nothing (one killed since is down, as any
    dead node). Only a node of this host: another host's pauses are that host's to know,
    and one it ended since (a resume, a restart) stayed paused here, refused for good."""
    paused = entry.number in current(network).paused
    return entry.local and paused and state.pid_alive(entry.pid, directory)


def check_nodes(network: NetworkState, numbers: list[int]) -> None:
    """GossipError naming the first number that is not a node of the network."""
    for number in numbers:
        if number not in network.nodes:
            raise GossipError(
                f"node {number} does not exist: this network has nodes {network.describe_numbers()}"
            )


def impose(
    directory: Path,
    network: NetworkState,
    changes: dict[str, Any] | Callable[[Conditions], dict[str, Any]],
    act: Callable[[], None] | None = None,
) -> Conditions:
    """Change the conditions in force (``changes``, in ``Conditions.as_dict`` form, or made
    from the conditions in force as the state's lock holds them: a change of one part made
    from an earlier read undid another command's change of it), keep them in the network's
    state, and tell every live node; the conditions now in force. ``act`` does what the
    change does to a process, once the state says so: a change the state cannot record (a
    full disk) is not made.

    A node that is down takes them from the state when it starts again; a paused one is
    told when it is resumed, as resuming is a change. On several hosts the conditions in
    force are those the nodes hold, with this host's own pauses: a change made on another
    host reached every node, and that host's state only.
    """
    in_force = None if all(e.local for e in network.nodes.values()) else held(network)
    with state.change(directory, network) as latest:
        fields = current(latest).as_dict() if in_force is None else merged(latest, in_force)
        try:  # as the state and the nodes will read it back: rounded
            fields.update(
                changes if isinstance(changes, dict) else changes(conditions_from(fields))
            )
            imposed = conditions_from(conditions_from(fields).as_dict())
        except FrameError as exc:
            raise GossipError(str(exc)) from None
        latest.conditions = imposed.as_dict()
    if act is not None:
        act()
    missed = tell(network, imposed)
    if missed:
        raise GossipError(
            f"nodes {compress_ranges(missed)} did not take the new conditions (they "
            "run, but did not answer): the others did; run the command again"
        )
    return imposed


def merged(network: NetworkState, in_force: Conditions) -> dict[str, Any]:
    """The conditions the nodes hold (``in_force``) with this host's own pauses, as its
    state has them: pauses of this host's nodes are this host's to know."""
    ours = {n for n, e in network.nodes.items() if e.local}
    paused = [n for n in in_force.paused if n not in ours]
    paused += [n for n in current(network).paused if n in ours]
    return {**in_force.as_dict(), "paused": sorted(paused)}


def refresh(directory: Path, network: NetworkState) -> None:
    """On several hosts, take the conditions the live nodes hold into this host's view
    (its state, if it runs nodes): a change made on another host reached every node and
    that host's state only, and a node this host started from its stale state brought
    back a partition healed elsewhere, cut off. Nothing to do on one host, or if no node
    answers."""
    if all(e.local for e in network.nodes.values()):
        return
    in_force = held(network)
    if in_force is None:
        return
    if not any(e.local for e in network.nodes.values()):  # a network file's view: no state
        network.conditions = merged(network, in_force)
        return
    with contextlib.suppress(GossipError), state.change(directory, network) as latest:
        latest.conditions = merged(latest, in_force)  # else as it was (a full disk, say)


def held(network: NetworkState) -> Conditions | None:
    """The conditions the nodes hold now, as the first live one that answers says (None:
    none answered). On several hosts this host's state may be behind: a change made on
    another host went to every node, and its state only. This host's nodes that are not
    paused are asked first: a host cut off costs each of its nodes a timeout."""
    paused = set(current(network).paused)
    order = sorted(network.live_numbers(), key=lambda n: (not network.nodes[n].local, n in paused))
    for number in order:
        client = client_for(network, network.nodes[number])
        client.timeout = SURVEY_TIMEOUT
        try:
            return conditions_from(client.status().get("conditions") or {})
        except (GossipError, FrameError):
            continue
    return None


def tell(network: NetworkState, conditions: Conditions) -> list[int]:
    """Send the conditions to every live node; the nodes that run but did not take them.

    A node whose port refuses is down, here or on another host (or removed there): it
    takes the conditions from its host's state when it starts, and does not count."""
    payload = conditions.as_dict()
    numbers = [n for n in network.live_numbers() if n not in conditions.paused]

    def ask(number: int) -> int | None:
        client = client_for(network, network.nodes[number])
        client.timeout = SURVEY_TIMEOUT
        try:
            client.request(Command.CONDITIONS, payload)
        except NodeUnreachable as exc:
            return None if exc.refused else number
        except GossipError:
            return number
        return None

    return [n for n in survey(numbers, ask) if n is not None]


def pause(directory: Path, network: NetworkState, number: int, stop: bool) -> None:
    """Stop (``stop``) or continue node ``number``'s process, on the host it runs on."""
    entry = network.node(number)
    if not entry.local:
        raise GossipError(f"node {number} runs on {entry.host}: pause or resume it there")
    if not state.pid_alive(entry.pid, directory):
        raise GossipError(
            f"node {number} is not running: start it with gossip restart-node {number}"
        )

    def toggled(now: Conditions) -> dict[str, Any]:
        """The pauses in force with this one made or ended (under the state's lock: two
        commands that read the pauses at once lost one, its node stopped and not paused)."""
        paused = set(now.paused)
        if stop and number in paused:
            raise GossipError(f"node {number} is paused already: gossip resume {number} resumes it")
        if not stop and number not in paused:
            raise GossipError(f"node {number} is not paused: gossip pause {number} pauses it")
        return {"paused": sorted(paused | {number} if stop else paused - {number})}

    def signal_it() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGSTOP if stop else signal.SIGCONT)

    # Written down first: a pause the state did not record, no command would end.
    impose(directory, network, toggled, signal_it)
