"""gossip: run a peer-to-peer network of TCP nodes that spread messages by gossip.

Usage:
  gossip start-network [circular | random [<degree>] | powerlaw | turan [<partitions>]]
                       [-n N] [--max-peers K] [--seed S] [--port-origin P] [-P] [--insecure]
                       [--mode M] [--fanout K] [--interval MS] [--ttl HOPS]
  gossip start-network --config FILE [--only HOST]
  gossip start-network --resume [--port-origin P | --config FILE]
  gossip start-node <node> [--config FILE] [--store DIR] [--listen ADDRESS]
  gossip mend [--config FILE]
  gossip stop-network [--port-origin P | --config FILE]
  gossip send-message <node> [--] <message> [-r K] [--id ID] [--port-origin P | --config FILE]
  gossip get-messages <node> [unread | read | all] [-p | -pp | -ppp] [-t | -tt | -ttt]
                      [--json] [--port-origin P | --config FILE]
  gossip list-peers <node> [--json] [--port-origin P | --config FILE]
  gossip remove-node <node> [--port-origin P | --config FILE]
  gossip restart-node <node> [--port-origin P | --config FILE]
  gossip add-node [--port-origin P]
  gossip status [--json] [--port-origin P | --config FILE]
  gossip draw [--message TEXT] [-o FILE] [--port-origin P | --config FILE]
  gossip demo [-n N] [--port-origin P] [--insecure]
  gossip web [--port N] [--host ADDRESS] [--port-origin P | --config FILE]
  gossip new-secret <file>
  gossip netem (--off | [--delay D] [--jitter J] [--loss L] [--link A-B])
               [--port-origin P | --config FILE]
  gossip partition <group>... [--port-origin P | --config FILE]
  gossip heal [--port-origin P | --config FILE]
  gossip pause <node> [--port-origin P | --config FILE]
  gossip resume <node> [--port-origin P | --config FILE]
  gossip experiment <file> [-o DIR] [--port-origin P]
  gossip -h | --help
  gossip --version

Commands:
  start-network  Start N node processes (default: random regular graph of degree 3)
                 and print each node with its peers. The nodes keep running.
  start-node     Run one node of a network file in the foreground, as a container's
                 process: logs to stdout, stops cleanly on SIGTERM, no supervisor (run
                 gossip mend beside the nodes). <node> is its number, or auto: from
                 this host's name, which ends in -ORDINAL as a StatefulSet's pods do
                 (pod gossip-7 runs node 8).
  mend           Look after a network of start-node nodes in the foreground, as a
                 supervisor does: every second ask every node for its peers, and join
                 the parts and the nodes short of peers that their own healing cannot.
                 One per network; logs to stdout, stops on SIGTERM.
  stop-network   Stop every node of the network. Its messages stay on disk:
                 start-network --resume brings it back with them, a fresh
                 start-network on the same ports deletes them.
  send-message   Submit a message to a node; it spreads to every live node. A message
                 starting with - goes last, after --: send-message 1 -r 2 -- "-x".
  get-messages   Show a node's messages with the path of every copy that reached it
                 (all by default), and mark them read.
  list-peers     Show a node's current peers and their addresses.
  remove-node    Stop one node; its former peers drop it, and new links keep the rest
                 one connected graph.
  restart-node   Bring back a node that died or was removed, with the messages it held;
                 it rejoins through its old peers and catches up on what it missed.
  add-node       Grow the network by one node, which takes over a link to join.
  status         A table of every node: up or down, peers, messages, port, uptime.
  draw           Draw the live topology, as the nodes report it, to a PNG; or how a
                 message spread (--message): who got it first from whom, and when.
  demo           Start a network, send "Hello World" to node 1, watch it spread,
                 and show the paths it took.
  web            Serve a live page of the network at http://127.0.0.1:8080: its topology,
                 messages spreading, controls for the commands above, and /metrics.
  new-secret     Write a new random secret to a file (mode 0600), for a network file:
                 copy it to every host that runs or talks to the network.
  netem          Delay (with jitter) and lose frames between nodes, on every link or
                 one (--link 3-7); --off clears it. Done inside the nodes.
  partition      Cut the network into groups (partition 1-8 9-16): no frame crosses.
  heal           End the partition: the groups find each other and trade messages.
  pause          Stop a node's process (SIGSTOP), as a hung machine.
  resume         Continue a paused node (SIGCONT): it rejoins and catches up.
  experiment     Run a TOML scenario: each strategy on a fresh network, a table of
                 delivery, cost and latency, and pictures (see README, Lab).

Options:
  -n N, --nodes N     Number of nodes [default: 16].
  --max-peers K       Most peers a node may hold [default: 3].
  --seed S            Seed that makes a random topology reproducible.
  --port-origin P     Node i listens on port P+i (default 7000, or the one network running).
  -P, --plot          Also draw the topology to a PNG and print where it is.
  --config FILE       A network file (TOML or JSON) listing every node's address and
                      the topology, for a network over several hosts (see README).
                      Default: $GOSSIP_CONFIG where set (and no --port-origin given).
  --only HOST         Start only the network file's nodes whose address is on HOST.
  --resume            Start a stopped network again, each node with its messages.
  --store DIR         Where start-node keeps the node's store (default: the network's
                      run directory, under $GOSSIP_HOME).
  --listen ADDRESS    The address start-node listens on; it tells the others the one in
                      the network file (a host name or an IP address) [default: 0.0.0.0].
  --insecure          No secret: nodes obey anyone who reaches their ports, and frames
                      go bare (readable with nc). For teaching on a machine you trust.
  -o FILE, --output FILE  Where draw writes its PNG (default: in the run directory);
                      where experiment writes its pictures (default: the current folder).
  --message TEXT      The text of the message whose spread draw shows (the newest one).
  --json              Print JSON, for scripts, instead of text.
  -r K, --relays K    Copies of a message each node may send to each peer [default: 1].
  --port N            Port of gossip web's page (0: any free one) [default: 8080].
  --host ADDRESS      Address gossip web listens on [default: 127.0.0.1].
  --id ID             The message's id (default: a new random one). Sending again with
                      the id of a send whose answer was lost is safe: it is one message.
  --mode M            How nodes spread messages: push, pull or push-pull [default: push].
  --fanout K          Relay each message once, to K random peers, instead of every new
                      path of it to every peer.
  --interval MS       Relay in rounds every MS milliseconds instead of at once; the
                      period of pull's digest exchange (default 200).
  --ttl HOPS          Stop relaying a copy after HOPS hops (catch-up still delivers it).
  --delay D           Delay every frame a node sends, as 100ms or 0.1s.
  --jitter J          Vary the delay by up to J either way.
  --loss L            Lose this share of the frames that carry messages, as 5%.
  --link A-B          Only the link between nodes A and B.
  --off               Clear the delay, jitter and loss.
  -p                  Paths: -p shortest, -pp longest, -ppp shortest and longest.
  -t                  Arrival times: -t seconds, -tt milliseconds, -ttt date and delay.
  -h, --help          Show this help.
  --version           Show the version.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docopt import DocoptExit, docopt

from gossip import __version__, auth, network, render, spread, state, usage
from gossip.client import NodeUnreachable
from gossip.errors import GossipError, UsageError
from gossip.protocol import MAX_RELAYS, is_message_id, text_problem
from gossip.ranges import compress_ranges

USAGE = usage.Usage.of(__doc__ or "")

OWN_EMPTY = {("draw", "--output"), ("draw", "--message")}
"""Options whose command says more of an empty value than that it is empty."""

TEXT_ADVICE = {
    "the message is empty": ": give some text, as in gossip send-message 1 Hi",
    "the message is not valid UTF-8 text": ": check its encoding",
}
"""What to do about a message text's problem, where it is not plain."""

