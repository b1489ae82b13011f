"""What the CLI prints, as pure functions of what the nodes reported."""

from __future__ import annotations

import json
import shlex
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gossip.client import Peer
from gossip.conditions import Conditions
from gossip.protocol import Copy, MessageView
from gossip.ranges import compress_ranges
from gossip.state import NetworkState, NodeEntry, log_only, may_run
from gossip.status import NodeStatus

PATH_MODES = ("all", "shortest", "longest", "shortest and longest")
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Characters a terminal would obey or hide rather than show: C0 and C1 controls and DEL
(Cc), invisible format characters such as bidi overrides (Cf), lone surrogates (Cs), and
the line and paragraph separators (Zl, Zp)."""
KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
"""Zero-width non-joiner and joiner: part of ordinary text (Persian, emoji sequences)."""
TAGS = range(0xE0020, 0xE0080)
"""Tag characters, which spell the subdivision flags (England, Scotland, Wales)."""


def escaped(char: str) -> bool:
    """Whether ``printable`` shows this character as an escape."""
    if unicodedata.category(char) not in ESCAPED_CATEGORIES:
        return False
    return char not in KEPT_FORMAT and ord(char) not in TAGS


def printable(text: str) -> str:
    """Text from the network made safe to print: a character a terminal would obey or hide
    (``escaped``) becomes its Python escape, as in ``\\x1b``, ``\\n`` or ``\\u202e``, so
    a message can neither rewrite the terminal nor break out of its line. Everything else,
    accents, CJK and emoji included, is shown as it is."""
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if escaped(c) else c for c in text)


JSON_OPEN_LEVELS = 2
"""Levels of a ``--json`` document laid out one item a line; deeper ones stay on their
item's line. A read of 10,000 messages is then a line per message, which the C encoder
writes (``indent`` would send every value through the pure-Python one)."""

_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def as_json(data: object) -> str:
    """JSON as a terminal can show it: readable Unicode, but every character a terminal
    would obey or hide (``escaped``) as a JSON escape, so the data stays exact."""
    return "\n".join(
        line if line.isprintable() else _json_escaped(line)
        for line in _laid_out(data, 0).split("\n")
    )


def _laid_out(value: object, level: int) -> str:
    if level >= JSON_OPEN_LEVELS or not isinstance(value, dict | list) or not value:
        return _compact_json(value)
    pad = "  " * (level + 1)
    if isinstance(value, dict):
        items = [
            f"{pad}{_compact_json(str(k))}: {_laid_out(v, level + 1)}" for k, v in value.items()
        ]
        ends = "{}"
    else:
        items = [pad + _laid_out(v, level + 1) for v in value]
        ends = "[]"
    return f"{ends[0]}\n" + ",\n".join(items) + f"\n{'  ' * level}{ends[1]}"


def _json_escaped(line: str) -> str:
    """``line`` with every ``escaped`` character as its JSON escape (``isprintable``
    passes most lines whole, in C)."""
    return "".join(json.dumps(c)[1:-1] if escaped(c) else c for c in line)


def gossip_command(
    environ: Mapping[str, str],
    on_path: bool,
    python: str,
    cwd: Path,
    project: Path | None,
    script: str | None = None,
) -> str:
    """How the user's shell runs gossip, for the commands the CLI suggests.

    Under ``uv run`` (which sets ``UV``, and puts the project's ``gossip`` on the PATH only
    for what it runs) the shell has no ``gossip`` of its own: ``uv run gossip``, naming the
    ``project`` (the source checkout, if gossip runs from one) when ``cwd`` is outside it.
    Otherwise ``gossip`` if it is ``on_path``, else the ``script`` this run was started as
    (an absolute path to a ``gossip`` not on the PATH), else this ``python`` with
    ``-m gossip``.
    """
    if environ.get("UV") or environ.get("UV_RUN_RECURSION_DEPTH"):
        if project is None or cwd == project or project in cwd.parents:
            return "uv run gossip"
        return f"uv run --project {shlex.quote(str(project))} gossip"
    if on_path:
        return "gossip"
    if script is not None:
        return shlex.quote(script)
    return f"{shlex.quote(python)} -m gossip"


def node_name(number: int) -> str:
    return f"Gossip-Node-{number}"


def select_paths(copies: tuple[Copy, ...], mode: int) -> list[Copy]:
    """The copies to show: all (0), shortest (1), longest (2), or both (3).

    Among paths of equal length the one that arrived first wins.
    """
    if mode == 0 or not copies:
        return list(copies)
    shortest = min(copies, key=lambda c: len(c.path))
    longest = max(copies, key=lambda c: len(c.path))
    chosen = {1: [shortest], 2: [longest], 3: [shortest, longest]}[mode]
    return [c for c in copies if c in chosen]


def format_time(copy: Copy, sent: float, level: int) -> str:
    """The arrival time at detail ``level`` (0: none, 3: date, microseconds, delay)."""
    if level == 0:
        return ""
    moment = datetime.fromtimestamp(copy.arrived)
    if level == 1:
        return f"  at {moment:%H:%M:%S}"
    if level == 2:
        return f"  at {moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"
    delay_ms = (copy.arrived - sent) * 1000
    return f"  at {moment:%Y-%m-%d %H:%M:%S.%f} (+{delay_ms:.3f} ms after sending)"


def messages(number: int, views: list[MessageView], which: str, mode: int, level: int) -> str:
    """``get-messages`` output in the original tool's look."""
    lines = [
        f"Fetched {which} messages from {node_name(number)}; showing {PATH_MODES[mode]} path(s):"
    ]
    if not views:
        lines += ["", f"No {'' if which == 'all' else which + ' '}messages."]
    for view in views:
        lines += ["", f"• {printable(view.text)}"]
        for copy in select_paths(view.copies, mode):
            route = " ➜ ".join(str(n) for n in copy.path)
            lines.append(f"  ↳ {route}{format_time(copy, view.sent, level)}")
    return "\n".join(lines)


