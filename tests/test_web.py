"""``gossip web`` without a browser: who the server refuses, what it sends, what /metrics says.

The server runs in-process (aiohttp's test server) over a console whose network is made
up, so every refusal is checked against a console that records whether it was reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from gossip import network, state
from gossip.client import Receipt
from gossip.errors import GossipError
from gossip.spread import Arrival
from gossip.state import NetworkState, NodeEntry
from gossip.status import NodeStatus
from gossip.web import console as console_module
from gossip.web.app import (
    FEED,
    GUARD,
    TOKEN_HEADER,
    WAKE,
    WATCHING,
    Guard,
    main,
    make_app,
    node_number,
    one_line,
    serve,
)
from gossip.web.console import FOLLOW_MOST, Console, Follower, Spread, Survey, answering
from gossip.web.metrics import Metrics
from tests.networks import Networks, gossip_cli

OUTSIDE = re.compile(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[\w.-]+\.[a-z]{2,}")
"""An address on another host (the SVG namespace is a name, never fetched)."""
TOKEN = "the-token-of-this-run"
SECRET = bytes(range(32))
COUNTERS = {
    "frames_in": {"RELAY": 7, "SYNC": 3},
    "frames_out": {"RELAY": 9},
    "copies": 7,
    "duplicates": 4,
    "submitted": 1,
    "link_breaks": 2,
    "heals": 1,
    "merges": 0,
    "pulls": 5,
}


def made_up_network() -> NetworkState:
    nodes = {
        n: NodeEntry(number=n, host="127.0.0.1", port=29000 + n, peers=[1 + n % 3])
        for n in (1, 2, 3)
    }
    return NetworkState(29000, 3, "circular", nodes, key=SECRET)


def made_up_survey() -> Survey:
    net = made_up_network()
    report = {"peers": [2, 3], "wanted": 2, "messages": 1, "unread": 1, "started": 0.0}
    rows = [
        NodeStatus(net.nodes[1], "up", {**report, "counters": COUNTERS}),
        NodeStatus(net.nodes[2], "up", {**report, "peers": [1, 3]}),  # counters not landed
        NodeStatus(net.nodes[3], "down", {}),
    ]
    return Survey(net, rows)


class RecordingConsole(Console):
    """A console over the made-up network that records the actions that reach it."""

    def __init__(self) -> None:
        super().__init__(lambda: (Path("/nonexistent"), made_up_network()))
        self.done: list[tuple[Any, ...]] = []

    def survey(self) -> Survey:
        return made_up_survey()

    def send(self, number: int, text: str) -> Receipt:
        self.done.append(("send", number, text))
        return Receipt("0" * 32)

    def watch(self, message_id: str, text: str, nodes: list[int]) -> Spread:
        return Spread(message_id, text, [Arrival(1, None, 0, 0.0)], len(nodes))

    def kill(self, number: int) -> str:
        self.done.append(("kill", number))
        if number == 3:
            raise GossipError("node 3 is not running")
        return f"Killed {number}"


def served(
    console: RecordingConsole,
    test: Callable[[web.Application, TestClient, dict[str, str]], Awaitable[None]],
) -> None:
    """Run ``test`` against a server of ``console``, bound as gossip web binds; it gets the
    app, the client and the headers the page sends (token, Origin)."""

    async def run() -> None:
        app = make_app(console, TOKEN)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            app[GUARD].bind("127.0.0.1", client.port)
            await test(app, client, {TOKEN_HEADER: TOKEN, "Origin": origin(client)})

    asyncio.run(run())


async def within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def serving(test: Callable[[TestClient, RecordingConsole], Awaitable[None]]) -> None:
    """Run ``test`` against a server of a recording console, bound as gossip web binds."""
    console = RecordingConsole()
    served(console, lambda app, client, ours: test(client, console))


def origin(client: TestClient) -> str:
    return f"http://127.0.0.1:{client.port}"


def test_the_page_needs_the_token() -> None:
    async def test(client: TestClient, console: RecordingConsole) -> None:
        for query in ("", "?token=", "?token=the-token-of-this-ru", f"?token={TOKEN}x"):
            response = await client.get(f"/{query}")
            assert response.status == 403, query
            assert "open the URL gossip web printed" in (await response.json())["error"]
        response = await client.get(f"/?token={TOKEN}")
        assert response.status == 200
        page = await response.text()
        assert "/static/app.js" in page
        assert not OUTSIDE.findall(page), "the page loads from the network"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    serving(test)


def test_controls_refuse_other_sites_and_requests_without_the_token() -> None:
    async def test(client: TestClient, console: RecordingConsole) -> None:
        body = {"node": 1, "text": "hi"}
        refused = [
            {},  # no token
            {TOKEN_HEADER: "wrong"},
            {TOKEN_HEADER: TOKEN, "Origin": "http://evil.example"},
            {TOKEN_HEADER: TOKEN, "Origin": "null"},
            {TOKEN_HEADER: TOKEN, "Origin": f"http://127.0.0.1:{client.port + 1}"},
            {TOKEN_HEADER: TOKEN, "Host": f"evil.example:{client.port}"},  # DNS rebinding
        ]
        for headers in refused:
            for path in ("/api/send", "/api/nodes/1/kill", "/api/add"):
                response = await client.post(path, json=body, headers=headers)
                assert response.status == 403, (path, headers)
        response = await client.get("/api/nodes/1/messages")
        assert response.status == 403
        assert console.done == [], "a refused request reached the network"
        ours = {TOKEN_HEADER: TOKEN, "Origin": origin(client)}
        response = await client.post("/api/send", json=body, headers=ours)
        assert response.status == 200, await response.text()
        assert (await response.json())["id"] == "0" * 32
        response = await client.post("/api/nodes/2/kill", json={}, headers=ours)
        assert (await response.json())["said"] == "Killed 2"
        assert console.done == [("send", 1, "hi"), ("kill", 2)]

    serving(test)


def test_bad_requests_get_one_line_errors() -> None:
    async def test(client: TestClient, console: RecordingConsole) -> None:
        ours = {TOKEN_HEADER: TOKEN}
        cases = [
            ("/api/send", b"not json", "the request is not JSON"),
            ("/api/send", b"[1]", "not a JSON object"),
            ("/api/send", b"[" * 30_000 + b"]" * 30_000, "the request is not JSON"),
            ("/api/send", b'{"node": true, "text": "x"}', "a node is a number"),
            ("/api/send", b'{"node": 1}', "the message text is missing"),
            ("/api/send", b'{"node": 1, "text": "x", "relays": 2}', "unknown field 'relays'"),
            # A link-only delay became a delay on every link.
            (
                "/api/netem",
                b'{"links": "1-2", "delay": "5ms"}',
                "unknown field 'links': /api/netem takes delay, jitter and loss",
            ),
            ("/api/partition", b'{"groups": "1 2", "for": 9}', "/api/partition takes groups"),
            ("/api/spread", b'{"text": "x", "id": "m1"}', "unknown field 'id'"),
            ("/api/nodes/1/explode", b"{}", "no such action"),
            ("/api/nodes/3/kill", b"{}", "node 3 is not running"),
        ]
        for path, data, error in cases:
            response = await client.post(path, data=data, headers=ours)
            assert response.status == 400, path
            assert error in (await response.json())["error"]
        gzip = {**ours, "Content-Encoding": "gzip"}  # a body that says gzip and is not: a 500
        response = await client.post("/api/send", data=b"not gzip", headers=gzip)
        assert response.status == 400
        assert "body cannot be read" in (await response.json())["error"]

    serving(test)


def test_a_malformed_request_is_logged_in_one_line_not_a_traceback() -> None:
    try:
        raise LineTooLong("a" * 10, "8190")
    except LineTooLong:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Error handling request", (), sys.exc_info()
        )
    assert one_line(record) and record.exc_info is None
    assert record.getMessage().startswith("refused a malformed request: 400, message:")
    plain = logging.LogRecord("aiohttp.server", logging.ERROR, "", 0, "other", (), None)
    assert one_line(plain) and plain.getMessage() == "other"


def test_a_body_that_lies_about_its_encoding_is_logged_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unread by the handler (a 403, a GET), aiohttp read it afterwards, and logged the
    gzip error as a 40-line traceback in the terminal, from anyone who could connect."""
    logging.getLogger("aiohttp.server").addFilter(one_line)

    async def test(client: TestClient, console: RecordingConsole) -> None:
        liar = {"Content-Encoding": "gzip"}
        for method, path in (("POST", "/api/heal"), ("GET", "/"), ("POST", "/api/send")):
            with contextlib.suppress(aiohttp.ClientError):
                await client.request(method, path, data=b"not gzip" * 100, headers=liar)
        async with aiohttp.ClientSession() as fresh:  # the liars' connection was closed
            page = await fresh.get(client.make_url(f"/?token={TOKEN}"))
            assert page.status == 200, "it serves on"

    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
            serving(test)
    finally:
        logging.getLogger("aiohttp.server").removeFilter(one_line)
    logged = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert logged and all(r.exc_info is None for r in logged), [r.getMessage() for r in logged]
    assert all(r.getMessage().startswith("refused a malformed request") for r in logged)


