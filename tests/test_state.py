"""Run-directory state (``gossip.state``) and the client's pure helpers (``gossip.client``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gossip import state
from gossip.client import GossipClient, Peer, format_path, parse_address
from gossip.errors import GossipError
from gossip.network import wait_until
from gossip.protocol import Frame
from gossip.ranges import compress_ranges
from gossip.state import (
    NetworkState,
    NodeEntry,
    find_network,
    gossip_home,
    load,
    pid_alive,
    run_dir,
    save,
)


def network(count: int = 16, supervisor_pid: int = 0, port_origin: int = 7000) -> NetworkState:
    nodes = {
        n: NodeEntry(n, "127.0.0.1", port_origin + n, [n % count + 1], pid=1000 + n)
        for n in range(1, count + 1)
    }
    return NetworkState(port_origin, 3, f"circular ({count} nodes)", nodes, supervisor_pid, 12.5)


# compress_ranges


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([], "none"),
        ([4], "4"),
        ([1, 2, 3, 5], "1-3, 5"),
        ([1, 3, 5], "1, 3, 5"),
        ([1, 2], "1-2"),
        ([1, 2, 4, 5, 6, 9, 11, 12], "1-2, 4-6, 9, 11-12"),
        (list(range(1, 17)), "1-16"),
    ],
)
def test_compress_ranges(numbers: list[int], text: str) -> None:
    assert compress_ranges(numbers) == text


# NetworkState


def test_node_returns_entry() -> None:
    net = network()
    assert net.node(7) is net.nodes[7]
    assert net.node(7).address == ("127.0.0.1", 7007)


@pytest.mark.parametrize("number", [42, 0, 17, -1])
def test_node_unknown(number: int) -> None:
    with pytest.raises(GossipError) as caught:
        network().node(number)
    assert str(caught.value) == f"node {number} does not exist: this network has nodes 1-16"


def test_node_removed() -> None:
    net = network()
    net.nodes[3].removed = True
    net.nodes[9].removed = True
    with pytest.raises(GossipError) as caught:
        net.node(3)
    assert str(caught.value) == (
        "node 3 was removed from this network: live nodes are 1-2, 4-8, 10-16"
    )
    # A removed node still exists, so an unknown number names every node.
    with pytest.raises(GossipError, match=r"this network has nodes 1-16$"):
        net.node(42)


def test_live_numbers_and_describe() -> None:
    net = network(5)
    net.nodes[2].removed = True
    assert net.live_numbers() == [1, 3, 4, 5]
    assert net.describe_numbers() == "1-5"


def test_port_range() -> None:
    assert network(16).port_range() == "7001-7016"
    assert network(1).port_range() == "7001"


# save and load


def test_save_load_round_trip(tmp_path: Path) -> None:
    net = network(4, supervisor_pid=4321)
    net.nodes[2].removed = True
    directory = tmp_path / "deep" / "network-7000"
    save(net, directory)
    assert load(directory) == net
    assert sorted(p.name for p in directory.iterdir()) == [state.STATE_FILE]


def test_save_overwrites(tmp_path: Path) -> None:
    save(network(4), tmp_path)
    newer = network(6, supervisor_pid=9)
    save(newer, tmp_path)
    assert load(tmp_path) == newer


def test_load_missing(tmp_path: Path) -> None:
    assert load(tmp_path) is None
    assert load(tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "{",
        "[]",
        "{}",
        '{"nodes": []}',
        '{"nodes": [{"number": 1}]}',
        '{"nodes": {"1": {}}}',
        '{"nodes": [1]}',
        '{"port_origin": 7000, "max_peers": 3, "topology": "x", "nodes": [], "extra": 1}',
    ],
)
def test_load_garbage(tmp_path: Path, content: str) -> None:
    (tmp_path / state.STATE_FILE).write_text(content)
    assert load(tmp_path) is None


@pytest.mark.parametrize("content", ["null", "3"])
def test_load_json_that_is_not_an_object(tmp_path: Path, content: str) -> None:
    # Valid JSON that is not an object is as unreadable as garbage.
    (tmp_path / state.STATE_FILE).write_text(content)
    assert load(tmp_path) is None


def test_load_binary_garbage(tmp_path: Path) -> None:
    (tmp_path / state.STATE_FILE).write_bytes(b"\xff\xfe\x00garbage")
    assert load(tmp_path) is None


# gossip_home


def test_gossip_home_prefers_gossip_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path / "g"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert gossip_home() == tmp_path / "g"
    assert run_dir(7100) == tmp_path / "g" / "network-7100"


def test_gossip_home_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOSSIP_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert gossip_home() == tmp_path / "x" / "gossip"
    monkeypatch.setenv("GOSSIP_HOME", "")
    assert gossip_home() == tmp_path / "x" / "gossip"


def test_gossip_home_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOSSIP_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gossip_home() == tmp_path / ".local" / "state" / "gossip"
    assert run_dir(7000) == tmp_path / ".local" / "state" / "gossip" / "network-7000"


# pid_alive and find_network


def test_pid_alive_refuses_non_positive() -> None:
    assert pid_alive(0) is False
    assert pid_alive(-1) is False


def test_pid_alive_of_this_process_is_false() -> None:
    # Alive, but not a gossip supervisor: its command line lacks gossip.supervisor.
    assert pid_alive(os.getpid()) is False


def test_pid_alive_of_dead_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert pid_alive(process.pid) is False


def test_pid_alive_of_supervisor_then_zombie_then_gone(
    tmp_path: Path, fake_supervisor: Callable[..., subprocess.Popen[bytes]]
) -> None:
    process = fake_supervisor(tmp_path / "network-7000")
    pid = process.pid
    assert pid_alive(pid) is True
    assert pid_alive(pid, tmp_path / "network-7000") is True
    assert pid_alive(pid, tmp_path / "network-7001") is False, "another network's process"
    assert process.stdin is not None
    process.stdin.close()
    # Wait for it to exit without reaping it: it stays a zombie.
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert pid_alive(pid) is False
    process.wait(timeout=10)
    assert pid_alive(pid) is False


EXIT_THIS_THREAD = {"x86_64": 60, "aarch64": 93}.get(os.uname().machine)
"""The exit system call, which ends the calling thread only (exit_group ends them all)."""


@pytest.mark.skipif(EXIT_THIS_THREAD is None, reason="exit's number is known for x86_64, aarch64")
def test_a_process_whose_threads_still_hold_its_port_is_not_released(tmp_path: Path) -> None:
    """A node's main thread can end before its other threads: it shows as a zombie with an
    empty command line while they hold its port. stop-network took it for gone, and the
    benchmark's next start-network found the port in use."""
    directory = tmp_path / "network-7000"
    code = (
        "import ctypes, socket, sys, threading\n"
        "listener = socket.socket()\n"
        "listener.bind(('127.0.0.1', 0))\n"
        "listener.listen()\n"
        "print(listener.getsockname()[1], flush=True)\n"
        "threading.Thread(target=sys.stdin.read).start()\n"
        f"ctypes.CDLL(None).syscall({EXIT_THIS_THREAD}, 0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, state.SUPERVISOR_MODULE, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        port = int(process.stdout.readline())
        assert state.released(os.getpid(), directory), "a stranger's process is not waited for"
        assert wait_until(lambda: not pid_alive(process.pid, directory), 10)
        assert not state.released(process.pid, directory)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                probe.bind(("127.0.0.1", port))
        process.stdin.close()  # its last thread ends: a zombie that holds nothing
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        assert state.released(process.pid, directory)
    finally:
        process.stdin.close()
        process.wait(timeout=10)
    assert state.released(process.pid, directory)


def test_find_network_none_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path / "empty"))
    with pytest.raises(GossipError) as caught:
        find_network(None)
    assert str(caught.value) == "no network is running: start one with gossip start-network"
    (tmp_path / "empty").mkdir()
    with pytest.raises(GossipError, match=r"^no network is running: start one"):
        find_network(None)


