"""Where a running network keeps its state: a run directory outside the working directory.

``$GOSSIP_HOME`` if set, else ``$XDG_STATE_HOME/gossip``, else ``~/.local/state/gossip``.
Each network gets ``network-<port origin>/`` there, holding ``network.json`` (nodes,
ports, process ids, settings), the network's ``secret``, and each node's store and log,
so every command works from any folder
and networks with different port origins run side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from gossip.conditions import conditions_from
from gossip.errors import GossipError
from gossip.protocol import FrameError
from gossip.ranges import compress_ranges
from gossip.strategy import MODES

DEFAULT_PORT_ORIGIN = 7000
STATE_FILE = "network.json"
LOCK_FILE = ".lock"
ACTING_LOCK_FILE = ".acting"
ACTING_WAIT = 60.0
"""Seconds a command waits for another that starts or stops nodes (``acting``)."""
CHANGE_WAIT = 10.0
"""Seconds a change of the state waits for another (``change``): each holds the lock for
a read and a write, so one held longer is a process stopped (Ctrl-Z) or hung."""
SECRET_FILE = "secret"
SUPERVISOR_MODULE = "gossip.supervisor"


@dataclass
class NodeEntry:
    number: int
    host: str
    port: int
    peers: list[int]
    pid: int = 0
    removed: bool = False
    local: bool = True
    """Runs on this host. A network file spreads nodes over hosts: this host knows the
    others' addresses, not their processes."""

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


STOPPED = -1
"""The supervisor pid of a network ``stop-network`` is stopping or stopped: set before any
process is signalled, so no command or node that finds the supervisor gone adopts the
network back to life meanwhile (a start or a resume records a real pid again)."""


@dataclass
class NetworkState:
    port_origin: int
    max_peers: int
    topology: str
    nodes: dict[int, NodeEntry]
    supervisor_pid: int = 0
    started: float = 0.0
    insecure: bool = False
    """Started with ``--insecure``: no secret, frames go unsealed."""
    name: str = ""
    """The network file's name, for a network that spans hosts (its run directory is
    ``network-<name>``); empty for one started here by port origin."""
    strategy: dict[str, Any] = field(default_factory=dict)
    """How its nodes spread messages (``gossip.strategy``); empty: the default, push."""
    conditions: dict[str, Any] = field(default_factory=dict)
    """The network conditions in force (``gossip.conditions``): delay, loss, partition,
    paused nodes; empty: a perfect network."""
    key: bytes | None = field(default=None, repr=False, compare=False)
    """The secret that seals every frame, read from the run directory (never saved with
    the rest)."""

    def node(self, number: int) -> NodeEntry:
        """The entry for ``number``, or a GossipError naming the nodes that exist."""
        entry = self.nodes.get(number)
        if entry is None:
            raise GossipError(
                f"node {number} does not exist: this network has nodes {self.describe_numbers()}"
            )
        if entry.removed:
            live = self.live_numbers()
            raise GossipError(
                f"node {number} was removed from this network: live nodes are "
                f"{compress_ranges(live)}"
                if live
                else f"node {number} was removed from this network, and no node is live: "
                f"gossip restart-node {number} brings it back"
            )
        return entry

    @property
    def directory(self) -> Path:
        """Its run directory on this host."""
        return run_dir(self.name or self.port_origin)

    @property
    def label(self) -> str:
        """How messages name it: by network file, or by port origin."""
        return f"network {self.name!r}" if self.name else f"port origin {self.port_origin}"

    def live_numbers(self) -> list[int]:
        return sorted(n for n, e in self.nodes.items() if not e.removed)

    def describe_numbers(self) -> str:
        return compress_ranges(sorted(self.nodes))

    def port_range(self) -> str:
        ports = sorted(e.port for e in self.nodes.values())
        return f"{ports[0]}-{ports[-1]}" if len(ports) > 1 else str(ports[0])

    def where(self) -> str:
        """``on ports 7001-7016``, or for a network file, which of its nodes run here."""
        if not self.name:
            return f"on ports {self.port_range()}"
        local = sum(1 for e in self.nodes.values() if e.local)
        return f"{self.name!r} ({local} of its {len(self.nodes)} nodes on this host)"


def gossip_home() -> Path:
    """Where run directories live, as one absolute path: processes are found by it, and the
    supervisor runs in another folder."""
    if home := os.environ.get("GOSSIP_HOME"):
        return Path(home).expanduser().resolve()
    if xdg := os.environ.get("XDG_STATE_HOME"):
        return (Path(xdg).expanduser() / "gossip").resolve()
    return (Path.home() / ".local" / "state" / "gossip").resolve()


def run_dir(origin_or_name: int | str) -> Path:
    """``network-<port origin>``, or ``network-<name>`` for a network file's network."""
    return gossip_home() / f"network-{origin_or_name}"