def test_a_paused_node_is_refused_at_once_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends from the page to a paused node each held the one action at a time for the
    client's timeout: the resume that would mend it waited a minute behind six."""
    monkeypatch.setattr(state, "pid_alive", lambda pid, directory=None: pid == 4242)
    nodes = {n: NodeEntry(n, "127.0.0.1", 29000 + n, [], pid=4242) for n in (1, 2)}
    net = NetworkState(29000, 3, "circular", nodes, conditions={"paused": [2]})
    assert answering(net, 1) is nodes[1]
    with pytest.raises(GossipError, match="node 2 is paused: resume it first"):
        answering(net, 2)
    nodes[2].pid = 4343  # killed while paused: as any dead node, asked (and refusing at once)
    assert answering(net, 2) is nodes[2]


def test_the_feed_refuses_other_sites_and_never_carries_the_secret() -> None:
    async def test(client: TestClient, console: RecordingConsole) -> None:
        for headers, query in (
            ({"Origin": "http://evil.example"}, f"?token={TOKEN}"),
            ({"Origin": origin(client)}, ""),
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"/ws{query}", headers=headers)
            assert refused.value.status == 403
        page = await client.ws_connect(f"/ws?token={TOKEN}", headers={"Origin": origin(client)})
        survey = await page.receive_json(timeout=10)
        assert survey["type"] == "survey"
        assert [n["state"] for n in survey["nodes"]] == ["up", "up", "down"]
        assert survey["nodes"][0]["peers"] == [2, 3]
        ours = {TOKEN_HEADER: TOKEN}
        await client.post("/api/send", json={"node": 1, "text": "hi"}, headers=ours)
        while (event := await page.receive_json(timeout=10))["type"] != "spread":
            pass
        assert event["arrivals"] == [{"node": 1, "parent": None, "hops": 0, "delay_ms": 0.0}]
        await page.close()
        sent = json.dumps([survey, event])
        assert SECRET.hex() not in sent and "secret" not in sent
        assert "key" not in survey

    serving(test)