def peers(number: int, peer_list: list[Peer]) -> str:
    """``list-peers`` output."""
    if not peer_list:
        return f"{node_name(number)} has no peers."
    lines = [f"{node_name(number)} has peers:"]
    lines += [f"* {node_name(p.number)} ({p.host}:{p.port})" for p in peer_list]
    return "\n".join(lines)


def peers_each(network: NetworkState) -> str:
    """``3 peers each``, or ``1 peer each``."""
    return f"{network.max_peers} peer{'' if network.max_peers == 1 else 's'} each"


def started(network: NetworkState) -> str:
    """``start-network`` output: the network, then every node with its peers."""
    entries = sorted((e for e in network.nodes.values() if e.local), key=lambda e: e.number)
    width = max(len(f"{node_name(e.number)} ({e.host}:{e.port})") for e in entries)
    which = (
        f"{len(entries)} of the {len(network.nodes)} nodes of {network.label} on this host"
        if network.name
        else f"{len(entries)} nodes {network.where()}"
    )
    lines = [f"Started {which}: {network.topology}, at most {peers_each(network)}."]
    for e in entries:
        label = f"{node_name(e.number)} ({e.host}:{e.port})"
        peer_names = ", ".join(str(p) for p in e.peers) or "none"
        lines.append(f"* {label:<{width}}  peers: {peer_names}")
    return "\n".join(lines)


