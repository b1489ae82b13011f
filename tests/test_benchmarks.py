"""The benchmark scripts as a user runs them by hand: an option they cannot use is refused
in one line, and however a run ends (a failure, Ctrl-C, SIGTERM) it leaves no network
running and no scratch directory behind (each held a hundred megabytes of stores)."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from gossip.network import wait_until

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.xdist_group("benchmarks")
"""A script picks the first free port range from 10000 up: two at once on two workers could
both pick it before either binds, so these tests run one after another."""


def script(name: str) -> ModuleType:
    """A module of ``benchmarks/``, loaded as its scripts load their neighbours. The
    signal handlers its ``quiet`` sets for a script's own process (a Ctrl-C ends it at
    once) are not this worker's: it keeps its own."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return module


def bench(script: str, *args: str, scratch: Path) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script, its temporary files in ``scratch``."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(scratch)},
    )


def one_line(text: str) -> str:
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("script", "args", "said"),
    [
        ("run.py", ["--nodes", "0"], "--nodes: 0 is too small: the least is 4"),
        ("run.py", ["--nodes", "many"], "--nodes: 'many' is not a whole number"),
        ("run.py", ["--messages", "0"], "--messages: 0 is too small"),
        ("run.py", ["--throughput", "-5"], "--throughput: -5 is too small"),
        ("run.py", ["--batch", "0"], "--batch: 0 is too small"),
        ("run.py", ["--repeat", "0"], "--repeat: 0 is too small"),
        ("run.py", ["--sizes", "16,abc"], "--sizes: 'abc' is not a whole number"),
        ("run.py", ["--sizes", "16,2"], "--sizes: 2 is too small"),
        ("run.py", ["--compare", "no-such.json"], "no such file (write one with --json)"),
        ("run.py", ["--compare", "{here}"], "not a --json file of this benchmark"),
        ("run.py", ["--json", "/no/such/folder/run.json"], "no folder /no/such/folder"),
        ("run.py", ["--plot", "/no/such/folder/size.png"], "no folder /no/such/folder"),
        ("run.py", ["--json", "{folder}"], "is a folder: give a file name in it"),
        ("run.py", ["--plot", "{folder}/size.xyz"], "a picture is written as one of .jpeg"),
        ("run.py", ["--plot", "{folder}/size"], "a picture is written as one of .jpeg"),
        ("run.py", ["--no-such-option"], "unrecognized arguments: --no-such-option"),
        ("shape.py", ["--nodes", "7"], "a 3-regular graph needs an even number of nodes"),
        ("shape.py", ["--nodes", "2"], "--nodes: 2 is too small"),
        ("shape.py", ["--messages", "0"], "--messages: 0 is too small"),
        ("shape.py", ["--port-origin", "65530"], "do not exist: choose a lower one"),
        ("repair.py", ["--runs", "0"], "--runs: 0 is too small"),
        ("repair.py", ["--json", "/no/such/folder/r.json"], "no folder /no/such/folder"),
        ("repair.py", ["--json", "{folder}"], "is a folder: give a file name in it"),
        ("cut.py", ["--cut", "-1"], "--cut: -1 seconds: give zero or more"),
        ("cut.py", ["--cut", "soon"], "--cut: 'soon' is not a number of seconds"),
        ("cut.py", ["--messages", "0"], "--messages: 0 is too small"),
        ("containers.py", ["--runs", "0"], "--runs: 0 is too small"),
        ("containers.py", ["--messages", "x"], "--messages: 'x' is not a whole number"),
        ("containers.py", ["--messages", "1"], "--messages: 1 is too small: the least is 2"),
    ],
)
def test_an_option_it_cannot_use_is_refused_in_one_line(
    script: str, args: list[str], said: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    given = [a.replace("{here}", __file__).replace("{folder}", str(tmp_path)) for a in args]
    done = bench(script, *given, scratch=scratch)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"{script}: ")
    assert said in line
    assert done.stdout == ""
    assert list(scratch.iterdir()) == []