def store_path(directory: Path, number: int) -> Path:
    """Where node ``number`` keeps its messages in a run directory."""
    return directory / f"node-{number}.db"


def damaged_stores(directory: Path, since: float) -> dict[int, Path]:
    """The stores a node found damaged and moved aside at ``since`` or later, by node, for
    the command to say so: ``node-N.db.corrupt-<time>`` (the node started empty), else
    ``node-N.db-wal.corrupt-<time>`` (its log alone: it kept the rest)."""
    found: dict[int, Path] = {}
    for part in (".db-wal.corrupt-", ".db.corrupt-"):  # a whole store's wins
        for path in directory.glob(f"node-*{part}*"):
            number, _, stamp = path.name.removeprefix("node-").partition(part)
            fresh = stamp.isdigit() and int(stamp) >= int(since)
            if number.isascii() and number.isdigit() and fresh:
                found[int(number)] = path
    return found


def log_only(damaged: Path) -> bool:
    """Whether a store ``damaged_stores`` names lost its log alone, not the whole of it."""
    return ".db-wal.corrupt-" in damaged.name


def save(state: NetworkState, directory: Path) -> None:
    """Write atomically, so a reader never sees half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    data = asdict(state)
    del data["key"]
    data["nodes"] = [asdict(e) for e in state.nodes.values()]
    tmp = directory / f".{STATE_FILE}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, directory / STATE_FILE)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GossipError(
            f"cannot write the network's state in {directory}: {exc.strerror or exc}; "
            "free some space (or fix its permissions) and run the command again"
        ) from None


@contextlib.contextmanager
def acting(directory: Path, network: NetworkState) -> Iterator[None]:
    """Held by a command that starts or stops a node (remove, restart, add) from its first
    look to its last word, so two never act at once, each on what the other undoes: the
    second waits, then sees ``network`` as the first left it (GossipError if it waited
    ``ACTING_WAIT`` seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ACTING_LOCK_FILE, "a") as lock:
        if not _taken(lock, ACTING_WAIT):
            raise GossipError(
                f"another command has been starting or stopping this network's nodes for "
                f"{ACTING_WAIT:g} s{_held_by(lock)}, then run this one again"
            )
        latest = load(directory)
        if latest is not None:
            _learn(network, latest)
        yield


@contextlib.contextmanager
def change(directory: Path, network: NetworkState) -> Iterator[NetworkState]:
    """Change a running network's state: the latest saved state, under a lock, saved when
    the block ends, so commands run at once never undo each other's changes. ``network``
    (the caller's copy) is brought up to date with what such blocks change: the nodes, the
    supervisor and the conditions saved.

    Ctrl-Z waits until the lock is let go: stopped holding it, a command held up every
    other, and the supervisor that would mend the network."""
    directory.mkdir(parents=True, exist_ok=True)
    with signals_held(signal.SIGTSTP), open(directory / LOCK_FILE, "a") as lock:
        if not _taken(lock, CHANGE_WAIT):
            raise GossipError(
                f"another command has held this network's state for {CHANGE_WAIT:g} s"
                f"{_held_by(lock)}, then run this one again"
            )
        latest = load(directory) or network
        latest.key = network.key
        yield latest
        save(latest, directory)
    _learn(network, latest)


@contextlib.contextmanager
def signals_held(*signals: signal.Signals) -> Iterator[None]:
    """These signals wait until the block ends, then take effect: in the calling thread (a
    command run from another, as the web page's, is not interrupted anyway; one that
    stops a process, as Ctrl-Z, reaches a thread that does not hold it)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _taken(lock: IO[str], wait: float) -> bool:
    """Take ``lock``, waiting at most ``wait`` seconds; whether it was taken."""
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)


def _holding(lock: IO[str]) -> int | None:
    """The process that holds ``lock`` (``/proc/locks``: device and inode), if it can be told."""
    found = os.fstat(lock.fileno())
    device = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if fields[1] == "FLOCK" and fields[5] == device:
                return int(fields[4])
    return None


def _held_by(lock: IO[str]) -> str:
    """Who holds ``lock`` and what to do about it: continue it if it is stopped, else wait
    for it or end it (``(process 123: gossip netem --delay 5ms)``)."""
    pid = _holding(lock)
    if pid is None:
        return ": wait for it to end, or end it"
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        words = []
    shown = " ".join(" ".join(w.decode(errors="replace") for w in words).split())
    who = f" (process {pid}: {shown[:80]})" if shown else f" (process {pid})"
    if stopped(pid):
        return f"{who}: it is stopped (Ctrl-Z?): continue it (fg, or kill -CONT {pid}) or end it"
    return f"{who}: wait for it to end, or end it"


def stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped by a signal (its ``/proc`` stat opened anew)."""
    try:
        stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return False
    try:
        return stopped_at(stat)
    finally:
        os.close(stat)