def test_find_network_port_origin_none_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path))
    with pytest.raises(GossipError) as caught:
        find_network(7100)
    assert str(caught.value) == (
        "no network is running on port origin 7100: "
        "start one with gossip start-network --port-origin 7100"
    )


def test_find_network_ignores_stale_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path))
    # The supervisor pid is this test process: alive, but not a gossip supervisor.
    save(network(supervisor_pid=os.getpid()), run_dir(7000))
    with pytest.raises(GossipError, match=r"^no network is running: start one"):
        find_network(None)
    with pytest.raises(GossipError, match="on port origin 7000"):
        find_network(7000)


def test_find_network_finds_the_running_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_supervisor: Callable[..., subprocess.Popen[bytes]],
) -> None:
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path))
    supervisor = fake_supervisor(run_dir(7200), run_dir(7050))
    live = network(supervisor_pid=supervisor.pid, port_origin=7200)
    save(live, run_dir(7200))
    save(network(supervisor_pid=os.getpid(), port_origin=7100), run_dir(7100))
    (tmp_path / "network-7300").mkdir()
    assert find_network(None) == (run_dir(7200), live)
    assert find_network(7200) == (run_dir(7200), live)
    with pytest.raises(GossipError, match="port origin 7100"):
        find_network(7100)
    # A second live network makes the choice ambiguous.
    save(network(supervisor_pid=supervisor.pid, port_origin=7050), run_dir(7050))
    with pytest.raises(GossipError) as caught:
        find_network(None)
    assert str(caught.value) == (
        "2 networks are running (port origin 7050, port origin 7200): "
        "choose one with --port-origin or --config"
    )
    assert find_network(7050)[1].port_origin == 7050