def test_a_network_that_will_not_start_is_said_in_gossips_words(tmp_path: Path) -> None:
    done = bench("run.py", "--nodes", "5", "--sizes", "", "--no-healing", scratch=tmp_path)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("run.py: gossip start-network -n 5 ")
    assert "5 x 3 is odd" in line
    assert list(tmp_path.iterdir()) == []
    assert script("harness").processes_under(tmp_path) == []


# Slow, so one at a time (-n 0 in .ci/run): beside another worker it failed 3 times in about
# 12 runs, twice because the run's first start-network found a port of its fresh range in
# use. What took the port is not found yet; alone, it has always passed.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "whole_group", "times"),
    [
        (signal.SIGINT, True, 1),
        (signal.SIGINT, True, 2),
        (signal.SIGINT, False, 1),
        (signal.SIGTERM, False, 1),
    ],
    ids=["ctrl-c in a terminal", "ctrl-c twice", "sigint", "sigterm"],
)
def test_a_run_stopped_halfway_leaves_nothing_running_and_nothing_on_disk(
    signum: signal.Signals, whole_group: bool, times: int, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C reaches the gossip command the run waits on as well; a second
    one may come while the first is being cleaned up after."""
    harness = script("harness")
    # No preexec_fn to give SIGINT its default: conftest does that for the whole run, and a
    # preexec_fn can hang the child before exec when the parent has threads (an xdist
    # worker has).
    runner = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "run.py"), "--sizes", "", "--no-healing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        start_new_session=True,  # its gossip commands too, for the clean-up below
    )
    try:
        # Its first network is up and serving: its nodes run, and its stores are on disk.
        up = wait_until(lambda: len(harness.processes_under(tmp_path)) > 16, 60, 0.05)
        if not up:
            os.killpg(runner.pid, signal.SIGKILL)
            out, err = runner.communicate()
            pytest.fail(f"no network of 16 nodes within 60 s; the run said:\n{out}\n{err}")
        assert list(tmp_path.glob("gossip-bench-*/network-*/node-1.db"))
        time.sleep(0.5)  # into the measurements, not the first instant
        for sent in range(times):
            if sent:
                time.sleep(0.05)
            if whole_group:
                os.killpg(runner.pid, signum)
            else:
                runner.send_signal(signum)
        _, err = runner.communicate(timeout=60)
        leftover = harness.processes_under(tmp_path)
    finally:
        # Nothing to do unless the test fails: then neither the runner nor a gossip command
        # it left may start anything more.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate()
        harness.kill_all_under(tmp_path)
    assert runner.returncode == 130
    assert one_line(err) == "run.py: interrupted; what it started is stopped"
    assert leftover == []
    assert list(tmp_path.iterdir()) == []


def test_each_figure_with_a_target_says_whether_it_met_it() -> None:
    run = script("run")
    default = argparse.Namespace(nodes=16, insecure=False)
    assert run.verdict("latency_all_nodes_p50_ms", 3.6, default) == " target <= 3: missed |"
    assert run.verdict("latency_all_nodes_p50_ms", 3.0, default) == " target <= 3: met |"
    assert run.verdict("delivered_to_all_per_s", 999, default) == " target >= 1000: missed |"
    assert run.verdict("messages_lost", 0, default) == " target <= 0: met |"
    assert run.verdict("latency_256_nodes_p50_ms", 41, default) == " target <= 40: missed |"
    assert run.verdict("left_running_512_nodes", 1, default) == " target <= 0: missed |"
    assert run.verdict("submit_per_s", 5000, default) == ""  # no target
    # The 16-node targets are for the default run; the size sweep's hold for any.
    other = argparse.Namespace(nodes=32, insecure=False)
    assert run.verdict("latency_all_nodes_p50_ms", 1.0, other) == ""
    assert run.verdict("start_1024_nodes_ms", 9000, other) == " target <= 20000: met |"
    bare = argparse.Namespace(nodes=16, insecure=True)
    assert run.verdict("node_uss_mib", 5.0, bare) == ""