def test_one_spread_is_looked_up_at_a_time() -> None:
    """Each look reads every node's messages: eight at once took the server to 2.2 GB."""
    release = threading.Event()

    class SlowLook(RecordingConsole):
        def spread_of(self, text: str) -> Spread:
            self.done.append(("look", text))
            release.wait(10)
            return Spread("0" * 32, text, [Arrival(1, None, 0, 0.0)], 1)

    console = SlowLook()

    async def test(app: web.Application, client: TestClient, ours: dict[str, str]) -> None:
        first = asyncio.create_task(client.post("/api/spread", json={"text": "one"}, headers=ours))
        assert await within(10, lambda: bool(console.done)), "the first look never began"
        second = await client.post("/api/spread", json={"text": "two"}, headers=ours)
        assert second.status == 400
        assert "another spread is being looked up" in (await second.json())["error"]
        release.set()
        assert (await first).status == 200
        third = await client.post("/api/spread", json={"text": "three"}, headers=ours)
        assert third.status == 200, await third.text()
        assert console.done == [("look", "one"), ("look", "three")]

    served(console, test)


def test_one_message_sent_from_the_page_is_watched_at_a_time() -> None:
    """Each watch held a thread of the pool sends and actions need, reading every node's
    messages: a burst of sends to a network of thousands of messages took it for minutes."""
    release = threading.Event()

    class SlowWatch(RecordingConsole):
        def watch(self, message_id: str, text: str, nodes: list[int]) -> Spread:
            self.done.append(("watch", text))
            release.wait(10)
            return super().watch(message_id, text, nodes)

    console = SlowWatch()

    async def test(app: web.Application, client: TestClient, ours: dict[str, str]) -> None:
        for text in ("one", "two", "three"):
            sent = await client.post("/api/send", json={"node": 1, "text": text}, headers=ours)
            assert sent.status == 200, await sent.text()
            await asyncio.sleep(0.05)
        assert [d for d in console.done if d[0] == "watch"] == [("watch", "one")]
        release.set()
        assert await within(5, lambda: not app[WATCHING].is_set()), "the watch never ended"
        await client.post("/api/send", json={"node": 1, "text": "four"}, headers=ours)
        assert await within(5, lambda: ("watch", "four") in console.done), console.done

    served(console, test)