DEMO_TEXT = "Hello World"
DEMO_TIMEOUT = 10.0
INSECURE_WARNING = (
    "WARNING: {}: these nodes obey anyone who can reach their ports, unauthenticated."
)
"""Said as an insecure network starts, with what made it so."""


WHOLE = re.compile(r"-?[0-9]{1,30}")


def number(args: dict[str, Any], key: str, lowest: int, highest: int | None) -> int | None:
    """A whole-number argument in ``lowest..highest`` (no top if None), None if not given."""
    raw = args[key]
    if raw is None or raw is False:
        return None
    name = key.strip("<>-")
    if not WHOLE.fullmatch(raw):  # int() also takes 1_0, +2 and other scripts' digits
        raise UsageError(f"{name} must be a whole number, not {raw!r}")
    value = int(raw)
    if highest is None and value < lowest:
        raise UsageError(f"{name} must be {lowest} or more, not {value}")
    if highest is not None and not lowest <= value <= highest:
        raise UsageError(f"{name} must be between {lowest} and {highest}, not {value}")
    return value


def required(args: dict[str, Any], key: str, lowest: int, highest: int | None) -> int:
    value = number(args, key, lowest, highest)
    assert value is not None, f"docopt supplies {key}"
    return value


def port_origin(args: dict[str, Any]) -> int | None:
    return number(args, "--port-origin", 1, 65535)


def stopped_here(config: str | None) -> str | None:
    """Why a network file's network cannot answer, if it was stopped on this host (the
    command saw it as running elsewhere, as it does when none of it runs here); else None."""
    if config is None:
        return None
    from gossip import config as network_file

    with contextlib.suppress(GossipError, OSError):
        net = network_file.load(Path(config))
        if net.directory in state.stopped_networks():
            return state.not_running(net.directory, net)
    return None


def network_of(args: dict[str, Any], adopt: bool = True) -> tuple[Path, state.NetworkState]:
    """The network a command addresses: from its network file, or running on this host.

    A network whose supervisor died (its nodes serve on) gets a new one first, which
    takes the nodes over and mends the network again, unless ``adopt`` is off.
    """
    if args["--config"]:
        from gossip import config

        directory, net = config.find(Path(args["--config"]))
    else:
        directory, net = state.find_network(port_origin(args))
    local = any(e.local for e in net.nodes.values())
    if adopt and local and not state.pid_alive(net.supervisor_pid, directory):
        network.adopt(directory, net)
    if args["--config"]:
        from gossip import lab

        lab.refresh(directory, net)  # another host may have changed them since
    return directory, net


