"""Drive deploy/compose.yaml on this machine's Docker Engine, for the container test and
benchmarks/containers.py: start the engine if it is not running (as root), build the image,
bring the 16-node network and its mender up, act on its containers, and take it all down
again.

Every command on the nodes runs inside a container of the Compose network (``docker exec``):
nothing on this host talks to a container's address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gossip.auth import new_secret
from gossip.state import write_secret

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
NODES = 16
CONTAINER_USER = 10001
"""The image's user, who must be able to read the secret that Compose mounts."""
ENGINE_WAIT = 30.0
BUILD_TIMEOUT = 900.0
COMMAND_TIMEOUT = 120.0

SPREAD = """
import json, sys
from pathlib import Path
from gossip import config, network
net = config.load(Path("/etc/gossip/network.toml"))
ids, nodes, timeout = json.loads(sys.argv[1])
spread = {i: network.await_spread(net, i, timeout, nodes, interval=0.02) for i in ids}
print(json.dumps(spread))
"""
"""Run in a container: when each listed node first held each message (by its clock: one
kernel, one clock for every container), waiting up to a timeout."""


class Unavailable(Exception):
    """Docker cannot run here; the message says why."""


def run(*command: str, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> str:
    """Run a command; its output, or a RuntimeError with what it printed."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


@dataclass
class Engine:
    """A dockerd this test started, and what it changed that the machine's other tests need."""

    daemon: subprocess.Popen[bytes]
    forward: str | None
    """The firewall's FORWARD policy before dockerd set its own (DROP), which would also
    drop the bridged traffic of the network-namespace tests (``tests/test_hosts.py``)."""


def forward_policy() -> str | None:
    """The FORWARD chain's policy (ACCEPT, DROP), or None where iptables cannot tell."""
    if shutil.which("iptables") is None:
        return None
    done = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    first = done.stdout.split("\n", 1)[0].split()
    return first[2] if done.returncode == 0 and first[:2] == ["-P", "FORWARD"] else None


def engine(log: Path) -> Engine | None:
    """Make sure Docker Engine answers: start dockerd as root if it does not. The dockerd
    started here (to stop at the end), or None if one was running."""
    if shutil.which("docker") is None:
        raise Unavailable("no docker command: install Debian's docker.io")
    if _answers():
        return None
    if os.geteuid() != 0:
        raise Unavailable("Docker Engine is not running, and only root may start it")
    if shutil.which("dockerd") is None:
        raise Unavailable("no dockerd: install Debian's docker.io")
    forward = forward_policy()
    with log.open("ab") as out:
        daemon = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT)
    started = Engine(daemon, forward)
    deadline = time.monotonic() + ENGINE_WAIT
    while time.monotonic() < deadline:
        if _answers():
            return started
        if daemon.poll() is not None:
            break
        time.sleep(0.2)
    stop_engine(started)
    raise Unavailable(f"dockerd did not start (its log: {log})")


def _answers() -> bool:
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return done.returncode == 0


def stop_engine(started: Engine) -> None:
    """Stop the dockerd started here and give the firewall back its FORWARD policy."""
    started.daemon.terminate()
    try:
        started.daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        started.daemon.kill()
        started.daemon.wait()
    if started.forward is not None and forward_policy() != started.forward:
        subprocess.run(["iptables", "-P", "FORWARD", started.forward], capture_output=True)


def build_image() -> None:
    """The image, built from this checkout (the base image only when missing)."""
    image_exists = subprocess.run(
        ["docker", "image", "inspect", "gossip-base:bookworm"], capture_output=True
    )
    if image_exists.returncode != 0 and shutil.which("debootstrap") is None:
        raise Unavailable("no base image and no debootstrap to make one: install debootstrap")
    run("bash", str(ROOT / "deploy" / "build-image.sh"), timeout=BUILD_TIMEOUT)