def test_metrics_and_static_files_need_no_token() -> None:
    async def test(client: TestClient, console: RecordingConsole) -> None:
        for name in ("app.js", "style.css"):
            shipped = await client.get(f"/static/{name}")
            assert shipped.status == 200
            assert not OUTSIDE.findall(await shipped.text()), f"{name} loads from the network"
        for path in ("/metrics", "/static/app.js"):  # still not for other sites' scripts
            evil = await client.get(path, headers={"Origin": "http://evil.example"})
            assert evil.status == 403
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")

    serving(test)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_give_each_nodes_counters_and_the_spreads() -> None:
    metrics = Metrics()
    metrics.surveyed(made_up_survey())
    arrivals = [Arrival(1, None, 0, 0.0), Arrival(2, 1, 1, 4.0), Arrival(3, 2, 2, 30.0)]
    metrics.spread_seen(Spread("a" * 32, "hi", arrivals, 3))
    metrics.spread_seen(Spread("b" * 32, "lost", arrivals[:2], 3))  # never reached node 3
    found = samples(metrics.text().decode())
    one, two, three = ((("node", n),) for n in "123")
    assert found["gossip_node_up", one] == 1 and found["gossip_node_up", three] == 0
    assert found["gossip_messages_held", one] == 1
    assert found["gossip_peers", two] == 2
    assert found["gossip_copies_received_total", one] == 7
    assert found["gossip_duplicates_total", one] == 4
    assert found["gossip_link_breaks_total", one] == 2
    assert found["gossip_heals_total", one] == 1
    assert found["gossip_merges_total", one] == 0
    assert found["gossip_catchup_pulls_total", one] == 5
    assert found["gossip_messages_submitted_total", one] == 1
    assert found["gossip_frames_in_total", (("command", "SYNC"), ("node", "1"))] == 3
    assert found["gossip_frames_out_total", (("command", "RELAY"), ("node", "1"))] == 9
    assert found["gossip_copies_received_total", two] == 0, "missing counters count as 0"
    assert ("gossip_messages_held", three) not in found, "a node that is down has no figures"
    assert found["gossip_spread_seconds_count", ()] == 1
    assert found["gossip_spread_seconds_sum", ()] == pytest.approx(0.030)
    assert found["gossip_spread_seconds_bucket", (("le", "0.025"),)] == 0
    assert found["gossip_spread_seconds_bucket", (("le", "0.05"),)] == 1


def test_metrics_of_a_network_that_cannot_be_surveyed_give_no_node_figures() -> None:
    """A stopped network kept its last figures: every node up, to Prometheus, for good."""
    metrics = Metrics()
    assert not [n for n, _ in samples(metrics.text().decode()) if not n.startswith("gossip_spr")]
    metrics.surveyed(made_up_survey())
    found = samples(metrics.text().decode())
    assert found["gossip_survey_ok", ()] == 1 and found["gossip_node_up", (("node", "1"),)] == 1
    metrics.surveyed(None)
    found = samples(metrics.text().decode())
    assert found["gossip_survey_ok", ()] == 0
    assert not [name for name, _ in found if name.startswith(("gossip_node", "gossip_peers"))]
    metrics.surveyed(made_up_survey())
    assert samples(metrics.text().decode())["gossip_node_up", (("node", "1"),)] == 1