def target(args: dict[str, Any]) -> tuple[Path, state.NetworkState, state.NodeEntry]:
    """The network and the node entry a node command addresses."""
    directory, net = network_of(args)
    number = required(args, "<node>", 1, None)
    listed = net.nodes.get(number)
    if listed is not None and listed.removed and not listed.local:
        network.readmit(directory, net, number)
    return directory, net, net.node(number)


def asked(args: dict[str, Any]) -> tuple[state.NetworkState, state.NodeEntry]:
    """The network and the node a command asks something of, which must not be paused:
    it would not answer, and the command would wait for its timeout to say so."""
    from gossip import lab

    directory, net, entry = target(args)
    if lab.halted(net, entry, directory):
        number = entry.number
        here = scope(net, args["--config"])
        raise GossipError(f"node {number} is paused: gossip resume {number}{here} continues it")
    return net, entry


def launch(args: dict[str, Any]) -> tuple[state.NetworkState, str]:
    """Build the topology the arguments ask for and start it; the network and a report."""
    from gossip import topology

    kind = next((k for k in topology.KINDS if args[k]), "random")
    nodes = required(args, "--nodes", 4 if args["demo"] else 2, 10_000)
    max_peers = required(args, "--max-peers", 1, 10_000)
    try:
        graph = topology.build(
            kind,
            nodes,
            max_peers,
            degree=number(args, "<degree>", 1, 10_000),
            partitions=number(args, "<partitions>", 1, 10_000),
            seed=number(args, "--seed", 0, 2**32 - 1),
        )
    except UsageError:
        raise
    except GossipError as exc:  # numbers that cannot make that graph: the line is wrong
        if args["demo"]:  # it takes no degree: say what its -n must be
            raise UsageError(
                f"the demo's graph is random regular of degree 3: give an even -n of 4 or "
                f"more, not {nodes}"
            ) from None
        raise UsageError(str(exc)) from None
    origin = port_origin(args) or state.DEFAULT_PORT_ORIGIN
    insecure = bool(args["--insecure"])
    net = network.plan(graph.neighbours, origin, max_peers, graph.description, insecure)
    net.strategy = strategy_of(args)
    directory = network.start(net)
    lines = [render.started(net)]
    if insecure:
        lines.insert(0, INSECURE_WARNING.format("--insecure"))
    if (parts := graph.components()) > 1 and max_peers == 1:
        lines.append(
            f"Note: this graph has {parts} separate parts, and with --max-peers 1 a node links "
            "to one other only: they stay apart, and a message reaches only its own part."
        )
    elif parts > 1:
        lines.append(
            f"Note: this graph has {parts} separate parts; the supervisor joins them within "
            "seconds (see Healing in README), until then a message reaches only its own."
        )
    if args["--plot"]:
        from gossip.plot import draw_topology

        title = f"gossip: {nodes} nodes, {graph.description}"
        picture = draw_topology(graph, directory / "topology.png", title)
        lines.append(f"Topology picture: {picture}")
    return net, "\n".join(lines)


def strategy_of(args: dict[str, Any]) -> dict[str, Any]:
    """The ``--mode``, ``--fanout``, ``--interval`` and ``--ttl`` asked for, checked."""
    from gossip.strategy import strategy_from

    fields = {
        "mode": args.get("--mode"),
        "fanout": args.get("--fanout"),
        "interval_ms": args.get("--interval"),
        "ttl": args.get("--ttl"),
    }
    try:
        return strategy_from(fields).as_dict()
    except GossipError as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def said_if_left_running(directory: Path, config: str | None = None) -> Iterator[None]:
    """An interrupt (Ctrl-C, SIGTERM, SIGHUP) once the block's network runs in
    ``directory`` says so, and how to stop it. One during the start left nothing running
    (the start undoes itself); one that ran there before is not this command's."""
    ours = not state.processes_of(directory)
    try:
        yield
    except KeyboardInterrupt:
        if not ours or not state.processes_of(directory):
            raise
        started = state.load(directory)
        stop = f"{how_to_run()} stop-network{scope(started, config) if started else ''}"
        raise KeyboardInterrupt(
            f"interrupted; the network it started still runs: {stop} stops it"
        ) from None


def start_network(args: dict[str, Any]) -> str:
    if args["--resume"]:
        return resume_network(args)
    if args["--config"]:
        from gossip import config

        net = config.load(Path(args["--config"]), args["--only"])
        with said_if_left_running(net.directory, args["--config"]):
            network.start(net)
        warning = INSECURE_WARNING.format("insecure = true") + "\n" if net.insecure else ""
        started = render.started(net)
        return f"{warning}{started}\nNext: {how_to_run()} status --config {args['--config']}"
    origin = port_origin(args) or state.DEFAULT_PORT_ORIGIN
    with said_if_left_running(state.run_dir(origin)):
        net, report = launch(args)
    return f'{report}\nNext: {how_to_run()} send-message 1 "Hello World"{scope(net)}'


