"""The server of ``gossip web``: the page, its live feed, its controls and ``/metrics``.

Guarded as Jupyter guards its notebooks, because the controls can kill nodes: it binds
127.0.0.1 unless told otherwise; the page, its feed and its controls need the per-run
token printed with the URL; and a request is refused if its Host is not this server (a
DNS-rebinding page) or its Origin is another site, WebSocket upgrades included, so no
other website open in the same browser can drive the network. The static files and
``/metrics`` hold nothing secret and need no token, so Prometheus can scrape them.
Blocking calls into the network run in threads, one action at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gossip.errors import GossipError
from gossip.web.console import Console, Follower, Spread, Survey
from gossip.web.metrics import CONTENT_TYPE, Metrics

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "X-Gossip-Token"
POLL = 0.5
"""Seconds between two surveys of every node (the supervisor looks once a second), or
twice as long as the last survey took, if that is longer."""
OPEN = ("/static/", "/metrics")
"""Paths any local program may read without the token: nothing there is secret."""
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Guard:
    """Who may use the server: the token, and the Host and Origin of this server only."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.hosts: set[str] = set()
        self.listening = ""
        """``host:port`` where the server listens, as a URL names it."""

    def bind(self, host: str, port: int) -> None:
        """The addresses the server answers on, once it is bound (``--port 0`` picks one)."""
        names = {f"[{host}]" if ":" in host else host}
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                names |= {"127.0.0.1", "localhost", "[::1]"}
        self.hosts = {f"{name}:{port}" for name in names}
        self.listening = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def base(self) -> str:
        """``http://host:port`` of this server: the address it listens on, which is where
        it answers (a loopback address other than 127.0.0.1 too)."""
        return f"http://{self.listening}"

    def refusal(self, request: web.Request) -> str | None:
        """Why a request is refused, or None if it may go on."""
        if request.host not in self.hosts:
            return f"this server answers only to {', '.join(sorted(self.hosts))}"
        origin = request.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.hosts:
            return "requests from other sites are refused"
        if request.path.startswith(OPEN):
            return None
        given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "open the URL gossip web printed: it holds this run's token"
        return None


class Feed:
    """The pages watching: each gets every survey and every spread as it happens."""

    def __init__(self) -> None:
        self.pages: set[web.WebSocketResponse] = set()
        self.latest: dict[str, dict[str, Any]] = {}

    async def publish(self, event: dict[str, Any]) -> None:
        self.latest[event["type"]] = event
        for page in list(self.pages):
            try:
                await page.send_json(event)
            except (ConnectionError, RuntimeError):
                self.pages.discard(page)

    async def join(self, page: web.WebSocketResponse) -> None:
        for event in list(self.latest.values()):
            await page.send_json(event)
        self.pages.add(page)


TROUBLE = (GossipError, OSError)
"""What a survey or an action may run into: the network's refusals, and the machine's."""


