"""Every bad invocation prints one line, no traceback, and exits non-zero (2 for usage)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gossip import cli, launch, state
from gossip.auth import new_secret
from gossip.protocol import MAX_MESSAGE_BYTES
from tests.networks import Net, Networks, gossip_cli

NO_NETWORK = f"gossip: no network is running: start one with {cli.how_to_run()} start-network\n"
"""As the command line words it here: under ``uv run`` its advice is ``uv run gossip ...``."""


def assert_one_line_error(result_err: str, result_out: str) -> None:
    assert result_out == ""
    assert result_err.count("\n") == 1 and result_err.startswith("gossip: ")
    assert "Traceback" not in result_err


@pytest.mark.parametrize(
    "args",
    [
        ["stop-network"],
        ["send-message", "1", "hello"],
        ["get-messages", "1"],
        ["list-peers", "1"],
        ["remove-node", "1"],
        ["restart-node", "1"],
        ["add-node"],
        ["status"],
        ["draw"],
    ],
)
def test_commands_without_a_network_say_how_to_start_one(args: list[str]) -> None:
    result = gossip_cli(*args)
    assert result.code == 1
    assert result.err == NO_NETWORK
    assert_one_line_error(result.err, result.out)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (
            ["start-network", "random", "-n", "15"],
            2,
            "random regular graph needs N x degree to be even: 15 x 3 is odd",
        ),
        (["start-network", "random", "16"], 2, "random regular graph needs 1 <= degree < N"),
        (
            ["start-network", "turan"],
            2,
            "node 1 would have 8 peers in this turan graph but --max-peers is 3: use --max-peers 8",
        ),
        (["start-network", "powerlaw", "--seed", "1"], 2, "peers in this powerlaw graph"),
        (["start-network", "-n", "1"], 2, "nodes must be between 2 and 10000, not 1"),
        (["start-network", "-n", "ten"], 2, "nodes must be a whole number, not 'ten'"),
        (["start-network", "-n", "-4"], 2, "nodes must be between 2 and"),
        (["demo", "-n", "5"], 2, "the demo's graph is random regular of degree 3: give an even"),
        (["demo", "-n", "2"], 2, "nodes must be between 4 and 10000, not 2"),
        (["netem", "--delay", "-5ms"], 2, "--delay must be a time like 100ms"),
        (["netem", "--delay", "3s"], 2, "--delay must be at most 2000ms"),
        (["netem", "--loss", "101%"], 2, "--loss must be a percentage from 0% to 100%"),
        (["netem", "--loss", "1%", "--link", "3"], 2, "--link must name two nodes"),
        (
            ["netem", "--delay", "2000ms", "--jitter", "1ms"],
            2,
            "--delay plus --jitter is 2001 ms, more than the 2000 ms a peer's reply may take",
        ),
        (["start-network", "random", "0"], 2, "degree must be between 1 and 10000, not 0"),
        (["start-network", "turan", "0"], 2, "partitions must be between 1 and 10000, not 0"),
        (["demo", "-n", "1"], 2, "nodes must be between 4 and 10000, not 1"),
        (["start-network", "--max-peers", "0"], 2, "max-peers must be between 1 and"),
        (["start-network", "--seed", "x"], 2, "seed must be a whole number"),
        (["start-network", "--port-origin", "70000"], 2, "port-origin must be between"),
        (["start-network", "--port-origin", "65530"], 2, "choose a --port-origin between"),
        (["start-network", "ring"], 2, "invalid arguments: usage is gossip start-network"),
        (["frobnicate"], 2, "unknown command 'frobnicate'"),
        ([], 2, "no command given: see gossip --help"),
        (["send-message", "1"], 2, "usage is gossip send-message <node> [--] <message>"),
        (["get-messages", "1", "-pppp"], 2, "usage is gossip get-messages"),
        (["send-message", "1", ""], 2, "the message is empty"),
        (["send-message", "1", "   "], 2, "the message is empty"),
        (
            ["send-message", "1", "x" * (MAX_MESSAGE_BYTES + 1)],
            2,
            f"the message is {MAX_MESSAGE_BYTES + 1} bytes; the limit is {MAX_MESSAGE_BYTES} bytes",
        ),
        (["send-message", "1", "hi", "--relays", "0"], 2, "relays must be between 1 and 10"),
        (["send-message", "1", "hi", "-r", "many"], 2, "relays must be a whole number"),
        (["restart-node"], 2, "usage is gossip restart-node <node>"),
        (["add-node", "3"], 2, "usage is gossip add-node"),
        (["draw", "-o"], 2, "usage is gossip draw"),
        (["status", "--config", "/nonexistent/lab.toml"], 1, "cannot read the network file"),
        (["send-message", "1", "hi", "--config", "x.toml", "--port-origin", "7"], 2, "usage is"),
        (["start-network", "--only", "10.0.0.1"], 2, "usage is gossip start-network"),
        (["add-node", "--config", "lab.toml"], 2, "usage is gossip add-node"),
        (["new-secret"], 2, "usage is gossip new-secret <file>"),
        (["new-secret", "/nonexistent/dir/lab.secret"], 1, "cannot write /nonexistent/dir"),
        (["new-secret", ""], 2, "new-secret needs the file to write"),
        (["new-secret", " "], 2, "new-secret needs the file to write"),
        (["send-message", "1", "hi", "--id", "x" * 5000], 2, "xxx… (5000 characters)'"),
        (["send-message", "1", "hi", "--id", "a b"], 2, "--id must be 1-64 ASCII letters"),
        (["send-message", "1", "hi", "--id", "ünï"], 2, "--id must be 1-64 ASCII letters"),
        (["new-secret", "/tmp"], 1, "/tmp is a directory: give new-secret a file's name, as in"),
    ],
)
def test_bad_arguments_print_one_line(args: list[str], code: int, expected: str) -> None:
    result = gossip_cli(*args)
    assert result.code == code, result.err
    assert expected in result.err
    assert_one_line_error(result.err, result.out)


@pytest.fixture
def small_net(networks: Networks) -> Net:
    return networks.start("circular", "-n", "4")


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["get-messages", "42"], 1, "gossip: node 42 does not exist: this network has nodes 1-4"),
        (["list-peers", "0"], 2, "gossip: node must be 1 or more, not 0\n"),
        (["send-message", "-1", "hi"], 2, "gossip: node must be 1 or more, not -1\n"),
        (["send-message", "two", "hi"], 2, "gossip: node must be a whole number, not 'two'\n"),
        (["remove-node", "5"], 1, "gossip: node 5 does not exist: this network has nodes 1-4\n"),
        (["restart-node", "0"], 2, "gossip: node must be 1 or more, not 0\n"),
        (["restart-node", "x"], 2, "gossip: node must be a whole number, not 'x'\n"),
        *[  # int() read these as 2 (or 10): a node named one way must not answer to another
            (["list-peers", raw], 2, f"gossip: node must be a whole number, not {raw!r}\n")
            for raw in ["1_0", "+2", "\uff12"]
        ],
        # Groups wrong in themselves exit 2, as netem's values do; a node it lacks, 1.
        (["partition", "x", "3-4"], 2, "gossip: a partition group is nodes like 1-8"),
        (["partition", "3-1", "4"], 2, "gossip: a range of nodes runs low to high"),
        (["partition", "1,1", "4"], 2, "gossip: a partition group names a node twice"),
        (["partition", "1-3", "3-4"], 2, "gossip: node 3 is in two groups"),
        (["partition", "1-2", "3-9"], 1, "gossip: node 9 does not exist"),
        (["restart-node", "3"], 1, "gossip: node 3 is running: stop it first with"),
        (["restart-node", "9"], 1, "gossip: node 9 does not exist: this network has nodes 1-4\n"),
        (["draw", "-o", "picture.svg"], 2, "gossip: the picture is a PNG: give a file name"),
        (["draw", "-o", ""], 2, "gossip: -o is empty: give the PNG's file name, or leave -o out"),
        (["draw", "--message", ""], 2, "gossip: --message: the message is empty, so no node"),
        (["draw", "--message", " "], 2, "gossip: --message: the message is empty"),
        (["partition", "0", "1-4"], 2, "gossip: nodes are numbered from 1: there is no node 0"),
        (
            ["draw", "-o", "/nonexistent/dir/p.png"],
            1,
            "gossip: cannot write /nonexistent/dir/p.png",
        ),
    ],
)
def test_bad_nodes_on_a_running_network(
    small_net: Net, args: list[str], code: int, expected: str
) -> None:
    result = small_net.cli(*args)
    assert result.code == code, result.err
    assert result.err.startswith(expected)
    assert_one_line_error(result.err, result.out)
    assert small_net.cli("list-peers", "1").code == 0, "a bad command must not hurt the network"


def test_help_and_version() -> None:
    result = gossip_cli("--help")
    assert result.code == 0
    assert "gossip start-network" in result.out and "remove-node" in result.out
    version = gossip_cli("--version")
    assert version.code == 0 and version.out.startswith("gossip ")


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "gossip"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout == gossip_cli("--version").out


def stale_run_directory(net: Net) -> None:
    """As after a reboot: the state file is there, its supervisor pid now someone else's."""
    network = net.state
    gossip_cli("stop-network", "--port-origin", str(net.origin))
    network.supervisor_pid = os.getpid()
    state.save(network, net.directory)