def resume_network(args: dict[str, Any]) -> str:
    """Start the network stopped in this run directory again, with its messages."""
    if args["--config"]:
        from gossip import config, lab

        planned = config.load(Path(args["--config"]), None)
        directory, key = planned.directory, planned.key
        stopped = state.load(directory)
        if stopped is not None:  # its nodes start with the conditions the others hold now
            lab.refresh(directory, stopped)
    elif (origin := port_origin(args)) is not None:
        directory, key = state.run_dir(origin), None
    else:
        directory, key = stopped_network(), None
    began = time.time()
    with said_if_left_running(directory, args["--config"]):
        net = network.resume(directory, key)
    local = [n for n, e in net.nodes.items() if e.local and not e.removed]
    damaged = [
        f"\nThe log of node {n}'s store was damaged: it is kept as {path}, and the node "
        "started with the rest; it catches up from its peers."
        if state.log_only(path)
        else f"\nThe store of node {n} was damaged: it is kept as {path}, and the node started "
        "empty; it catches up from its peers."
        for n, path in sorted(state.damaged_stores(directory, began).items())
    ]
    return (
        f"Resumed {len(local)} nodes {'of ' if net.name else ''}{net.where()} with the messages "
        "and peers they had: "
        f"{net.topology}, at most {render.peers_each(net)}.{''.join(damaged)}\n"
        f"Next: {how_to_run()} status{scope(net, args['--config'])}"
    )


def stopped_network() -> Path:
    """The run directory of the one network stopped here, for --resume without a choice."""
    stopped = state.stopped_networks()
    if len(stopped) == 1:
        return stopped[0]
    if not stopped:
        raise GossipError("no stopped network to resume here: start one with gossip start-network")
    names = ", ".join(d.name.removeprefix("network-") for d in stopped)
    raise GossipError(
        f"{len(stopped)} stopped networks could resume ({names}): choose one with "
        "--port-origin or --config"
    )


def how_to_run() -> str:
    """How this user's shell runs gossip, for the commands the CLI suggests."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    project = root if (root / "pyproject.toml").is_file() else None
    on_path = shutil.which("gossip") is not None
    started = Path(sys.argv[0]).absolute() if sys.argv else None
    script = str(started) if started is not None and started.name == "gossip" else None
    return render.gossip_command(os.environ, on_path, sys.executable, Path.cwd(), project, script)


def scope(net: state.NetworkState, config: str | None = None) -> str:
    """The option that names this network on the command line ('' for the default one)."""
    if net.name:
        return f" --config {config or 'FILE'}"
    if net.port_origin != state.DEFAULT_PORT_ORIGIN:
        return f" --port-origin {net.port_origin}"
    return ""


def start_node(args: dict[str, Any]) -> str:
    """Run one node of a network file in the foreground until SIGTERM."""
    from gossip import config, standalone

    if not args["--config"]:
        raise UsageError("start-node needs its network file: give --config FILE or GOSSIP_CONFIG")
    net = config.load(Path(args["--config"]))
    word = args["<node>"]
    if word == "auto":
        number = standalone.node_from_hostname(standalone.hostname(), net)
    elif word.isascii() and word.isdigit() and len(word) <= 9 and int(word) >= 1:
        number = int(word)
    else:
        raise UsageError(f"node must be a node's number or auto, not {word!r}")
    directory = Path(args["--store"]) if args["--store"] else net.directory
    listen = args["--listen"]
    if ":" in listen or not config.host_ok(listen):
        raise UsageError(
            f"--listen takes an IPv4 address or a host name, without a port, not {listen!r}: "
            "the port is the node's, from the network file"
        )
    return standalone.run(net, number, directory, listen)


def mend(args: dict[str, Any]) -> str:
    """Mend a network file's network, which has no supervisor, until SIGTERM."""
    from gossip import config, mending

    if not args["--config"]:
        raise UsageError("mend needs its network file: give --config FILE or GOSSIP_CONFIG")
    return mending.run(config.load(Path(args["--config"])))


def stop_network(args: dict[str, Any]) -> str:
    if args["--config"]:
        from gossip import config

        try:
            named: Path | None = config.load(Path(args["--config"])).directory
        except GossipError as exc:  # changed since the start: the network still runs
            raise GossipError(
                f"{exc}; to stop its network all the same, mend the file, or run gossip "
                "stop-network without --config if it is the only network running here"
            ) from None
    else:
        origin = port_origin(args)
        named = None if origin is None else state.run_dir(origin)
    damaged = network.unreadable(named)
    if damaged is not None:
        count = network.stop_processes(damaged)
        return (
            f"Stopped the {count} processes of the network in {damaged}, whose state file "
            "could not be read. Its stores are kept there."
        )
    directory, net = network_of(args, adopt=False)
    if not any(e.local for e in net.nodes.values()):
        raise GossipError(f"no node of {net.label} runs on this host: stop each host's part there")
    count = network.stop(directory, net)
    kept = (
        f"\nTheir messages are kept in {directory}: {how_to_run()} start-network --resume"
        f"{scope(net, args['--config'])} "
        "brings the network back with them; a fresh start-network there deletes them."
    )
    if net.name:
        nodes = "1 node" if count == 1 else f"{count} nodes"
        return f"Stopped the {nodes} of {net.label} that ran on this host.{kept}"
    running = "1 node was" if count == 1 else f"{count} nodes were"
    return f"Stopped the network {net.where()} ({running} running).{kept}"


