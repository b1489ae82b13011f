"""The one line a refused command line gets (``gossip.usage``): what is wrong, for every
command and option of the help, not only the usage line."""

from __future__ import annotations

import pytest
from docopt import DocoptExit, docopt

from gossip import cli, usage

COMMANDS = list(cli.COMMANDS)


def given(option: str) -> list[str]:
    """``option`` as a user would type it, with a value if it takes one."""
    return [option, "1"] if cli.USAGE.name(option) in cli.USAGE.takes_value else [option]


def refused(argv: list[str]) -> str:
    """The line for ``argv``, once docopt has refused it (else the test means nothing)."""
    with pytest.raises(DocoptExit):
        docopt(cli.__doc__, argv, default_help=False)
    line = cli.usage_line(argv)
    assert "\n" not in line
    return line


EVERY_OPTION = sorted(
    {
        (pattern.split()[1], option)
        for pattern in cli.USAGE.patterns
        for option in cli.USAGE.options_of(pattern)
        if pattern.split()[1] in COMMANDS and option not in usage.REPEATABLE
    }
)


def test_the_sweep_covers_the_help() -> None:
    assert len({c for c, _ in EVERY_OPTION}) >= 18
    assert ("netem", "--link") in EVERY_OPTION and ("send-message", "--relays") in EVERY_OPTION


@pytest.mark.parametrize(("command", "option"), EVERY_OPTION)
def test_an_option_given_twice_is_named(command: str, option: str) -> None:
    line = refused([command, *given(option), *given(option)])
    assert line.startswith(f"{option} given twice: give it once; usage is gossip {command} ")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_option_the_command_does_not_take_is_named(command: str) -> None:
    line = refused([command, "--loud"])
    assert line.startswith(f"{command} takes no option --loud")
    assert f": usage is gossip {command} " in line


@pytest.mark.parametrize(
    "command", sorted({p.split()[1] for p in cli.USAGE.patterns if "--port-origin P |" in p})
)
def test_port_origin_and_config_together_are_named(command: str) -> None:
    line = refused([command, "--port-origin", "7000", "--config", "net.toml"])
    assert line.startswith("--port-origin and --config do not go together: give one of them;")


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["netem", "--off", "--delay", "5ms"], "--off and --delay do not go together"),
        (["netem", "--loss", "5%", "--off"], "--loss and --off do not go together"),
        (["netem", "--link", "1-2", "--link", "3-4"], "--link given twice"),
        # an option before the command: the command is still found
        (["--port-origin", "7000", "netem", "--off", "--jitter=1ms"], "--off and --jitter"),
        (["--port-origin", "7000", "nettem"], "unknown command 'nettem': choose one of"),
        (["-n", "5", "strat-network"], "unknown command 'strat-network'"),
        (["start-network", "--resume", "-n", "5"], "--resume and --nodes do not go together"),
        (["start-network", "--config", "f", "--seed", "3"], "--config and --seed do not go"),
        (["get-messages", "1", "-ppp", "--json", "--json"], "--json given twice"),
        (["send-message", "1", "-r", "2", "-r", "3", "hi"], "--relays given twice"),
        (["send-message", "1", "hi", "--", "--json", "--json"], "options go before --"),
        (["send-message", "1"], "<message> is missing; usage is gossip send-message <node>"),
        (["list-peers", "1", "2"], "'2' is one word too many; usage is gossip list-peers <node>"),
        (["get-messages", "1", "read", "x"], "'x' is one word too many; usage is gossip get-m"),
        (["add-node", "3"], "'3' is one word too many; usage is gossip add-node [--port-origin"),
        (["restart-node"], "<node> is missing; usage is gossip restart-node <node>"),
        (["partition"], "<group> is missing; usage is gossip partition <group>..."),
        (["x", "heal"], "unknown command 'x': choose one of"),  # not "'heal' is one too many"
        (["get-messages", "1", "all", "all"], "all given twice: give it once; usage is"),
        # the form shown is the one of the options given, not --resume's
        (
            ["start-network", "--config", "f", "--port-origin", "1"],
            "--config and --port-origin do not go together: give one of them; usage is gossip "
            "start-network --config FILE [--only HOST]",
        ),
        (["send-message", "1", "-dash"], "send-message takes no option -dash; text that starts"),
        (["send-message", "1", "--version"], "send-message takes no option --version"),
        (["get-messages", "1", "-pppp"], "-p given 4 times: at most -ppp; usage is"),
        (["get-messages", "1", "-pp", "-tt", "-tt"], "-t given 4 times"),
        (["get-messages", "1", "all", "read"], "all and read do not go together"),
        (["start-network", "--only", "x"], "--only needs --config as well; usage is gossip"),
        (["send-message", "1", "Hello", "World"], "a message of several words goes in quotes"),
        (["send-message", "1", "--", "a", "b"], "a message of several words goes in quotes"),
        (["send-message", "1", "--", "-x", "-r", "2"], "options go before --: after it comes"),
        ([], "no command given: see gossip --help"),
        (["--verbose"], "no command given: see gossip --help"),
    ],
)
def test_what_is_wrong_is_said_first(argv: list[str], start: str) -> None:
    assert refused(argv).startswith(start)