# client helpers


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:7001", ("127.0.0.1", 7001)),
        ("localhost:1", ("localhost", 1)),
        ("example.org:65535", ("example.org", 65535)),
        (":7001", ("127.0.0.1", 7001)),
        ("::1:7001", ("::1", 7001)),
        (("10.0.0.1", 7005), ("10.0.0.1", 7005)),
    ],
)
def test_parse_address(address: str | tuple[str, int], expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "7001",
        "localhost",
        "host:",
        "host:0",
        "host:65536",
        "host:-1",
        "host:70a",
        "host: 70",
        "host:²",
        "host:" + "7" * 5000,
        "host:000007001",
    ],
)
def test_parse_address_bad(address: str) -> None:
    with pytest.raises(GossipError) as caught:
        parse_address(address)
    assert str(caught.value) == (
        f"address {address!r} must look like HOST:PORT, as in 127.0.0.1:7001"
    )


def test_parse_address_non_ascii_digit() -> None:
    # str.isdigit() accepts "²", which int() cannot parse.
    with pytest.raises(GossipError):
        parse_address("host:7²")


def test_format_path() -> None:
    assert format_path((1, 8, 10)) == "Node 1 -> Node 8 -> Node 10"
    assert format_path((4,)) == "Node 4"
    assert format_path(()) == ""


@pytest.mark.parametrize(
    ("key", "timeout", "error"),
    [
        ("ab" * 32, 10.0, "key must be the secret's bytes or None, not str"),
        (None, -1, "timeout must be a number of seconds above 0, up to 86400, not -1"),
        (None, 0, "timeout must be"),
        (None, True, "timeout must be"),
        (None, float("inf"), "timeout must be .* up to 86400"),
        (None, 1e300, "timeout must be"),
        (None, 10**400, "timeout must be"),
    ],
)
def test_a_client_refuses_a_key_or_timeout_it_cannot_use(
    key: object, timeout: object, error: str
) -> None:
    """A hex string for the key raised TypeError deep in a read, a negative timeout
    ValueError: a caller of the API gets a GossipError, as for every other mistake."""
    with pytest.raises(GossipError, match=error):
        GossipClient(("127.0.0.1", 7001), key, timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "listed",
    [[[1, "h"]], [[1, "h", "port"]], [[0, "h", 7001]], "1,2", [None], [[1, "h", 7001, 4]]],
)
def test_a_bad_list_of_peers_from_a_node_is_a_gossip_error(
    listed: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's reply is read as carefully as a frame: a bad one raised ValueError."""
    client = GossipClient(("127.0.0.1", 7001))
    reply = [Frame("OK", {"peers": listed})]
    monkeypatch.setattr(client, "request", lambda *_: reply)
    with pytest.raises(GossipError, match="sent a bad list of peers"):
        client.peers()
    reply[0] = Frame("OK", {"peers": [[2, "127.0.0.1", 7002]]})
    assert client.peers() == [Peer(2, "127.0.0.1", 7002)]


def test_a_change_brings_the_callers_copy_up_to_date(tmp_path: Path) -> None:
    """Another command's change is in the saved state; the caller's copy learns the
    nodes, the supervisor and the conditions once its own change is saved."""
    save(network(4), tmp_path)
    mine = network(4)
    other = load(tmp_path)
    assert other is not None
    other.conditions = {"groups": [[1, 2], [3, 4]]}
    save(other, tmp_path)
    with state.change(tmp_path, mine) as latest:
        latest.supervisor_pid = 4242
        latest.nodes[2].removed = True
    assert mine.conditions == {"groups": [[1, 2], [3, 4]]}
    assert mine.supervisor_pid == 4242 and mine.nodes[2].removed
    assert load(tmp_path) == mine


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("supervisor_pid", "12"),
        ("conditions", "bad"),
        ("conditions", {"groups": "1-8"}),
        ("strategy", {"mode": "zzz"}),
        ("strategy", {"mode": "push", "fanout": "2"}),
        ("max_peers", "x"),
        ("max_peers", 0),
        ("topology", None),
        ("port_origin", 70000),
        ("insecure", "no"),
        ("nodes", []),
    ],
)
def test_a_state_of_the_wrong_types_is_unreadable(
    tmp_path: Path, field: str, value: object
) -> None:
    """JSON that parses but does not hold a network's state gave tracebacks in every
    command: it is refused as unreadable, as a file that does not parse is."""
    save(network(4), tmp_path)
    assert load(tmp_path) is not None
    data = json.loads((tmp_path / state.STATE_FILE).read_text())
    data[field] = value
    (tmp_path / state.STATE_FILE).write_text(json.dumps(data))
    assert load(tmp_path) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("pid", "abc"), ("port", "x"), ("number", "1"), ("host", 5), ("peers", ["2"]), ("local", 1)],
)
def test_a_node_entry_of_the_wrong_types_is_unreadable(
    tmp_path: Path, field: str, value: object
) -> None:
    save(network(4), tmp_path)
    data = json.loads((tmp_path / state.STATE_FILE).read_text())
    data["nodes"][0][field] = value
    (tmp_path / state.STATE_FILE).write_text(json.dumps(data))
    assert load(tmp_path) is None