def send_message(args: dict[str, Any]) -> str:
    text: str = args["<message>"]
    problem = text_problem(text)
    if problem is not None:
        raise UsageError(problem + TEXT_ADVICE.get(problem, ""))
    relays = required(args, "--relays", 1, MAX_RELAYS)
    given = args["--id"]
    chosen = os.urandom(16).hex() if given is None else given  # here, so a retry can repeat it
    if not is_message_id(chosen):
        shown = chosen if len(chosen) <= 70 else f"{chosen[:64]}… ({len(chosen)} characters)"
        raise UsageError(f"--id must be 1-64 ASCII letters, digits, _ or -, not {shown!r}")
    net, entry = asked(args)
    name = render.node_name(entry.number)
    try:
        receipt = network.client_for(net, entry).post(text, relays, chosen)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted; {name} may have taken the message: send it again with --id "
            f"{chosen} to be sure it is sent once"
        ) from None
    except NodeUnreachable as exc:
        if exc.refused:
            raise
        raise GossipError(
            f"{exc}; it may have taken the message: send it again with --id {chosen} "
            "to be sure it is sent once"
        ) from None
    if receipt.duplicate:
        return f"{name} already had message {receipt.id}: nothing more was sent."
    if receipt.held:
        return (
            f"Held by {name}: {text!r} (id {receipt.id}). It has no peer to pass it to right "
            "now; it keeps it on disk and passes it on as soon as it is linked again."
        )
    return f"Sent to {name}: {text!r} (id {receipt.id})"


@dataclass(frozen=True)
class Shown:
    """What a command prints, and what it does once that is printed: a read marks its
    messages read only then, so messages it could not print (a full disk, a closed pipe)
    stay unread."""

    text: str
    then: Callable[[], object]


def get_messages(args: dict[str, Any]) -> Shown:
    which = next((w for w in ("unread", "read") if args[w]), "all")
    net, entry = asked(args)
    client = network.client_for(net, entry)
    views = client.read_messages(which, peek=True)
    mode, level = min(args["-p"], 3), min(args["-t"], 3)
    if args["--json"]:
        found = [render.view_json(v, mode) for v in views]
        text = render.as_json({"node": entry.number, "which": which, "messages": found})
    else:
        text = render.messages(entry.number, views, which, mode, level)
    unread = [v.id for v in views if not v.read]

    def mark() -> None:
        if not unread:
            return
        try:
            client.mark_read(unread)
        except GossipError as exc:
            raise GossipError(
                f"the messages are shown, but not all were marked read: {exc}"
            ) from None

    return Shown(text, mark)


def list_peers(args: dict[str, Any]) -> str:
    net, entry = asked(args)
    peers = network.client_for(net, entry).peers()
    if args["--json"]:
        found = [{"node": p.number, "host": p.host, "port": p.port} for p in peers]
        return render.as_json({"node": entry.number, "peers": found})
    return render.peers(entry.number, peers)


def remove_node(args: dict[str, Any]) -> str:
    directory, net, entry = target(args)
    result = network.remove(directory, net, entry.number)
    removed = render.removed(entry.number, result)
    if result.get("dead") and not entry.local:  # silent from here: down, or cut off
        removed += (
            f"\nIt did not answer from here: if it still runs on {entry.host} (a link cut, "
            f"say), stop it there with {how_to_run()} remove-node {entry.number}"
            f"{scope(net, args['--config'])}, or it comes back."
        )
    return removed


def restart_node(args: dict[str, Any]) -> str:
    directory, net = network_of(args)
    entry, damaged = network.restart(directory, net, required(args, "<node>", 1, None))
    report = network.client_for(net, entry).status()
    return render.rejoined(entry, report, restarted=True, damaged=damaged)


def add_node(args: dict[str, Any]) -> str:
    from gossip import lab

    directory, net = network_of(args)
    entry = network.add(directory, net)
    added = render.rejoined(entry, network.client_for(net, entry).status(), restarted=False)
    heal = f"{how_to_run()} heal{scope(net, args['--config'])}"
    return added + render.outside(entry.number, lab.current(net), net.live_numbers(), heal)


def status(args: dict[str, Any]) -> str:
    directory, net = network_of(args)
    rows = network.status(net)
    here = any(e.local for e in net.nodes.values())
    if (
        not here
        and not any(r.state == "up" for r in rows)
        and directory in state.stopped_networks()
    ):
        raise GossipError(state.not_running(directory, net))  # stopped here, not elsewhere
    split = network.parts(network.live_links(rows))
    if args["--json"]:
        return render.as_json(render.status_json(net, rows, split, time.time()))
    return render.status(net, rows, split, time.time())