def stopped_at(stat: int) -> bool:
    """Whether the process whose ``/proc`` stat is open as ``stat`` is stopped by a signal
    (state T): alive, answering nothing until continued. A process being traced (t:
    py-spy, gdb) is not."""
    try:
        fields = os.pread(stat, 512, 0).rpartition(b")")[2].split()
    except OSError:  # the process is gone
        return False
    return fields[:1] == [b"T"]


def _learn(network: NetworkState, latest: NetworkState) -> None:
    """Bring a command's copy of the state up to date with what commands change in it:
    the nodes, the supervisor, the conditions."""
    network.nodes = latest.nodes
    network.supervisor_pid = latest.supervisor_pid
    network.conditions = latest.conditions


def load(directory: Path) -> NetworkState | None:
    """The state in ``directory``, or None if there is none or it cannot be read."""
    try:
        data = json.loads((directory / STATE_FILE).read_text())
        nodes = {e["number"]: NodeEntry(**e) for e in data.pop("nodes")}
        network = NetworkState(nodes=nodes, **data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not _well_formed(network):
        return None
    if not network.insecure:
        with contextlib.suppress(OSError):
            network.key = (directory / SECRET_FILE).read_bytes().strip() or None
    return network


def _whole(value: object, lowest: int = 0, highest: int = 1 << 62) -> bool:
    return type(value) is int and lowest <= value <= highest


def _well_formed(network: NetworkState) -> bool:
    """Whether a loaded state holds what every command takes it to (a file edited by hand,
    or damaged, may hold JSON of other types): else it counts as unreadable."""
    nodes = network.nodes
    if not (
        nodes
        and _whole(network.port_origin, 0, 65535)
        and _whole(network.max_peers, 1)
        and isinstance(network.topology, str)
        and _whole(network.supervisor_pid, STOPPED)
        and type(network.started) in (int, float)
        and type(network.insecure) is bool
        and isinstance(network.name, str)
        and isinstance(network.strategy, dict)
        and isinstance(network.conditions, dict)
    ):
        return False
    for number, entry in nodes.items():
        if not (
            _whole(number, 1)
            and entry.number == number
            and isinstance(entry.host, str)
            and entry.host
            and _whole(entry.port, 1, 65535)
            and isinstance(entry.peers, list)
            and all(_whole(p, 1) for p in entry.peers)
            and _whole(entry.pid)
            and type(entry.removed) is bool
            and type(entry.local) is bool
        ):
            return False
    strategy = network.strategy
    if strategy and not (
        strategy.get("mode", "push") in MODES
        and all(_whole(strategy.get(k, 0)) for k in ("fanout", "interval_ms", "ttl"))
    ):
        return False
    try:
        conditions_from(network.conditions)
    except FrameError:
        return False
    return True


def write_secret(path: Path, secret: bytes) -> None:
    """Keep a network's secret where only this user can read it (mode 0600)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret + b"\n")


def pid_alive(pid: int, directory: Path | None = None) -> bool:
    """True if ``pid`` is a live process of a gossip network (not a zombie, not a stranger),
    and, given a run ``directory``, of that network.

    Checking the command line keeps a stale run directory, after a reboot or a busy day
    reused its process ids, from pointing ``stop-network`` at somebody else's process.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except FileNotFoundError:
        return not proc.parent.joinpath("self").exists()
    except OSError:
        return True
    if stat.rpartition(")")[2].split()[0] == "Z" or SUPERVISOR_MODULE.encode() not in cmdline:
        return False
    return directory is None or str(directory).encode() in cmdline.split(b"\0")


def may_run(entry: NodeEntry, directory: Path) -> bool:
    """Whether a node may still have its process: another host's (only that host can
    tell), or this host's whose process lives (a paused one does; one killed does not)."""
    return not entry.local or pid_alive(entry.pid, directory)


def released(pid: int, directory: Path | None = None) -> bool:
    """Whether a process of this network has let go of all it held, its ports first: gone,
    or a zombie with no thread left (or the pid is a stranger's since).

    ``pid_alive`` is not enough to reuse a port: an exiting process's command line reads
    empty once its memory is gone, before its sockets close, and a main thread that ended
    shows as a zombie while the node's other threads still hold them.
    """
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        threads = len(os.listdir(proc / "task"))
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:  # gone, or not ours to look at: not one of the network's
        return True
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return threads <= 1
    return bool(cmdline) and not pid_alive(pid, directory)


def parent_of(pid: int) -> int:
    """The pid of a process's parent; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[1])


def processes_of(directory: Path) -> list[int]:
    """Every live process of a run directory's network: its supervisor and the nodes it
    forked (which share its command line), whatever the state file says. So nothing a
    network started escapes ``stop-network``, not even after its supervisor was killed."""
    return gossip_processes().get(str(directory), [])


def gossip_processes() -> dict[str, list[int]]:
    """The live processes of every network on this machine, by run directory (one look
    through ``/proc``)."""
    found: dict[str, list[int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        module = SUPERVISOR_MODULE.encode()
        if module not in arguments[:-1]:
            continue
        pid = int(proc.name)
        if pid != os.getpid() and pid_alive(pid):
            directory = arguments[arguments.index(module) + 1].decode(errors="replace")
            found.setdefault(directory, []).append(pid)
    return found


def running(directory: Path) -> NetworkState | None:
    """The network of a run directory if any of its processes still lives, else None.

    Its supervisor says so at once; without one (killed), its nodes may still serve.
    """
    state = load(directory)
    if state is None:
        return None
    if pid_alive(state.supervisor_pid, directory) or processes_of(directory):
        return state
    return None


def running_networks() -> list[tuple[Path, NetworkState]]:
    """Networks with a live process here (supervisor or node), by name and port origin.

    A live supervisor answers for its network at once; ``/proc`` is looked through (once)
    only for the networks whose supervisor is gone.
    """
    home = gossip_home()
    found, unsure = [], []
    for directory in sorted(home.glob("network-*")) if home.is_dir() else []:
        state = load(directory)
        if state is None:
            continue
        if pid_alive(state.supervisor_pid, directory):
            found.append((directory, state))
        else:
            unsure.append((directory, state))
    processes = gossip_processes() if unsure else {}
    found += [(d, state) for d, state in unsure if processes.get(str(d))]
    return sorted(found, key=lambda item: (item[1].name, item[1].port_origin))


def stopped_networks() -> list[Path]:
    """Run directories of networks that were stopped here with their stores kept."""
    home = gossip_home()
    directories = sorted(home.glob("network-*")) if home.is_dir() else []
    return [
        d
        for d in directories
        if any(d.glob("node-*.db")) and load(d) is not None and running(d) is None
    ]


def unreadable_running() -> list[Path]:
    """Run directories here whose processes run but whose state cannot be read (a file
    damaged or edited by hand): no command can address them, only stop them."""
    home = gossip_home()
    return sorted(
        Path(d)
        for d, pids in gossip_processes().items()
        if pids and Path(d).parent == home and load(Path(d)) is None
    )


def not_running(directory: Path, network: NetworkState | int | None) -> str:
    """Why no command can address the network of this run directory (``network``: it, or
    its port origin, as the command named it), and what to do."""
    if isinstance(network, NetworkState) and network.name:
        option, the = " --config with its network file", f"the network {network.name!r}"
        none = f"{the} is not running on this host"
    else:
        origin = network.port_origin if isinstance(network, NetworkState) else network
        option = "" if origin is None else f" --port-origin {origin}"
        where = f"port origin {origin}" if origin is not None else f"{directory}"
        the, none = f"the network on {where}", f"no network is running on {where}"
    if load(directory) is None and processes_of(directory):
        return (
            f"{the} runs, but its state file {directory / STATE_FILE} cannot "
            f"be read: gossip stop-network{option} stops its processes and keeps its stores"
        )
    if directory in stopped_networks():
        return (
            f"{none}: gossip start-network --resume{option} brings "
            "back the one stopped there with its messages (a fresh start-network deletes them)"
        )
    return f"{none}: start one with gossip start-network{option}"


def find_network(port_origin: int | None) -> tuple[Path, NetworkState]:
    """The network a command addresses: the one at ``port_origin``, else the only one running.

    Raises GossipError with what to do when there is none or the choice is ambiguous.
    """
    if port_origin is not None:
        directory = run_dir(port_origin)
        state = running(directory)
        if state is None:
            raise GossipError(not_running(directory, port_origin))
        return directory, state
    networks = running_networks()
    if not networks:
        unreadable = unreadable_running()
        if len(unreadable) == 1:
            raise GossipError(not_running(unreadable[0], None))
        stopped = stopped_networks()
        if len(stopped) == 1:
            raise GossipError(
                "no network is running: gossip start-network --resume brings back the one "
                "stopped here with its messages, gossip start-network starts a new one"
            )
        if stopped:
            names = ", ".join(d.name.removeprefix("network-") for d in stopped)
            raise GossipError(
                f"no network is running; {len(stopped)} stopped here could resume ({names}): "
                "gossip start-network --resume with --port-origin or --config brings one "
                "back, gossip start-network starts a new one"
            )
        raise GossipError("no network is running: start one with gossip start-network")
    if len(networks) > 1:
        names = ", ".join(s.label for _, s in networks)
        raise GossipError(
            f"{len(networks)} networks are running ({names}): "
            "choose one with --port-origin or --config"
        )
    return networks[0]