def test_a_default_strategy_and_lab_conditions_load(tmp_path: Path) -> None:
    net = network(4)
    net.strategy = {"mode": "push", "fanout": 0, "interval_ms": 0, "ttl": 0}
    net.conditions = {"delay_ms": 50.0, "groups": [[1, 2], [3, 4]], "paused": [2]}
    save(net, tmp_path)
    assert load(tmp_path) == net


def test_a_network_stopped_here_is_named_with_how_to_resume_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After stop-network, a command's hint said to start afresh, which deletes the
    messages it had just said were kept."""
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path))
    directory = state.run_dir(7000)
    directory.mkdir()
    save(network(4), directory)
    (directory / "node-1.db").write_bytes(b"")
    with pytest.raises(GossipError) as named:
        find_network(7000)
    assert str(named.value) == (
        "no network is running on port origin 7000: gossip start-network --resume "
        "--port-origin 7000 brings back the one stopped there with its messages (a fresh "
        "start-network deletes them)"
    )
    with pytest.raises(GossipError, match="gossip start-network --resume brings back"):
        find_network(None)
    other = state.run_dir(7100)  # two stopped: "the one stopped here" was which?
    other.mkdir()
    save(network(4, port_origin=7100), other)
    (other / "node-1.db").write_bytes(b"")
    with pytest.raises(GossipError) as two:
        find_network(None)
    assert str(two.value) == (
        "no network is running; 2 stopped here could resume (7000, 7100): gossip "
        "start-network --resume with --port-origin or --config brings one back, gossip "
        "start-network starts a new one"
    )


def test_a_node_named_by_text_is_refused_as_such() -> None:
    with pytest.raises(GossipError, match="a node is named by its number, as 3, not '1'"):
        GossipClient.to_node("1")  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", ["x", True, 27100.5, 99999, -1, 0])
def test_a_port_origin_that_cannot_be_one_is_refused_as_such(origin: object) -> None:
    """It was looked up, and the error advised starting a network on port origin 'x'; and
    0 was taken, which the command line refuses."""
    with pytest.raises(GossipError, match="a port origin is a whole number from 1 to 65535"):
        GossipClient.to_node(1, origin)  # type: ignore[arg-type]


def test_remove_and_mark_read_check_their_arguments() -> None:
    client = GossipClient(("127.0.0.1", 7001))
    with pytest.raises(GossipError, match="introduce is True or False, not 'x'"):
        client.remove(introduce="x")  # type: ignore[arg-type]
    for ids in ([""], "m1", [1], None):
        with pytest.raises(GossipError, match="mark_read takes a list of message ids"):
            client.mark_read(ids)  # type: ignore[arg-type]


def test_a_host_name_no_resolver_takes_is_a_node_not_answering() -> None:
    """It raised UnicodeError ("label too long") from the connect."""
    with pytest.raises(GossipError, match="its host name cannot be looked up"):
        GossipClient(("a" * 300, 7001), timeout=1).status()


@pytest.mark.parametrize(
    "address", [["127.0.0.1", 7001], 7001, None, b"127.0.0.1:7001", (), ("h", 1, 2), ("h", "1")]
)
def test_a_client_refuses_an_address_it_cannot_use(address: object) -> None:
    with pytest.raises(GossipError, match="address"):
        GossipClient(address)  # type: ignore[arg-type]


def test_odd_arguments_to_the_client_are_gossip_errors() -> None:
    client = GossipClient(("127.0.0.1", 7001))
    with pytest.raises(GossipError, match="post_all takes a list of texts"):
        client.post_all(None)  # type: ignore[arg-type]
    with pytest.raises(GossipError, match="post_all takes a list of texts"):
        client.post_all(t for t in ["a"])  # type: ignore[arg-type]
    with pytest.raises(GossipError, match="frames go as bytes"):
        client.exchange("/PING {}")  # type: ignore[arg-type]


def test_a_network_files_network_it_cannot_read_is_named_with_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said 'port origin 0' and '--port-origin 0', which no command takes."""
    named = network(4, port_origin=0)
    named.name = "lab"
    monkeypatch.setattr(state, "processes_of", lambda directory: [4242])
    said = state.not_running(tmp_path, named)
    assert said.startswith("the network on network 'lab' runs") or "network 'lab'" in said, said
    assert "stop-network --config with its network file" in said and "origin 0" not in said