def draw(args: dict[str, Any]) -> str:
    """Draw the live topology (after removals and healing), or one message's spread."""
    text = args["--message"]
    if text is not None and (problem := text_problem(text)) is not None:
        raise UsageError(f"--message: {problem}, so no node holds it")
    if args["--output"] == "":
        raise UsageError("-o is empty: give the PNG's file name, or leave -o out")
    directory, net = network_of(args)
    default = "spread.png" if text is not None else "live-topology.png"
    output = Path(args["--output"]) if args["--output"] else directory / default
    if output.suffix.lower() != ".png":
        raise UsageError(f"the picture is a PNG: give a file name ending in .png, not {output}")
    from gossip import pictures

    live = pictures.live_topology(net)
    if text is None:
        return f"Live topology picture: {pictures.draw_live(live, output)}"
    picture, arrivals = pictures.draw_message(net, live, text, output)
    nodes = "node" if len(arrivals) == 1 else "nodes"
    lines = [f"{text!r} reached {len(arrivals)} {nodes}; first arrivals:"]
    lines += spread.timeline(arrivals, indent="  ")
    return "\n".join([*lines, f"Spread picture: {picture}"])


def web(args: dict[str, Any]) -> str:
    """Serve the live page until Ctrl-C (aiohttp and prometheus-client load only here)."""
    port = required(args, "--port", 0, 65535)
    network_of(args)  # no network: say so now, not on the page
    from gossip.web.app import main as serve
    from gossip.web.console import Console

    serve(Console(lambda: network_of(args, adopt=False)), args["--host"], port)
    return "Stopped serving the page."


def new_secret(args: dict[str, Any]) -> str:
    if not args["<file>"].strip():
        raise UsageError("new-secret needs the file to write, as in gossip new-secret lab.secret")
    path = Path(args["<file>"])
    if path.is_dir():
        raise GossipError(
            f"{path} is a directory: give new-secret a file's name, as in {path}/lab.secret"
        )
    if path.exists():
        raise GossipError(f"{path} exists: keep it, or delete it first to make a new secret")
    try:
        state.write_secret(path, auth.new_secret())
    except OSError as exc:
        raise GossipError(f"cannot write {path}: {exc.strerror}") from None
    return f"Wrote a new secret to {path} (readable only by you): copy it to every host."


def demo(args: dict[str, Any]) -> str:
    """Start a network, send one message, show it spreading and the paths it took."""
    start_args = dict(args, circular=False, random=True, powerlaw=False, turan=False)
    start_args.update({"<degree>": None, "<partitions>": None, "--seed": None, "--plot": False})
    origin = port_origin(args) or state.DEFAULT_PORT_ORIGIN
    with said_if_left_running(state.run_dir(origin)):
        net, report = launch(start_args)
        return _demo_spread(net, report)


def _demo_spread(net: state.NetworkState, report: str) -> str:
    """The demo once its network runs (and keeps running: the user goes on with it)."""
    print(report, flush=True)
    live = net.live_numbers()
    sender = live[0]
    message_id = network.client_for(net, net.nodes[sender]).post(DEMO_TEXT).id
    print(f"\nSent {DEMO_TEXT!r} to {render.node_name(sender)}.", flush=True)
    began = time.monotonic()

    on_terminal = sys.stdout.isatty()

    def progress(seen: dict[int, float], end: str = "") -> None:
        elapsed = (time.monotonic() - began) * 1000
        line = f"Spreading: {len(seen)}/{len(live)} nodes hold it ({elapsed:.0f} ms)"
        print(f"\r{line}" if on_terminal else line, end=end, flush=True)

    watch = progress if on_terminal else None
    holders = network.await_spread(net, message_id, DEMO_TIMEOUT, interval=0.025, progress=watch)
    progress(holders, end="\n")
    if len(holders) < len(live):
        missing = compress_ranges(sorted(set(live) - set(holders)))
        raise GossipError(f"the message did not reach nodes {missing} within {DEMO_TIMEOUT:.0f} s")
    spread_ms = (max(holders.values()) - holders[sender]) * 1000
    print(f"Every node holds it: the last one got it {spread_ms:.1f} ms after it was sent.")
    from gossip import pictures

    directory = net.directory
    live_net = pictures.live_topology(net)
    topology_png = pictures.draw_live(live_net, directory / "live-topology.png")
    spread_png, arrivals = pictures.draw_message(net, live_net, DEMO_TEXT, directory / "spread.png")
    print("First arrivals, node (+ms after sending):")
    print("\n".join(spread.timeline(arrivals, indent="  ")), end="\n\n")
    reader = 10 if 10 in live else live[-1]
    client = network.client_for(net, net.nodes[reader])
    views = client.read_messages("all", peek=True)
    print(render.messages(reader, views, "all", 0, 0), flush=True)
    client.mark_read([v.id for v in views if not v.read])  # shown: now read, as get-messages
    run, here = how_to_run(), scope(net)  # the network it started, if not the default one
    return (
        f"\nPictures: {topology_png}\n          {spread_png}\n"
        "\nThe network is still running. Try:\n"
        f"  {run} get-messages {reader} -ppp -tt{here}\n"
        f"  {run} list-peers {reader}{here}\n"
        f"  {run} status{here}\n"
        f"  {run} remove-node {live[1]}{here}\n"
        f'  {run} send-message {live[-1]} "Hello again"{here}\n'
        f'  {run} draw --message "Hello again"{here}\n'
        f"  {run} stop-network{here}"
    )