def kill_node_1(net: Net) -> None:
    net.kill(1)


def lose_the_secret(net: Net) -> None:
    (net.directory / state.SECRET_FILE).unlink()


def empty_the_secret(net: Net) -> None:
    (net.directory / state.SECRET_FILE).write_bytes(b"")


def change_the_secret(net: Net) -> None:
    (net.directory / state.SECRET_FILE).write_bytes(new_secret())


def squat_node_5s_port(net: Net) -> None:
    """Another program took the port add-node would use."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", net.origin + 5))
    squatter.listen()
    SQUATTERS.append(squatter)


SQUATTERS: list[socket.socket] = []


@pytest.mark.parametrize(
    ("damage", "args", "expected"),
    [
        (stale_run_directory, ["send-message", "1", "hi"], "no network is running on port origin"),
        (stale_run_directory, ["status"], "no network is running on port origin"),
        (kill_node_1, ["send-message", "1", "hi"], "is not answering (connection refused)"),
        (
            kill_node_1,
            ["get-messages", "1"],
            "if it died, take it out with ",  # and the command, as the shell here runs it
        ),
        (
            kill_node_1,
            ["get-messages", "1"],
            "gossip remove-node 1 --port-origin {origin}",
        ),
        (lose_the_secret, ["send-message", "2", "hi"], "is gone or empty, so no command can talk"),
        (
            lose_the_secret,
            ["status"],
            "gossip stop-network --port-origin {origin} stops them, and ",
        ),
        (lose_the_secret, ["status"], "gossip start-network --port-origin {origin} --resume"),
        (empty_the_secret, ["list-peers", "2"], "is gone or empty, so no command can talk"),
        (change_the_secret, ["list-peers", "2"], "frame is not authenticated"),
        (change_the_secret, ["send-message", "2", "hi"], "another network's secret?"),
        (squat_node_5s_port, ["add-node"], "could not start node 5: port"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_broken_setup_prints_one_line(
    small_net: Net, damage: Callable[[Net], None], args: list[str], expected: str
) -> None:
    try:
        damage(small_net)
        result = small_net.cli(*args)
    finally:
        for squatter in SQUATTERS:
            squatter.close()
        SQUATTERS.clear()
    assert result.code == 1, result.err
    assert expected.format(origin=small_net.origin) in result.err
    assert_one_line_error(result.err, result.out)


def test_an_insecure_network_says_so_loudly(networks: Networks) -> None:
    net = networks.reserve()
    result = gossip_cli(
        "start-network", "-n", "4", "circular", "--insecure", "--port-origin", str(net.origin)
    )
    assert result.code == 0, result.err
    assert result.out.startswith("WARNING: --insecure: these nodes obey anyone")
    assert not (net.directory / state.SECRET_FILE).exists()
    assert net.cli("send-message", "1", "open to all").code == 0


def test_an_insecure_network_file_says_so_loudly(tmp_path: Path, networks: Networks) -> None:
    """``--insecure`` warned; ``insecure = true`` in a network file started as quietly as
    a sealed network."""
    origin = networks.reserve().origin
    path = tmp_path / "open.toml"
    text = (
        f'name = "open-{origin}"\ninsecure = true\n[peers]\n1 = [2]\n'
        f'[nodes]\n1 = "127.0.0.1:{origin + 1}"\n2 = "127.0.0.1:{origin + 2}"\n'
    )
    path.write_text(text)
    try:
        result = gossip_cli("start-network", "--config", str(path))
        assert result.code == 0, result.err
        assert result.out.startswith("WARNING: insecure = true: these nodes obey anyone")
        path.write_text(text.replace("[peers]", "[peer]"))  # broken since: say what stops it
        refused = gossip_cli("stop-network", "--config", str(path))
        assert refused.code == 1 and "stop-network without --config if it is the only" in (
            refused.err
        ), refused.err
    finally:
        assert gossip_cli("stop-network").code == 0
    path.write_text(text)
    # stopped here: status said "0 of its 2 nodes on this host", all down, and no more
    looked = gossip_cli("status", "--config", str(path))
    assert looked.code == 1 and "start-network --resume --config" in looked.err, looked


def test_a_secure_network_keeps_its_secret_private_and_on_stop_for_a_resume(
    small_net: Net,
) -> None:
    secret = small_net.directory / state.SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(small_net.directory.stat().st_mode) == 0o700
    kept = secret.read_bytes()
    assert small_net.cli("stop-network").code == 0
    assert secret.read_bytes() == kept and stat.S_IMODE(secret.stat().st_mode) == 0o600
    left = {p.name for p in small_net.directory.iterdir()}
    assert {f"node-{n}.db" for n in range(1, 5)} <= left
    assert state.STATE_FILE in left


def test_new_secret_writes_a_private_file_and_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "lab.secret"
    assert gossip_cli("new-secret", str(path)).code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_bytes()
    assert len(secret.strip()) == 64
    again = gossip_cli("new-secret", str(path))
    assert again.code == 1 and f"{path} exists" in again.err
    assert_one_line_error(again.err, again.out)
    assert path.read_bytes() == secret


def test_a_network_file_with_a_wrong_host_or_a_remote_node_says_where(tmp_path: Path) -> None:
    # Hosts from TEST-NET-1, kept for documentation: some networks take any connection to
    # 10.0.0.0/8 and then never answer, which cost this test a 2 s wait per ask.
    (tmp_path / "lab.toml").write_text(
        'secret = "lab.secret"\n[peers]\n1 = [2]\n'
        '[nodes]\n1 = "192.0.2.1:7001"\n2 = "192.0.2.2:7001"\n'
    )
    assert gossip_cli("new-secret", str(tmp_path / "lab.secret")).code == 0
    config = ["--config", str(tmp_path / "lab.toml")]
    wrong = gossip_cli("start-network", *config, "--only", "192.0.2.3")
    assert wrong.code == 1
    assert "has no node on host 192.0.2.3: its hosts are 192.0.2.1, 192.0.2.2" in wrong.err
    elsewhere = gossip_cli("start-network", *config, "--only", "192.0.2.1")  # not this one
    assert elsewhere.code == 1 and elsewhere.err.endswith(
        "port 7001 cannot be used: 192.0.2.1 is not an address of this machine\n"
    ), elsewhere.err
    remote = gossip_cli("restart-node", "2", *config)
    assert remote.code == 1 and "node 2 runs on host 192.0.2.2, not under a sup" in remote.err
    for again in ("restart-node", "start-node"):  # as printed, with the file it was given
        assert f"gossip {again} 2 --config {tmp_path / 'lab.toml'}" in remote.err
    stop = gossip_cli("stop-network", *config)
    assert stop.code == 1 and "no node of network 'lab' runs on this host" in stop.err
    for result in (wrong, remote, stop):
        assert_one_line_error(result.err, result.out)


def test_an_interrupted_command_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed 'gossip: ' and nothing more."""
    from gossip import cli

    def interrupted(args: dict[str, Any]) -> str:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "status", interrupted)
    assert cli.main(["status"]) == 130
    assert capsys.readouterr().err == "gossip: interrupted\n"