HOLD = """
import fcntl, os, signal, sys, time
with open(sys.argv[1], "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_change_behind_a_stopped_holder_says_who_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command stopped (Ctrl-Z) while it held the state's lock made every other one,
    and the supervisor that would mend the network, wait for as long as it stayed so."""
    monkeypatch.setattr(state, "CHANGE_WAIT", 0.3)
    save(network(4), tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / state.LOCK_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(GossipError) as running, state.change(tmp_path, network(4)):
            pass
        assert str(running.value).startswith(
            f"another command has held this network's state for 0.3 s (process {holder.pid}: "
            f"{sys.executable} -c import fcntl"
        )
        assert str(running.value).endswith(
            ": wait for it to end, or end it, then run this one again"
        )
        os.kill(holder.pid, signal.SIGSTOP)
        with pytest.raises(GossipError) as stopped, state.change(tmp_path, network(4)):
            pass
        assert (
            f"it is stopped (Ctrl-Z?): continue it (fg, or kill -CONT {holder.pid}) or end it, "
            "then run this one again"
        ) in str(stopped.value)
    finally:
        holder.kill()
        holder.wait()
    with state.change(tmp_path, network(4)) as latest:  # the holder gone, the lock is free
        latest.topology = "taken"
    assert state.load(tmp_path).topology == "taken"  # type: ignore[union-attr]


CTRL_Z = """
import os, signal, sys
from pathlib import Path
from gossip import state
directory = Path(sys.argv[1])
net = state.load(directory)
with state.change(directory, net) as latest:
    os.kill(os.getpid(), signal.SIGTSTP)
    latest.topology = "written"
    print("inside", flush=True)
print("after", flush=True)
"""


def test_ctrl_z_in_a_change_stops_the_command_once_the_state_is_written(tmp_path: Path) -> None:
    save(network(4), tmp_path)
    command = subprocess.Popen(  # a group of its own, as a shell's job, whose parent is
        # in another group of the session: the kernel drops Ctrl-Z in an orphaned group
        [sys.executable, "-c", CTRL_Z, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        assert command.stdout is not None and command.stdout.readline() == "inside\n"
        assert wait_until(lambda: state.stopped(command.pid), 10), "Ctrl-Z was lost"
        assert state.load(tmp_path).topology == "written"  # type: ignore[union-attr]
        with state.change(tmp_path, network(4)):  # not held by the stopped command
            pass
        os.kill(command.pid, signal.SIGCONT)
        assert command.stdout.readline() == "after\n"
    finally:
        command.kill()
        command.wait()