def removed(number: int, result: dict[str, Any]) -> str:
    """``remove-node`` output: who lost a peer and which new links healed the gap."""
    former = [int(n) for n in result.get("former_peers", [])]
    links = [(int(a), int(b)) for a, b in result.get("links", [])]
    if result.get("hung"):
        lines = [f"Removed {node_name(number)}, which did not answer: its process was killed."]
    elif result.get("dead"):
        lines = [f"Removed {node_name(number)}, which was already down."]
    else:
        lines = [f"Removed {node_name(number)}."]
    if handed := int(result.get("handed_over", 0)):
        plural = "" if handed == 1 else "s"
        lines.append(f"{handed} message{plural} it held that the others lacked went to the rest.")
    if former:
        lines.append(f"Its former peers: {', '.join(str(n) for n in former)}.")
    given_up = [(int(a), int(b)) for a, b in result.get("given_up", [])]
    if not former and result.get("dead") and not result.get("hung"):
        lines.append(
            "Its peers had already noticed and dropped it."
            if links or given_up
            else "Its peers had already noticed and healed around it."
        )
    if links:
        lines.append("New links: " + ", ".join(f"{a} ⟷ {b}" for a, b in links) + ".")
    if given_up:
        lines.append(
            "Links traded for them, to keep the network in one piece: "
            + ", ".join(f"{a} ⟷ {b}" for a, b in given_up)
            + "."
        )
    if result.get("parts", 1) > 1:
        lines.append(
            f"The live nodes are still in {result['parts']} parts: see gossip status (the "
            "supervisor joins them within seconds, where max-peers allows)."
        )
    elif not links and len(former) > 1:
        lines.append("No new links were needed: the rest of the network is still one piece.")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """An uptime as ``42s``, ``3m 05s`` or ``2h 10m``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole // 60 % 60:02d}m"


def status(
    network: NetworkState, rows: list[NodeStatus], parts: list[list[int]], now: float
) -> str:
    """``gossip status``: a table of every node, then whether the live ones hang together."""
    up = [r for r in rows if r.state == "up"]
    lines = [
        f"Network {network.where()}: {network.topology}, at most {peers_each(network)}; "
        f"{len(up)} of {len(rows)} nodes up.",
        *lab_lines(network),
        "",
    ]
    table = [
        (
            "Node",
            "State",
            "Peers",
            "Messages",
            "Unread",
            "Address" if network.name else "Port",
            "Uptime",
        )
    ]
    for row in rows:
        report = row.report
        number, port = str(row.entry.number), str(row.entry.port)
        if network.name:
            port = f"{row.entry.host}:{port}"
        if row.state == "up":
            peer_list = ", ".join(str(p) for p in report.get("peers", [])) or "none"
            uptime = duration(up_for(report, now))
            held, unread = str(report.get("messages")), str(report.get("unread"))
            table.append((number, row.state, peer_list, held, unread, port, uptime))
        else:
            table.append((number, shown_state(network, row), "-", "-", "-", port, "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    failing = [r for r in rows if r.state == "failing"]
    if failing:
        lines.append("")
        lines += [f"Node {r.entry.number} is failing: {r.report.get('error')}" for r in failing]
    live = {r.entry.number for r in up}  # a link to a paused or dead peer joins nothing
    links = {
        (min(r.entry.number, p), max(r.entry.number, p))
        for r in up
        for p in r.report.get("peers", [])
        if p in live
    }
    if len(parts) == 1 and len(up) == 1:
        lines += ["", "One node is live: there is nothing to connect."]
    elif len(parts) == 1:
        link_count = f"{len(links)} link{'' if len(links) == 1 else 's'}"
        lines += ["", f"The {len(up)} live nodes are connected by {link_count}."]
    elif parts:
        shown = "; ".join(compress_ranges(p) for p in parts)
        lines += ["", f"The live nodes are split into {len(parts)} parts: {shown}."]
    return "\n".join(lines)


def lab_lines(network: NetworkState) -> list[str]:
    """The strategy and the network conditions in force, when they are not the defaults."""
    from gossip.conditions import conditions_from
    from gossip.strategy import DEFAULT, stored

    strategy = stored(network.strategy)
    lines = [f"Strategy: {strategy.describe()}."] if strategy != DEFAULT else []
    if network.conditions:
        conditions = conditions_from(network.conditions)
        if conditions.as_dict() != conditions_from({}).as_dict():
            lines.append(f"Conditions: {conditions.describe(network.live_numbers())}.")
    return lines


def rejoined(
    entry: NodeEntry, report: dict[str, Any], restarted: bool, damaged: Path | None = None
) -> str:
    """``restart-node`` and ``add-node`` output: the node, its history (or that its store
    was ``damaged`` and kept aside there), its new peers."""
    peer_list = ", ".join(str(p) for p in report.get("peers", [])) or "none yet"
    held = int(report.get("loaded", report.get("messages", 0)))  # not what it caught up on
    history = ""
    if restarted:
        history = f" with the {held} message{'' if held == 1 else 's'} it held" if held else ""
        history = history or " with no message held"
    if damaged is not None and log_only(damaged):
        history += f" outside its store's log, which was damaged and is kept as {damaged}"
    elif damaged is not None:
        history = f" with an empty store: its own was damaged, and is kept as {damaged}"
    return (
        f"{'Restarted' if restarted else 'Added'} {node_name(entry.number)} "
        f"({entry.host}:{entry.port}){history}; peers: {peer_list}.\n"
        + (
            "It catches up on the messages it missed from its peers within seconds."
            if report.get("peers")
            else "It links up with peers, then catches up on what it missed, within seconds."
        )
    )


def view_json(view: MessageView, mode: int = 0) -> dict[str, Any]:
    """A message for ``--json``: its copies' paths (as ``-p`` selects them) and times."""
    return {
        "id": view.id,
        "text": view.text,
        "sent": view.sent,
        "read": view.read,
        "copies": [
            {"path": list(c.path), "arrived": c.arrived} for c in select_paths(view.copies, mode)
        ],
    }


