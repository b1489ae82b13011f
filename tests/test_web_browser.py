"""``gossip web`` in a real browser: Playwright drives Debian's Chromium against the real
command on a running 16-node network.

Skipped, saying why, where Chromium is not installed (``.ci/run`` installs it with apt).
``GOSSIP_SCREENSHOT=images/web.png`` also saves the README's screenshot of the page.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gossip import state
from gossip.network import parts, wait_until
from tests.networks import Net, Networks, peer_numbers, send
from tests.test_web import samples

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SERVER_START = 30.0
SEEN = 30_000
"""Milliseconds the page gets to show what the test waits for."""


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium, the system's own: the package registry serves no browser builds."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): no browser to test in")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"] if root else []
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def web(networks: Networks) -> Iterator[Callable[[Net], str]]:
    """Starts ``gossip web`` on a free port for a network; the URL it printed. Stopped after."""
    servers: list[subprocess.Popen[str]] = []

    def serve(net: Net) -> str:
        command = [sys.executable, "-m", "gossip", "web", "--port", "0"]
        server = subprocess.Popen(
            [*command, "--port-origin", str(net.origin)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=net.cwd,
        )
        servers.append(server)
        lines: queue.Queue[str] = queue.Queue()
        assert server.stdout is not None
        threading.Thread(target=lambda: [lines.put(s) for s in server.stdout], daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=SERVER_START)
            except queue.Empty:
                pytest.fail("gossip web printed no URL")
            if "token=" in line:
                return line.strip()

    try:
        yield serve
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_the_page_shows_the_network_live_and_drives_it(
    networks: Networks, web: Callable[[Net], str], browser: Any
) -> None:
    from playwright.sync_api import expect

    net = networks.start("--seed", "42")
    url = web(net)
    base = url.split("/?")[0]
    page = browser.new_page(viewport={"width": 1300, "height": 820})
    received: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(str(f))))
    page.goto(url)

    expect(page.locator("g.node[data-state=up]")).to_have_count(16, timeout=SEEN)
    expect(page.locator("#summary")).to_have_attribute("data-parts", "1", timeout=SEEN)
    expect(page.locator("#summary")).to_have_attribute("data-links", "24")

    page.select_option("#send-node", "1")
    page.fill("#send-text", "Hello from the page")
    page.click("#send-button")
    expect(page.locator("#said")).to_contain_text("Sent to node 1", timeout=SEEN)
    summary = page.locator("#spread-summary")
    expect(summary).to_have_attribute("data-reached", "16", timeout=SEEN)
    expect(summary).to_contain_text("reached 16 of 16 live nodes")
    expect(page.locator("g.node.reached")).to_have_count(16)
    expect(page.locator("#tree line.tree")).to_have_count(15)  # the first-arrival tree
    expect(page.locator("#nodes td.messages")).to_have_text(["1"] * 16, timeout=SEEN)
    message_id = summary.get_attribute("data-id")
    assert message_id is not None
    net.wait_delivered(message_id)  # the nodes agree with the page
    elsewhere = send(net, 9, "Hello from the command line")  # the page follows it too
    expect(summary).to_have_attribute("data-id", elsewhere, timeout=SEEN)
    expect(summary).to_have_attribute("data-reached", "16", timeout=SEEN)
    expect(summary).to_contain_text("Hello from the command line")
    page.locator("#spread-text").fill("Hello from the page")  # and replays any by its text
    page.locator("#spread-form button[type=submit]").click()
    expect(summary).to_have_attribute("data-id", message_id, timeout=SEEN)
    expect(summary).to_have_attribute("data-reached", "16", timeout=SEEN)
    expect(page.locator("#nodes td.messages")).to_have_text(["2"] * 16, timeout=SEEN)

    page.click('#nodes tr[data-node="2"] td.number')  # a node's messages, with their paths
    expect(page.locator("#inbox-list li")).to_have_count(2, timeout=SEEN)
    expect(page.locator("#inbox-list li b").first).to_have_text("Hello from the page")
    expect(page.locator("#inbox-list .path").first).to_contain_text("1 ➜")
    expect(page.locator("#inbox-counts")).to_contain_text("copies received")
    if screenshot := os.environ.get("GOSSIP_SCREENSHOT"):
        page.screenshot(path=str(Path(screenshot)), full_page=True)

    figures = samples(urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode())
    assert figures["gossip_spread_seconds_count", ()] == 1, "only the page's message is timed"
    for number in range(1, 17):
        assert figures["gossip_messages_held", (("node", str(number)),)] == 2
    assert figures["gossip_messages_submitted_total", (("node", "1"),)] == 1
    copies = sum(v for (name, _), v in figures.items() if name == "gossip_copies_received_total")
    assert copies >= 15, "every node but the origin received a copy"

    victim = 4
    former = peer_numbers(net, victim)
    page.click(f'button[data-action=kill][data-node="{victim}"]')
    expect(page.locator("#said")).to_contain_text(f"Killed Gossip-Node-{victim}", timeout=SEEN)
    drawn = page.locator(f'g.node[data-node="{victim}"]')
    expect(drawn).to_have_attribute("data-state", "down", timeout=SEEN)
    expect(page.locator(f'#nodes tr[data-node="{victim}"] td.state')).to_have_text("down")
    for number in former:
        peers = page.locator(f'#nodes tr[data-node="{number}"] td.peers')
        expect(peers).not_to_have_text(re.compile(rf"\b{victim}\b"), timeout=SEEN)
    # 15 nodes of 3 peers but the one left over: 22 two-way links, all one graph again.
    expect(page.locator("#summary")).to_have_attribute("data-links", "22", timeout=SEEN)
    expect(page.locator("#summary")).to_have_attribute("data-parts", "1")
    expect(page.locator("#summary")).to_have_attribute("data-up", "15")

    live = [n for n in range(1, 17) if n != victim]
    links = {n: sorted(peer_numbers(net, n)) for n in live}
    assert len(parts(links)) == 1 and all(len(p) <= 3 for p in links.values()), links
    net.wait_delivered(message_id, nodes=live)

    def breaks_counted() -> bool:
        text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        figures.update(samples(text))
        return all(figures["gossip_link_breaks_total", (("node", str(n)),)] >= 1 for n in former)

    assert wait_until(breaks_counted, 10, interval=0.5), "the lost links were not counted"
    page.click(f'button[data-action=restart][data-node="{victim}"]')
    expect(page.locator("#said")).to_contain_text(f"Restarted Gossip-Node-{victim}", timeout=SEEN)
    expect(drawn).to_have_attribute("data-state", "up", timeout=SEEN)
    messages = page.locator(f'#nodes tr[data-node="{victim}"] td.messages')
    expect(messages).to_have_text("2", timeout=SEEN)  # it kept what it held
    page.click('button[data-action=remove][data-node="16"]')
    expect(page.locator("#said")).to_contain_text("Removed Gossip-Node-16", timeout=SEEN)
    expect(page.locator('g.node[data-node="16"]')).to_have_attribute("data-state", "removed")
    page.click("#add-node")
    expect(page.locator("#said")).to_contain_text("Added Gossip-Node-17", timeout=SEEN)
    expect(page.locator('g.node[data-node="17"]')).to_have_attribute("data-state", "up")
    expect(page.locator("#summary")).to_have_attribute("data-up", "16", timeout=SEEN)
    expect(page.locator("#summary")).to_have_attribute("data-parts", "1", timeout=SEEN)
    net.wait_delivered(message_id)  # node 17 caught up on it too

    key = net.state.key
    assert key is not None and received, "the page got nothing over its WebSocket"
    assert key.hex() not in page.content() and not any(key.hex() in f for f in received)


def test_the_lab_controls_pause_partition_heal_and_delay(
    networks: Networks, web: Callable[[Net], str], browser: Any
) -> None:
    from playwright.sync_api import expect

    net = networks.start("circular", "-n", "8")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(web(net))
    expect(page.locator("g.node[data-state=up]")).to_have_count(8, timeout=SEEN)
    conditions = page.locator("#conditions")
    expect(conditions).to_contain_text("none")

    page.click('button[data-action=pause][data-node="3"]')
    expect(page.locator("#said")).to_contain_text("Paused Gossip-Node-3", timeout=SEEN)
    expect(page.locator('g.node[data-node="3"]')).to_have_attribute("data-state", "paused")
    expect(conditions).to_contain_text("paused 3")
    page.click('button[data-action=resume][data-node="3"]')
    expect(page.locator('g.node[data-node="3"]')).to_have_attribute(
        "data-state", "up", timeout=SEEN
    )
    expect(conditions).to_contain_text("none")

    page.fill("#partition-groups", "1-4 5-8")
    page.click("#partition")
    expect(conditions).to_contain_text("partition 1-4 | 5-8", timeout=SEEN)
    summary = page.locator("#summary")
    expect(summary).to_have_attribute("data-parts", "2", timeout=SEEN)
    page.click("#heal")
    expect(conditions).to_contain_text("none", timeout=SEEN)
    expect(summary).to_have_attribute("data-parts", "1", timeout=SEEN)

    page.fill("#netem-delay", "20ms")
    page.click("#netem")
    expect(conditions).to_contain_text("delay 20 ms on every link", timeout=SEEN)
    page.select_option("#send-node", "1")
    page.fill("#send-text", "slowly")
    page.click("#send-button")
    spread = page.locator("#spread-summary")
    expect(spread).to_contain_text("reached 8 of 8 live nodes", timeout=SEEN)
    last = re.search(r"the last ([\d.]+) ms after it was sent \((\d+) hops?", spread.inner_text())
    assert last, spread.inner_text()
    assert float(last.group(1)) >= 20 * int(last.group(2)), "each hop is 20 ms late"
    page.fill("#netem-delay", "")
    page.click("#netem")
    expect(conditions).to_contain_text("none", timeout=SEEN)
    links = {n: sorted(peer_numbers(net, n)) for n in range(1, 9)}
    assert len(parts(links)) == 1 and all(len(p) <= 3 for p in links.values()), links

    # A paused node killed since is down, with the controls of one (it stayed paused, with
    # only a resume that could not work).
    page.click('button[data-action=pause][data-node="5"]')
    expect(page.locator('g.node[data-node="5"]')).to_have_attribute(
        "data-state", "paused", timeout=SEEN
    )
    os.kill(state.load(net.directory).nodes[5].pid, signal.SIGKILL)
    expect(page.locator('g.node[data-node="5"]')).to_have_attribute(
        "data-state", "down", timeout=SEEN
    )
    expect(page.locator('button[data-action=restart][data-node="5"]')).to_have_count(1)
    # The network stopped under the page: not drawn as it was, until it is back.
    assert net.cli("stop-network").code == 0
    expect(page.locator("#summary")).to_contain_text("does not answer", timeout=SEEN)
    expect(page.locator("body")).to_have_class(re.compile("stale"))
    assert net.cli("start-network", "--resume").code == 0
    expect(page.locator("#summary")).to_contain_text("nodes up", timeout=SEEN)
    expect(page.locator("body")).not_to_have_class(re.compile("stale"))