def compose_command() -> list[str]:
    """Compose v2 (``docker compose``) where installed, else Debian's docker-compose."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise Unavailable("no Docker Compose: install Debian's docker-compose")


class Compose:
    """One project of deploy/compose.yaml, with a secret of its own."""

    def __init__(self, project: str, scratch: Path) -> None:
        self.project = project
        self.command = compose_command()
        secret = scratch / "secret"
        write_secret(secret, new_secret())
        os.chown(secret, CONTAINER_USER, -1)
        self.env = {**os.environ, "GOSSIP_SECRET": str(secret)}
        self.ids: dict[int, str] = {}
        self.mender = ""
        """The mender's container (``gossip mend``)."""

    def compose(self, *args: str) -> str:
        base = [*self.command, "-p", self.project, "-f", str(COMPOSE_FILE)]
        return run(*base, *args, env=self.env)

    def up(self) -> None:
        self.compose("up", "-d")
        for n in range(1, NODES + 1):
            self.ids[n] = self.compose("ps", "-q", f"node{n}").strip()
        self.mender = self.compose("ps", "-q", "mender").strip()

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans")

    @property
    def network(self) -> str:
        return f"{self.project}_gossip"

    def gossip(self, via: int, *args: str) -> str:
        """A gossip command, run in node ``via``'s container."""
        return run("docker", "exec", self.ids[via], "gossip", *args)

    def spread(self, via: int, ids: list[str], nodes: list[int], timeout: float) -> dict:
        """When each node first held each message (seconds, by the nodes' shared clock)."""
        query = json.dumps([ids, nodes, timeout])
        out = run("docker", "exec", self.ids[via], "python", "-c", SPREAD, query)
        return {i: {int(n): t for n, t in got.items()} for i, got in json.loads(out).items()}

    def lacking(self, via: int, ids: list[str], nodes: list[int], timeout: float) -> dict:
        """Which listed nodes still lack each message after the timeout, by message (empty
        when all arrived). When some lack one, what those nodes logged and the network's
        status are printed, for the test's report."""
        got = self.spread(via, ids, nodes, timeout)
        lacking = {i: sorted(set(nodes) - set(got[i])) for i in ids if set(nodes) - set(got[i])}
        for n in sorted({n for late in lacking.values() for n in late}):
            print(f"--- node {n} logged:\n{self.log(n)}")
        if lacking:
            print(f"--- status:\n{self.gossip(via, 'status')}")
        return lacking

    def log(self, node: int) -> str:
        """What a node's container printed (stdout and stderr), its last 60 lines."""
        done = subprocess.run(
            ["docker", "logs", "--tail", "60", self.ids[node]],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        return done.stdout + done.stderr

    def send(self, via: int, node: int, text: str) -> str:
        """Send a message to a node; its id."""
        out = self.gossip(via, "send-message", str(node), text)
        return out.rsplit("(id ", 1)[1].split(")")[0]

    def live(self, nodes: list[int], via: int) -> bool:
        """Whether these nodes answer and form one connected graph."""
        report = json.loads(self.gossip(via, "status", "--json"))
        up = sorted(n["node"] for n in report["nodes"] if n["state"] == "up")
        return up == nodes and len(report["parts"]) == 1

    def kill(self, node: int) -> None:
        run("docker", "kill", self.ids[node])

    def start(self, node: int) -> None:
        run("docker", "start", self.ids[node])

    def disconnect(self, node: int) -> None:
        run("docker", "network", "disconnect", self.network, self.ids[node])

    def reconnect(self, node: int) -> None:
        """Back on the network under its service name, which Docker's DNS answers for."""
        run("docker", "network", "connect", "--alias", f"node{node}", self.network, self.ids[node])

    def exit_codes(self) -> dict[int | str, int]:
        """Each container's exit status, by node, and the mender's (``"mender"``)."""
        ids = {**self.ids, "mender": self.mender}
        out = run("docker", "inspect", "-f", "{{.State.ExitCode}}", *ids.values())
        return dict(zip(ids, map(int, out.split()), strict=True))

    def mender_log(self) -> str:
        """What the mender printed (it logs to stdout)."""
        return run("docker", "logs", self.mender)