def test_the_pairs_come_from_the_help_not_a_list() -> None:
    """A made-up help: its own exclusive options and value-taking ones are read from it."""
    doc = """x.

Usage:
  gossip go (--fast | --slow [--by N]) [--to P]
  gossip go --again

Options:
  --by N   How much.
  --to P   Where.
"""
    read = usage.Usage.of(doc)
    assert read.takes_value == {"--by", "--to"}
    assert usage.problem(read, ["go", "--slow", "--fast"], ["go"]).startswith(
        "--slow and --fast do not go together"
    )
    assert usage.problem(read, ["go", "--again", "--to", "9"], ["go"]).startswith(
        "--again and --to do not go together"
    )
    assert usage.problem(read, ["go", "--by", "--to"], ["go"]).startswith("invalid arguments")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_cluster_of_short_options_with_an_h_in_it_is_no_call_for_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """docopt read ``-dash`` as -d -a -s -h: the whole help, exit 0, and the message
    not sent. Help is -h or --help as a word of its own."""
    assert cli.main([command, "1", "-zh"]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err.startswith(f"gossip: {command} takes no option -zh")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["-h"], "gossip: run a peer-to-peer network"),
        (["--help"], "gossip: run a peer-to-peer network"),
        (["--he"], "gossip: run a peer-to-peer network"),  # a prefix of --help: it crashed
        (["send-message", "1", "-h"], "Usage:\n  gossip send-message <node> [--] <message>"),
        (["status", "--help", "--json"], "Usage:\n  gossip status [--json]"),
    ],
)
def test_help_as_a_word_of_its_own_anywhere_shows_the_help(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith(start)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_commands_help_is_its_own(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``gossip <command> --help`` printed the whole 115-line help, for every command."""
    assert cli.main([command, "--help"]) == 0
    text = capsys.readouterr().out
    usage, about, options = text.split("\n\n")[:3]
    patterns = [p for p in cli.USAGE.patterns if p.split()[1] == command]
    assert " ".join(usage.split()[1:]) == " ".join(" ".join(patterns).split())
    section = cli.__doc__.split("Commands:")[1]  # its own line there (resume's was pause's)
    entry = next(line for line in section.splitlines() if line.startswith(f"  {command} "))
    assert about.splitlines()[0].strip() == entry.strip().removeprefix(command).strip()
    listed = {cli.USAGE.name(line.split()[0].rstrip(",")) for line in options.splitlines()[1:]}
    listed.discard("")
    wanted = set().union(*(cli.USAGE.options_of(p) for p in patterns)) | {"--help"}
    assert {o for o in listed if o.startswith("-")} == wanted
    assert text.rstrip().endswith("Every command: gossip --help")


def test_the_version_is_shown_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("gossip ")


BASE = {
    "start-network": [],
    "start-node": ["1"],
    "mend": [],
    "stop-network": [],
    "send-message": ["1", "hi"],
    "get-messages": ["1"],
    "list-peers": ["1"],
    "remove-node": ["1"],
    "restart-node": ["1"],
    "add-node": [],
    "status": [],
    "draw": [],
    "demo": [],
    "web": [],
    "new-secret": ["f"],
    "netem": ["--delay", "5ms"],
    "partition": ["1", "2"],
    "heal": [],
    "pause": ["1"],
    "resume": ["1"],
    "experiment": ["f.toml"],
}
"""Each command with the least it takes, for the sweep of empty values."""

EMPTY_VALUES = sorted(
    (command, option)
    for command, option in EVERY_OPTION
    if option in cli.USAGE.takes_value and (command, option) not in cli.OWN_EMPTY
)


@pytest.mark.parametrize(("command", "option"), EMPTY_VALUES)
def test_an_empty_value_is_refused_before_anything_runs(
    command: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config ""`` was taken for no --config: start-network started the default
    network on ports 7001-7016."""
    argv = [command, *BASE[command], option, ""]
    try:
        docopt(cli.__doc__, argv, default_help=False)
    except DocoptExit:
        pytest.skip("that line is wrong without the empty value too (an option apart)")
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"gossip: {option} is empty: give it a value, or leave it out\n"


def test_the_empty_value_sweep_covers_most_options() -> None:
    assert set(BASE) == set(COMMANDS)
    assert len(EMPTY_VALUES) >= 40


@pytest.mark.parametrize(
    "argv",
    [
        ["draw", "--message", "-h"],
        ["send-message", "1", "hi", "--id", "--help"],
        ["send-message", "1", "--", "-h"],
    ],
)
def test_help_as_a_value_or_after_the_double_dash_is_no_call_for_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The value of an option, or text after --, that reads -h: the command runs (here it
    finds no network), instead of printing the help and doing nothing."""
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("gossip: no network is running")


class FullDisk:
    """A stdout on a full disk."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["status", "-h"]])
def test_help_to_a_full_disk_says_so_in_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It gave a traceback."""
    monkeypatch.setattr("sys.stdout", FullDisk())
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == "gossip: No space left on device: nothing could be printed\n"