def outside(number: int, conditions: Conditions, live: list[int], heal: str) -> str:
    """What ``add-node`` adds when a partition is in force that names no node ``number``:
    the side it is on until ``heal`` (the nodes in no group are one), else ''."""
    grouped = {n for g in conditions.groups for n in g}
    if not conditions.groups or number in grouped:
        return ""
    rest = [n for n in live if n not in grouped and n != number]
    side = (
        f"on one side with nodes {compress_ranges(rest)}, the others in no group,"
        if rest
        else "a side of its own"
    )
    return f"\nA partition is in force and names no node {number}: it is {side} until {heal}."


def up_for(report: dict[str, Any], now: float) -> float:
    """How long a node has been up: as it says (its own clock), else from its start."""
    if isinstance(report.get("uptime"), int | float):
        return float(report["uptime"])
    return now - float(report.get("started", now))


def shown_state(network: NetworkState, row: NodeStatus) -> str:
    """A node's state as ``status`` shows it: one the lab paused does not answer, as a
    down one, but is ``paused``; unless this host's node has died since (killed while
    paused), which only ``restart-node`` brings back, as any down one."""
    paused = row.entry.number in network.conditions.get("paused", [])
    if paused and row.state == "down" and may_run(row.entry, network.directory):
        return "paused"
    return row.state


def status_json(
    network: NetworkState, rows: list[NodeStatus], parts: list[list[int]], now: float
) -> dict[str, Any]:
    """``gossip status --json``: the same facts as the table, for scripts."""
    nodes = []
    for row in rows:
        report = row.report
        up = row.state == "up"
        state = shown_state(network, row)
        nodes.append(
            {
                "node": row.entry.number,
                "state": state,
                "host": row.entry.host,
                "port": row.entry.port,
                "peers": report.get("peers", []) if up else None,
                "messages": report.get("messages") if up else None,
                "unread": report.get("unread") if up else None,
                "uptime": round(up_for(report, now), 3) if up else None,
                "pid": row.entry.pid if state in ("up", "paused") and row.entry.local else None,
                "error": report.get("error") if row.state == "failing" else None,
            }
        )
    return {
        "port_origin": network.port_origin,
        "topology": network.topology,
        "max_peers": network.max_peers,
        "strategy": network.strategy or {"mode": "push", "fanout": 0, "interval_ms": 0, "ttl": 0},
        "conditions": network.conditions,
        "nodes": nodes,
        "parts": parts,
    }