def netem(args: dict[str, Any]) -> str:
    """Delay, jitter and loss between nodes, on every link or one; or clear them."""
    from gossip import lab
    from gossip.conditions import MAX_DELAY

    changes: dict[str, Any] = {"delay_ms": 0, "jitter_ms": 0, "loss_percent": 0, "links": []}
    if not args["--off"]:
        given = [args[o] for o in ("--delay", "--jitter", "--loss")]
        if all(g is None for g in given):
            raise UsageError("say what to impose: --delay 100ms, --loss 5% (or --off to clear)")
        if args["--delay"] is not None:
            changes["delay_ms"] = lab.milliseconds(args["--delay"], "--delay")
        if args["--jitter"] is not None:
            changes["jitter_ms"] = lab.milliseconds(args["--jitter"], "--jitter")
        if args["--loss"] is not None:
            changes["loss_percent"] = lab.percent(args["--loss"])
        if args["--link"] is not None:
            changes["links"] = [lab.link(args["--link"])]
        total, most = changes["delay_ms"] + changes["jitter_ms"], MAX_DELAY * 1000
        if total > most:
            raise UsageError(
                f"--delay plus --jitter is {total:g} ms, more than the {most:g} ms a peer's "
                "reply may take: give less of either"
            )
    directory, net = network_of(args)
    lab.check_live(net, [n for pair in changes["links"] for n in pair])
    imposed = lab.impose(directory, net, changes)
    return f"Network conditions: {imposed.describe()}."


def partition(args: dict[str, Any]) -> str:
    """Cut the network into groups that no frame crosses."""
    from gossip import lab

    if len(args["<group>"]) < 2:
        raise UsageError("a partition needs two groups or more, as in partition 1-8 9-16")
    directory, net = network_of(args)
    groups = lab.partition_groups(args["<group>"], net)
    imposed = lab.impose(directory, net, {"groups": groups})
    rest = sorted(set(net.live_numbers()).difference(*groups))
    also = ""
    if len(rest) == 1:
        also = f" Node {rest[0]}, in no group, is one more side."
    elif rest:
        also = f" Nodes {compress_ranges(rest)}, in no group, are one more side."
    return (
        f"Network conditions: {imposed.describe()}.{also} "
        f"{how_to_run()} heal{scope(net, args['--config'])} ends the partition."
    )


def heal(args: dict[str, Any]) -> str:
    from gossip import lab

    directory, net = network_of(args)
    parted = bool(lab.current(state.load(directory) or net).groups)
    imposed = lab.impose(directory, net, {"groups": []})  # told again, parted or not: a
    # node that missed the last heal takes it now
    if not parted:
        return f"There was no partition to heal. Network conditions: {imposed.describe()}."
    return (
        f"Healed the partition. Network conditions: {imposed.describe()}.\n"
        "The parts find each other within seconds and trade what they missed."
    )


def pause_node(args: dict[str, Any]) -> str:
    from gossip import lab

    directory, net, entry = target(args)
    lab.pause(directory, net, entry.number, stop=True)
    return (
        f"Paused {render.node_name(entry.number)} (SIGSTOP): it stops answering, as a hung "
        f"machine. {how_to_run()} resume {entry.number}{scope(net, args['--config'])} "
        "continues it."
    )


def resume_node(args: dict[str, Any]) -> str:
    from gossip import lab

    directory, net, entry = target(args)
    lab.pause(directory, net, entry.number, stop=False)
    return (
        f"Resumed {render.node_name(entry.number)} (SIGCONT); it rejoins and catches up "
        "on what it missed."
    )


def experiment(args: dict[str, Any]) -> str:
    """Run a scenario, each strategy on a fresh network: a table and three pictures."""
    from gossip import experiment as lab_experiment
    from gossip import labplots
    from gossip import scenario as lab_scenario

    scenario = lab_scenario.load(Path(args["<file>"]))
    origin = port_origin(args) or lab_experiment.DEFAULT_PORT_ORIGIN
    output = Path(args["--output"] or ".")
    labplots.prepare(output)
    bar = lab_experiment.ProgressBar()
    try:
        results = lab_experiment.run(scenario, origin, bar)
    finally:
        bar.end()
    # The table first: a picture that cannot be written must not cost the run's results.
    print(
        f"Experiment {scenario.name!r}: {scenario.nodes} nodes, "
        f"{scenario.messages} messages at {scenario.rate:g}/s, latency to all live nodes.\n"
        + lab_experiment.table(results, scenario.bars),
        flush=True,
    )
    try:
        pictures = labplots.draw_all(results, output, scenario.name)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise GossipError(
            f"the pictures could not be written: {exc.strerror or exc}{where}; the table "
            "above holds the results"
        ) from None
    return "Pictures: " + ", ".join(str(p) for p in pictures)


COMMANDS = {
    "start-network": start_network,
    "start-node": start_node,
    "mend": mend,
    "stop-network": stop_network,
    "send-message": send_message,
    "get-messages": get_messages,
    "list-peers": list_peers,
    "remove-node": remove_node,
    "restart-node": restart_node,
    "add-node": add_node,
    "status": status,
    "draw": draw,
    "demo": demo,
    "web": web,
    "new-secret": new_secret,
    "netem": netem,
    "partition": partition,
    "heal": heal,
    "pause": pause_node,
    "resume": resume_node,
    "experiment": experiment,
}