def said(exc: Exception) -> str:
    """One line for the page, as the CLI would print it."""
    if isinstance(exc, GossipError):
        return str(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"{getattr(exc, 'strerror', None) or exc}{where}"


GUARD = web.AppKey("guard", Guard)
CONSOLE = web.AppKey("console", Console)
FEED = web.AppKey("feed", Feed)
METRICS = web.AppKey("metrics", Metrics)
LOCK = web.AppKey("lock", asyncio.Lock)
WAKE = web.AppKey("wake", asyncio.Event)
TASKS = web.AppKey("tasks", set)
FOLLOWER = web.AppKey("follower", Follower)
FOLLOWING = web.AppKey("following", asyncio.Event)
WATCHING = web.AppKey("watching", asyncio.Event)
"""Set while a message sent from the page is watched: one at a time. Each watch reads
every node's messages a few times a second, in a thread of the pool that sends and
actions need too; a burst of sends to nodes holding thousands of messages took the pool
for minutes."""
LOOKING = web.AppKey("looking", asyncio.Lock)
"""Held while a spread asked for (``/api/spread``) is looked up."""


@web.middleware
async def guarded(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    refusal = request.app[GUARD].refusal(request)
    if refusal is not None:
        return web.json_response({"error": refusal}, status=403, headers=HEADERS)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


def make_app(console: Console, token: str) -> web.Application:
    app = web.Application(middlewares=[guarded], client_max_size=64 * 1024)
    app[GUARD] = Guard(token)
    app[CONSOLE] = console
    app[FEED] = Feed()
    app[METRICS] = Metrics()
    app[LOCK] = asyncio.Lock()
    app[WAKE] = asyncio.Event()
    app[TASKS] = set()
    app[FOLLOWER] = Follower()
    app[FOLLOWING] = asyncio.Event()
    app[WATCHING] = asyncio.Event()
    app[LOOKING] = asyncio.Lock()
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws", feed)
    app.router.add_get("/api/nodes/{node}/messages", messages)
    app.router.add_post("/api/send", send)
    app.router.add_post("/api/spread", spread)
    app.router.add_post("/api/add", add)
    app.router.add_post("/api/partition", partition)
    app.router.add_post("/api/heal", heal)
    app.router.add_post("/api/netem", netem)
    app.router.add_post("/api/nodes/{node}/{action}", act)
    app.cleanup_ctx.append(surveying)
    app.on_shutdown.append(stopping)
    return app


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def feed(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=20)
    await socket.prepare(request)
    pages = request.app[FEED]
    await pages.join(socket)
    try:
        async for message in socket:  # the page only listens; its controls are POSTs
            if message.type == WSMsgType.ERROR:
                break
    finally:
        pages.pages.discard(socket)
    return socket


async def stopping(app: web.Application) -> None:
    """The server stops: a spread still watched ends now, and so does every page's feed."""
    app[CONSOLE].close()
    for socket in list(app[FEED].pages):
        await socket.close()


async def surveying(app: web.Application) -> AsyncIterator[None]:
    """Survey every node every POLL seconds (at once after an action) and publish it."""

    loop = asyncio.get_running_loop()

    async def surveys() -> None:
        wake = app[WAKE]
        while True:
            wake.clear()
            began = loop.time()
            try:
                survey: Survey = await asyncio.to_thread(app[CONSOLE].survey)
            except TROUBLE as exc:
                app[METRICS].surveyed(None)
                app[FEED].latest.pop("survey", None)  # a page opened now must not draw it
                await app[FEED].publish({"type": "trouble", "error": said(exc)})
            else:
                app[FEED].latest.pop("trouble", None)
                app[METRICS].surveyed(survey)
                await app[FEED].publish(survey.view())
                news = app[FOLLOWER].new_elsewhere(survey)
                if news and app[FEED].pages and not app[FOLLOWING].is_set():
                    app[FOLLOWING].set()  # one at a time: the newest news wins next
                    background(app, follow(app, news[0], survey.up()))
            rest = max(POLL, 2 * (loop.time() - began))  # a big network is not asked nonstop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), rest)

    task = asyncio.create_task(surveys())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for watching in list(app[TASKS]):
        watching.cancel()


async def body(request: web.Request, *fields: str) -> dict[str, Any]:
    """The request's JSON object, which holds none but these ``fields``: one the endpoint
    does not take (a relays for /api/send, links for /api/netem) would be asked for and
    silently not given, the request doing something else than was meant."""
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[…]]]]
        raise GossipError("the request is not JSON") from None
    except (RequestPayloadError, HttpProcessingError):  # a body that says gzip and is not
        raise GossipError("the request's body cannot be read (its encoding is wrong)") from None
    if not isinstance(data, dict):
        raise GossipError("the request is not a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        taken = ", ".join(fields[:-1]) + " and " + fields[-1] if len(fields) > 1 else fields[0]
        raise GossipError(f"unknown field {unknown[0]!r}: {request.path} takes {taken}")
    return data


def node_number(value: object) -> int:
    """A node's number as a path or a body gives it (the network says whether it exists)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4000:
        value = int(value)  # below int()'s limit of digits
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GossipError(f"a node is a number from 1 up, not {json.dumps(value)}")
    return value


async def run(request: web.Request, call: Callable[[], Any]) -> Any:
    """Run a blocking action in a thread, one at a time, then survey at once."""
    async with request.app[LOCK]:
        try:
            return await asyncio.to_thread(call)
        finally:
            request.app[WAKE].set()


def answer(handler: Callable[[web.Request], Awaitable[dict[str, Any]]]) -> Any:
    """A JSON API handler: its result, or ``{"error"}`` with 400 for a GossipError."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(request))
        except TROUBLE as exc:
            return web.json_response({"error": said(exc)}, status=400)

    return handle


@answer
async def send(request: web.Request) -> dict[str, Any]:
    data = await body(request, "node", "text")
    number, text = node_number(data.get("node")), data.get("text")
    if not isinstance(text, str):
        raise GossipError("the message text is missing")
    console = request.app[CONSOLE]
    follower = request.app[FOLLOWER]
    follower.sent_here(number)  # before: a survey may count it while it is being sent
    try:
        receipt = await run(request, lambda: console.send(number, text))
    except TROUBLE:
        follower.not_sent(number)
        raise
    live = live_nodes(request.app) or [number]
    if not request.app[WATCHING].is_set():  # else it is sent, not shown spreading
        request.app[WATCHING].set()
        background(request.app, watch_one(request.app, receipt.id, text, live))
    verb = "Held by" if receipt.held else "Sent to"
    return {"id": receipt.id, "said": f"{verb} node {number}: {text!r} (id {receipt.id})"}


def live_nodes(app: web.Application) -> list[int]:
    """The nodes alive at the latest survey (up, busy or paused): those a message should
    reach."""
    latest = app[FEED].latest.get("survey", {})
    return [n["node"] for n in latest.get("nodes", []) if n["state"] in ("up", "busy", "paused")]


def background(app: web.Application, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` beside the server; cancelled when it stops."""
    task = asyncio.create_task(work)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def watch(
    app: web.Application, message_id: str, text: str, live: list[int], timed: bool
) -> None:
    """Follow a message until every live node holds it; show how it spread. ``timed``:
    sent through this server, so its submit-to-all latency is measured."""
    try:
        seen: Spread = await asyncio.to_thread(app[CONSOLE].watch, message_id, text, live)
    except TROUBLE as exc:
        await app[FEED].publish({"type": "trouble", "error": said(exc)})
        return
    if timed:
        app[METRICS].spread_seen(seen)
    await app[FEED].publish(seen.view())


async def watch_one(app: web.Application, message_id: str, text: str, live: list[int]) -> None:
    """``watch`` a message sent from the page, then let the next send be watched."""
    try:
        await watch(app, message_id, text, live, timed=True)
    finally:
        app[WATCHING].clear()


async def follow(app: web.Application, number: int, live: list[int]) -> None:
    """Show the newest message submitted to node ``number`` elsewhere spreading."""
    try:
        found = await asyncio.to_thread(app[CONSOLE].newest_from, number)
        if found is not None:
            await watch(app, *found, live, timed=False)
    except TROUBLE:
        pass  # the node went away meanwhile: the next survey shows that
    finally:
        app[FOLLOWING].clear()


@answer
async def spread(request: web.Request) -> dict[str, Any]:
    text = (await body(request, "text")).get("text")
    if not isinstance(text, str) or not text:
        raise GossipError("give the text of a message to show its spread")
    looking = request.app[LOOKING]
    if looking.locked():  # each look reads every node's messages: one at a time
        raise GossipError("another spread is being looked up: wait for it, then ask again")
    async with looking:
        seen: Spread = await asyncio.to_thread(request.app[CONSOLE].spread_of, text)
    await request.app[FEED].publish(seen.view())
    return {"said": f"{text!r} reached {len(seen.arrivals)} nodes"}


@answer
async def messages(request: web.Request) -> dict[str, Any]:
    number = node_number(request.match_info["node"])
    found = await asyncio.to_thread(request.app[CONSOLE].messages, number)
    return {"node": number, "messages": found}


@answer
async def add(request: web.Request) -> dict[str, Any]:
    return {"said": await run(request, request.app[CONSOLE].add)}


@answer
async def partition(request: web.Request) -> dict[str, Any]:
    groups = (await body(request, "groups")).get("groups")
    if not isinstance(groups, str):
        raise GossipError("give the groups, as in 1-8 9-16")
    return {"said": await run(request, lambda: request.app[CONSOLE].partition(groups))}


@answer
async def heal(request: web.Request) -> dict[str, Any]:
    return {"said": await run(request, request.app[CONSOLE].heal)}


@answer
async def netem(request: web.Request) -> dict[str, Any]:
    data = await body(request, "delay", "jitter", "loss")
    fields = [data.get(name, "") for name in ("delay", "jitter", "loss")]
    if not all(isinstance(f, str) for f in fields):
        raise GossipError("delay, jitter and loss are text, as in 100ms, 10ms, 5%")
    return {"said": await run(request, lambda: request.app[CONSOLE].netem(*fields))}


@answer
async def act(request: web.Request) -> dict[str, Any]:
    number = node_number(request.match_info["node"])
    console = request.app[CONSOLE]
    actions = {
        "kill": console.kill,
        "restart": console.restart,
        "remove": console.remove,
        "pause": console.pause,
        "resume": console.resume,
    }
    action = actions.get(request.match_info["action"])
    if action is None:
        raise GossipError(f"no such action: choose one of {', '.join(actions)}")
    return {"said": await run(request, lambda: action(number))}


def one_line(record: logging.LogRecord) -> bool:
    """A malformed request (a line too long, a broken chunk, a body that says gzip and is
    not, found as aiohttp reads what a handler left unread), which aiohttp answers with a
    400, logged as one line, not as a traceback in the terminal that serves the page."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError | RequestPayloadError):
        record.msg, record.args, record.exc_info = "refused a malformed request: %s", (error,), None
    return True


async def serve(console: Console, host: str, port: int, token: str) -> None:
    """Serve until SIGINT or SIGTERM; print the URL to open once listening."""
    logging.getLogger("aiohttp.server").addFilter(one_line)
    app = make_app(console, token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise GossipError(
                    f"port {port} of {host} is in use: choose another with --port"
                ) from None
            raise GossipError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
        guard = app[GUARD]
        guard.bind(host, runner.addresses[0][1])
        print(
            f"Serving the live page of {console.find()[1].label} at\n"
            f"  {guard.base()}/?token={guard.token}\n"
            f"Metrics (Prometheus): {guard.base()}/metrics\nStop with Ctrl-C.",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(console: Console, host: str, port: int) -> None:
    """``gossip web``: serve with a new token until interrupted."""
    if not host.strip():  # aiohttp would listen on every address, under no name to print
        raise GossipError("--host is empty: give the address the browser will use")
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            raise GossipError(f"--host {host} is every address: give the one the browser will use")
    asyncio.run(serve(console, host, port, secrets.token_urlsafe(32)))