@pytest.fixture
def own_signals() -> Iterator[None]:
    """``launch.main`` sets the process's signal handlers, as the script's process is
    its own: this worker's are put back after."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_timeout_and_a_closed_terminal_end_a_command_as_ctrl_c_does(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    own_signals: None,
    signum: signal.Signals,
) -> None:
    """SIGTERM and SIGHUP ended the process on the spot, silently, and cut a start short
    where nothing would stop what it had started; and once the command is done, one
    that comes as the process exits changes nothing (it made the exit code a kill's)."""
    command_line = types.ModuleType("gossip.cli")

    def interrupted() -> int:
        signal.raise_signal(signum)
        return 0

    command_line.main = interrupted  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gossip.cli", command_line)
    assert launch.main() == 130
    assert capsys.readouterr().err == "gossip: interrupted\n"
    assert signal.getsignal(signum) == signal.SIG_IGN


def test_ctrl_c_while_the_command_line_still_imports_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], own_signals: None
) -> None:
    """A Ctrl-C in its first few hundred milliseconds, while ``gossip.cli`` and what it
    needs were imported, gave a KeyboardInterrupt traceback."""

    class Importing(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            raise KeyboardInterrupt  # as Ctrl-C lands in the middle of the import

    monkeypatch.setitem(sys.modules, "gossip.cli", Importing("gossip.cli"))
    assert launch.main() == 130
    assert capsys.readouterr().err == "gossip: interrupted\n"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "node 2 is paused already: gossip resume 2 resumes it",
            "node 2 is paused already: gossip resume 2 --port-origin 27000 resumes it",
        ),
        (
            "node 3 is not running: start it with gossip restart-node 3",
            "node 3 is not running: start it with gossip restart-node 3 --port-origin 27000",
        ),
        ("see gossip status (parts)", "see gossip status --port-origin 27000 (parts)"),
        (
            "run gossip stop-network --port-origin 7000",
            "run gossip stop-network --port-origin 7000",
        ),
        (
            "start one with gossip start-network",
            "start one with gossip start-network --port-origin 27000",
        ),
    ],
)
def test_commands_an_error_suggests_name_the_network_the_command_was_given(
    message: str, expected: str
) -> None:
    """With two networks running, a suggestion typed as printed asked which one."""
    given = {"--port-origin": "27000", "--config": None}
    assert cli.scoped(message, given) == expected
    assert cli.scoped(message, {"--port-origin": None, "--config": None}) == message
    config = cli.scoped("gossip heal ends it", {"--port-origin": None, "--config": "lab.toml"})
    assert config == "gossip heal --config lab.toml ends it"