def default_config(args: dict[str, Any], command: str) -> str:
    """``$GOSSIP_CONFIG`` as the network file of a command that takes one and was given
    neither it nor a port origin: a container's shell names its network once. What an
    error about that file should add, to say where its name came from ('' if not)."""
    configured = os.environ.get("GOSSIP_CONFIG")
    if not configured or args["--config"] or args["--port-origin"]:
        return ""
    if any("--config" in p for p in USAGE.patterns if p.split()[1] == command):
        args["--config"] = configured
        return " ($GOSSIP_CONFIG names it)"
    return ""


def usage_line(argv: list[str]) -> str:
    """One line for a command line docopt refused: what is wrong, and the right form."""
    return usage.problem(USAGE, argv, list(COMMANDS))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        args = docopt(__doc__, argv, default_help=False)
    except DocoptExit:
        if usage.asks_help(USAGE, argv):  # -h after a command: not the h of -dash, nor a value
            return shown(usage.command_help(__doc__, USAGE, argv, list(COMMANDS)))
        print(f"gossip: {usage_line(argv)}", file=sys.stderr)
        return 2
    if args["--help"] or args["--version"]:
        return shown(__doc__ if args["--help"] else f"gossip {__version__}")
    command = next(c for c in COMMANDS if args[c])
    empty = next((o for o in sorted(USAGE.takes_value) if args.get(o) == ""), None)
    if empty is not None and (command, empty) not in OWN_EMPTY:
        print(f"gossip: {empty} is empty: give it a value, or leave it out", file=sys.stderr)
        return 2
    if command == "experiment" and not args["<file>"].strip():
        print("gossip: the experiment file's name is empty: give its path", file=sys.stderr)
        return 2
    named = default_config(args, command)
    result: str | Shown | None = None
    try:
        result = COMMANDS[command](args)
        if isinstance(result, Shown):
            print(result.text, flush=True)
            result.then()
        else:
            print(result)
    except NodeUnreachable as exc:
        remove = f"{exc}; if it died, take it out with gossip remove-node {args['<node>'] or 'N'}"
        stopped = stopped_here(args["--config"])  # not one node down: the network was stopped
        print(f"gossip: {scoped(stopped or remove, args, how_to_run())}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"gossip: {exc}", file=sys.stderr)
        return 2
    except GossipError as exc:
        where = named if named and f"network file {args['--config']}" in str(exc) else ""
        print(f"gossip: {scoped(str(exc), args, how_to_run())}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"gossip: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # the container image leaves out the plotting stack
        print(
            f"gossip: {command} needs the Python package {exc.name}, which is not installed "
            "here (the container image has no plotting): run it where gossip is installed whole",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except OSError as exc:  # the machine's trouble (a full disk), not the user's input
        where = f" ({exc.filename})" if exc.filename else ""
        if result is None:
            print(f"gossip: {exc.strerror or exc}{where}: fix that and try again", file=sys.stderr)
        else:  # done: only its report was lost, and doing it again may do it twice
            sent = re.search(r"\(id ([\w-]+)\)", str(getattr(result, "text", result)))
            again = f"; to send it again as the same message, give --id {sent[1]}" if sent else ""
            print(
                f"gossip: {command} was done, but what it printed could not be written "
                f"({exc.strerror or exc}){again}",
                file=sys.stderr,
            )
        return 1
    return 0


NAMES = "|".join(sorted(COMMANDS, key=len, reverse=True))  # start-network before start
SUGGESTED = re.compile(rf"(?<![\w/.'\"-])gossip ({NAMES})(?: \d+)?(?=$|[\s.,;:)])")
"""A command an error suggests (``gossip resume 2``): not part of a path or of quoted
text, and followed by a space, the end or punctuation (``status-x`` is none)."""


def scoped(message: str, args: dict[str, Any], run: str = "gossip") -> str:
    """``message`` with each command it suggests run as this user's shell runs gossip
    (``run``: ``uv run gossip`` under uv) and naming the network this command was given
    (``--port-origin``, ``--config``) where that command takes it, so that it works as
    printed while other networks run. The network is left out if none was given, or the
    message names one already."""
    given = next((o for o in ("--port-origin", "--config") if args.get(o)), None)
    if "--port-origin" in message or "--config" in message:
        given = None

    def rewrite(suggested: re.Match[str]) -> str:
        before = message[: suggested.start()]
        if run != "gossip" and before.endswith(run.removesuffix("gossip")):
            return suggested[0]  # written as this shell runs it already
        command = suggested[0].replace("gossip", run, 1)
        if given is None or not any(
            given in p for p in USAGE.patterns if p.split()[1] == suggested[1]
        ):
            return command
        return f"{command} {given} {shlex.quote(args[given])}"

    return SUGGESTED.sub(rewrite, message)


def shown(text: str) -> int:
    """Print the help or the version; an exit status (1 if the output cannot be written)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except OSError as exc:
        print(f"gossip: {exc.strerror or exc}: nothing could be printed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