def test_web_without_a_network_says_so() -> None:
    result = gossip_cli("web", "--port", "0", "--port-origin", "29500")
    assert result.code == 1
    assert result.err.startswith("gossip: no network") and result.err.count("\n") == 1
    result = gossip_cli("web", "--port", "70000", "--port-origin", "29500")
    assert result.code == 2 and "port must be between 0 and 65535" in result.err


def test_a_port_in_use_is_named() -> None:
    console = RecordingConsole()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(GossipError, match=f"port {port} of 127.0.0.1 is in use"):
            asyncio.run(serve(console, "127.0.0.1", port, TOKEN))


def test_the_server_answers_only_to_its_own_addresses() -> None:
    guard = Guard(TOKEN)
    guard.bind("127.0.0.1", 8080)
    assert guard.hosts == {"127.0.0.1:8080", "localhost:8080", "[::1]:8080"}
    assert guard.base() == "http://127.0.0.1:8080"
    guard.bind("::1", 8081)
    assert "[::1]:8081" in guard.hosts and "localhost:8081" in guard.hosts
    assert guard.base() == "http://[::1]:8081", "the URL printed is where it listens"
    guard.bind("127.0.0.2", 8083)
    assert guard.base() == "http://127.0.0.2:8083"
    guard.bind("192.0.2.7", 8082)  # another address of this machine, given with --host
    assert guard.hosts == {"192.0.2.7:8082"}
    assert guard.base() == "http://192.0.2.7:8082"
    for everywhere in ("0.0.0.0", "::"):
        with pytest.raises(GossipError, match="is every address"):
            main(RecordingConsole(), everywhere, 0)
    for nothing in ("", " "):
        with pytest.raises(GossipError, match="--host is empty"):
            main(RecordingConsole(), nothing, 0)


def survey_of(submitted: dict[int, int], held: int = 1) -> Survey:
    """A survey in which each listed node is up and counts this many messages submitted."""
    net = made_up_network()
    rows = [
        NodeStatus(net.nodes[n], "up", {"messages": held, "counters": {"submitted": count}})
        for n, count in submitted.items()
    ]
    return Survey(net, rows)


def test_messages_sent_elsewhere_are_noticed_and_the_pages_own_are_not() -> None:
    follower = Follower()
    assert follower.new_elsewhere(survey_of({1: 5, 2: 0})) == [], "the first look: no news"
    assert follower.new_elsewhere(survey_of({1: 6, 2: 0})) == [1]
    follower.sent_here(2)
    assert follower.new_elsewhere(survey_of({1: 6, 2: 0})) == [], "not counted yet"
    assert follower.new_elsewhere(survey_of({1: 6, 2: 1})) == [], "the page's own"
    follower.sent_here(2)
    assert follower.new_elsewhere(survey_of({1: 6, 2: 3})) == [2], "one of two is news"
    assert follower.new_elsewhere(survey_of({1: 0, 2: 3})) == [], "node 1 restarted"
    follower.sent_here(1)
    follower.not_sent(1)
    assert follower.new_elsewhere(survey_of({1: 1, 2: 3})) == [1]
    assert follower.new_elsewhere(survey_of({1: 2, 2: 3}, held=FOLLOW_MOST + 1)) == []
    assert follower.new_elsewhere(survey_of({1: 2})) == [], "node 2 missed a look"
    assert follower.new_elsewhere(survey_of({1: 2, 2: 4})) == [2], "and is back with news"


@pytest.mark.parametrize("value", ["0", "-1", "²", "1" * 5000, "1.0", True, 2.0, None, [3]])
def test_a_node_the_page_names_is_a_number_from_1(value: object) -> None:
    """What the page sends as a node: never a ValueError (a 500), always one line."""
    with pytest.raises(GossipError, match="a node is a number from 1 up"):
        node_number(value)
    assert node_number("7") == node_number(7) == 7
    # a node past the last is the network's to name ("does not exist"), not "not a number"
    assert node_number("99999999999") == 99999999999
    with pytest.raises(GossipError, match=r"from 1 up, not true$"):  # as the page sent it
        node_number(True)