def test_a_suggested_command_takes_only_options_it_has_and_runs_as_the_user_runs_gossip() -> None:
    """``new-secret --config lab.toml`` was suggested, which new-secret refuses; and under
    ``uv run`` errors said ``gossip stop-network``, which the user's shell has not."""
    given = {"--port-origin": None, "--config": "lab.toml"}
    secret = "cannot read lab.secret (make one with gossip new-secret lab.secret)"
    assert cli.scoped(secret, given) == secret
    origin = {"--port-origin": "27000", "--config": None}
    assert cli.scoped("the gossip protocol; see gossip add-node", origin, "uv run gossip") == (
        "the gossip protocol; see uv run gossip add-node --port-origin 27000"
    )
    assert cli.scoped("run gossip start-node 3", origin) == "run gossip start-node 3"
    assert cli.scoped("gossip start-network --resume", origin, "python -m gossip") == (
        "python -m gossip start-network --port-origin 27000 --resume"
    )
    # not twice, not in a path, quoted text or a longer word; a value as a shell takes it
    run = "uv run gossip"
    for kept in ("see uv run gossip status", "/x/bin/gossip status", "'gossip status 5'"):
        assert cli.scoped(kept, {"--port-origin": None, "--config": None}, run) == kept
    assert cli.scoped("gossip status-x", origin, run) == "gossip status-x"
    spaced = {"--port-origin": None, "--config": "my lab.toml"}
    assert cli.scoped("see gossip status.", spaced) == "see gossip status --config 'my lab.toml'."


def test_removing_a_node_of_another_host_that_does_not_answer_says_it_may_still_run(
    tmp_path: Path, networks: Networks
) -> None:
    """Cut off from this host, it was 'Removed, which was already down', and it still ran
    there and came back into the network."""
    origin = networks.reserve().origin
    path = tmp_path / "far.toml"
    path.write_text(
        f'name = "far-{origin}"\ninsecure = true\n[peers]\n1 = [2]\n2 = [3]\n[nodes]\n'
        + "".join(f'{n} = "127.0.0.1:{origin + n}"\n' for n in (1, 2, 3))
    )
    removed = gossip_cli("remove-node", "2", "--config", str(path))
    assert removed.code == 0, removed.err
    assert removed.out.splitlines()[-1].startswith(
        "It did not answer from here: if it still runs on 127.0.0.1 (a link cut, say), stop it "
        "there with "
    )
    assert f"gossip remove-node 2 --config {path}, or it comes back." in removed.out