@pytest.mark.parametrize(
    ("groups", "error"),
    [
        ("1-3", "a partition needs two groups or more"),
        ("1-2 3-99", "node 99 does not exist"),
        ("1-2 3-" + "9" * 5000, "a partition group is nodes like 1-8"),
        ("1-2 2-3", "node 2 is in two groups"),
        ("1-2 x", "a partition group is nodes like 1-8"),
    ],
)
def test_the_pages_partition_is_checked_as_the_commands(groups: str, error: str) -> None:
    """Refused in one line before anything is imposed, as ``gossip partition`` refuses."""
    console = Console(lambda: (Path("/nonexistent"), made_up_network()))
    with pytest.raises(GossipError, match=error):
        console.partition(groups)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (("fast", "", ""), "the delay must be a time like 100ms"),
        (("", "lots", ""), "the jitter must be a time like 100ms"),
        (("", "", "150%"), "the loss must be a percentage from 0% to 100%"),  # said --loss
    ],
)
def test_the_pages_netem_names_its_fields_as_the_page_does(
    fields: tuple[str, str, str], error: str
) -> None:
    def unused() -> tuple[Path, NetworkState]:
        raise AssertionError("a bad field is refused before the network is looked up")

    with pytest.raises(GossipError, match=error):
        Console(unused).netem(*fields)


def test_a_network_that_stops_answering_is_not_shown_as_it_was() -> None:
    """Stopped under a running page, the network stayed drawn all up: the last survey was
    still what a page opened afterwards got first, and only a red line said otherwise."""
    stopped = threading.Event()

    class Stopping(RecordingConsole):
        def survey(self) -> Survey:
            if stopped.is_set():
                raise GossipError("no network is running on port origin 29000")
            return made_up_survey()

    async def test(app: web.Application, client: TestClient, ours: dict[str, str]) -> None:
        assert await within(10, lambda: "survey" in app[FEED].latest)
        stopped.set()
        app[WAKE].set()
        assert await within(10, lambda: "trouble" in app[FEED].latest)
        assert "survey" not in app[FEED].latest
        page = await client.ws_connect(f"/ws?token={TOKEN}", headers={"Origin": ours["Origin"]})
        first = await page.receive_json(timeout=10)
        assert first["type"] == "trouble" and "no network is running" in first["error"]
        stopped.clear()
        app[WAKE].set()
        while (await page.receive_json(timeout=10))["type"] != "survey":
            pass
        assert "trouble" not in app[FEED].latest
        await page.close()

    served(Stopping(), test)


def test_a_watch_under_way_ends_when_the_server_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C waited for a spread watched from the page for the rest of SPREAD_TIMEOUT:
    the nodes here never answer, so it would wait it all."""
    monkeypatch.setattr(console_module, "SPREAD_TIMEOUT", 600.0)
    console = Console(lambda: (Path("/nonexistent"), made_up_network()))
    ended: list[str] = []

    def watching() -> None:
        try:
            console.watch("0" * 32, "hi", [1, 2, 3])
        except GossipError as exc:
            ended.append(str(exc))

    watcher = threading.Thread(target=watching, daemon=True)
    watcher.start()
    served(console, lambda app, client, ours: asyncio.sleep(0))  # starts, and stops
    watcher.join(30)
    assert not watcher.is_alive(), "the watch outlived the server"
    assert ended == ["the page's server is stopping"]


def test_a_paused_node_is_not_asked_whether_a_message_reached_it(
    networks: Networks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It cannot have it, and each look at it waited for the client's whole timeout: the
    page showed the spread only after SPREAD_TIMEOUT, and Ctrl-C waited for a look."""
    net = networks.start("-n", "4")
    assert net.cli("pause", "2").code == 0
    asked: list[int] = []
    real = network.surveyor

    def recording(plan: NetworkState, number: int) -> Any:
        asked.append(number)
        return real(plan, number)

    monkeypatch.setattr(network, "surveyor", recording)
    console = Console(lambda: (net.directory, net.state))
    receipt = console.send(1, "while 2 sleeps")
    seen = console.watch(receipt.id, "while 2 sleeps", [1, 2, 3, 4])
    assert (len(seen.arrivals), seen.expected) == (3, 4)
    assert asked and 2 not in asked, asked
