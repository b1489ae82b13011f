"""A node's TCP server: thin I/O around ``gossip.node.Node``.

One ``ThreadingTCPServer`` per node process. Each connection may carry several
request frames; each gets its reply frames. Copies for peers go out from a small
thread pool, so a slow or dead peer never holds up the others or the sender.
"""

from __future__ import annotations

import contextlib
import logging
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gossip.client import GossipClient, farewell, introduce
from gossip.node import Address, Link, Node, Send
from gossip.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_RELAYS,
    READ_FILTERS,
    Frame,
    FrameError,
    address_fields,
    encode_frame,
    field,
    message_payload,
    message_text,
    path_field,
    positive_int,
    read_frame,
)
from gossip.state import GossipError

PEER_TIMEOUT = 2.0
"""Seconds to connect to and hear back from a peer before giving up on that copy."""

log = logging.getLogger("gossip.node")


def call_peer(address: Address, frame: bytes) -> dict[str, Any]:
    """Send one frame to a peer and return its ``/OK`` payload; GossipError if it fails."""
    return GossipClient(address, timeout=PEER_TIMEOUT, name="peer").exchange(frame)[-1].payload


class GossipServer(socketserver.ThreadingTCPServer):
    """Holds the node state, its lock, and the pool that carries copies to peers."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, node: Node, address: Address) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.outbox = ThreadPoolExecutor(max_workers=8, thread_name_prefix="relay")
        super().__init__(address, Handler)

    def deliver(self, sends: list[Send]) -> None:
        for send in sends:
            self.outbox.submit(self._deliver_one, send)

    def _deliver_one(self, send: Send) -> None:
        try:
            call_peer(send.address, send.frame)
        except GossipError as exc:
            log.warning("node %d: copy to node %d lost: %s", self.node.number, send.peer, exc)

    def server_close(self) -> None:
        super().server_close()
        self.outbox.shutdown(wait=False, cancel_futures=True)


class Handler(socketserver.StreamRequestHandler):
    """Reads request frames until the client closes; answers each one."""

    server: GossipServer
    timeout = 30.0

    def handle(self) -> None:
        while True:
            try:
                frame = read_frame(self.rfile)
            except FrameError as exc:
                self._refuse(str(exc))
                return
            except OSError:
                return
            if frame is None:
                return
            try:
                replies = self.dispatch(frame)
            except FrameError as exc:
                self._refuse(str(exc))
                continue
            except Exception as exc:
                self._refuse(f"/{frame.command} failed inside the node: {exc!r}")
                continue
            try:
                self.wfile.write(b"".join(replies))
            except OSError:
                return
            if frame.command == "REMOVE":
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return

    def _refuse(self, reason: str) -> None:
        log.warning("node %d: refused a frame from %s: %s", self.node.number, self.peer, reason)
        with contextlib.suppress(OSError):
            self.wfile.write(encode_frame("ERR", {"error": reason}))

    @property
    def node(self) -> Node:
        return self.server.node

    @property
    def peer(self) -> str:
        host, port = self.client_address[:2]
        return f"{host}:{port}"

    def dispatch(self, frame: Frame) -> list[bytes]:
        handler = getattr(self, f"do_{frame.command}", None)
        if handler is None:
            raise FrameError(f"unknown command /{frame.command}")
        return handler(frame.payload)

    def do_PING(self, payload: dict[str, Any]) -> list[bytes]:
        return [encode_frame("OK", {"node": self.node.number})]

    def do_NEW(self, payload: dict[str, Any]) -> list[bytes]:
        text = message_text(payload)
        relays = positive_int(payload, "relays", MAX_RELAYS)
        with self.server.lock:
            message_id, sends = self.node.submit(text, relays)
        self.server.deliver(sends)
        log.info("node %d: new message %s (%d bytes)", self.node.number, message_id, len(text))
        return [encode_frame("OK", {"id": message_id, "max_bytes": MAX_MESSAGE_BYTES})]

    def do_RELAY(self, payload: dict[str, Any]) -> list[bytes]:
        message_id = field(payload, "id", str)
        if not 0 < len(message_id) <= 64:
            raise FrameError("field 'id' must be 1 to 64 characters")
        text = message_text(payload)
        path = path_field(payload)
        relays = positive_int(payload, "relays", MAX_RELAYS)
        sent = float(field(payload, "sent", int | float))
        with self.server.lock:
            sends = self.node.relay(message_id, text, path, relays, sent)
        self.server.deliver(sends)
        return [encode_frame("OK")]

    def do_GET(self, payload: dict[str, Any]) -> list[bytes]:
        which = payload.get("which", "all")
        if which not in READ_FILTERS:
            raise FrameError(f"field 'which' must be one of {', '.join(READ_FILTERS)}")
        peek = payload.get("peek", False)
        if not isinstance(peek, bool):
            raise FrameError("field 'peek' must be true or false")
        with self.server.lock:
            views = self.node.read(which, mark=not peek)
        frames = [encode_frame("MSG", message_payload(view)) for view in views]
        return [*frames, encode_frame("OK", {"node": self.node.number, "count": len(views)})]

    def do_PEERS(self, payload: dict[str, Any]) -> list[bytes]:
        with self.server.lock:
            peers = [[n, host, port] for n, (host, port) in sorted(self.node.peers.items())]
        return [encode_frame("OK", {"node": self.node.number, "peers": peers})]

    def do_LEAVE(self, payload: dict[str, Any]) -> list[bytes]:
        number = positive_int(payload, "node", 1 << 31)
        with self.server.lock:
            dropped = self.node.drop_peer(number)
        if dropped:
            log.info("node %d: peer %d left", self.node.number, number)
        return [encode_frame("OK", {"dropped": dropped})]

    def do_CONNECT(self, payload: dict[str, Any]) -> list[bytes]:
        number, address = address_fields(payload)
        with self.server.lock:
            accepted = self.node.accept_link(number, address)
        log.info(
            "node %d: link request from %d %s",
            self.node.number,
            number,
            "accepted" if accepted else "refused",
        )
        return [encode_frame("OK", {"accepted": accepted})]

    def do_INTRODUCE(self, payload: dict[str, Any]) -> list[bytes]:
        number, address = address_fields(payload)
        with self.server.lock:
            plan = self.node.plan_link(number)
        if plan is not Link.TRY:
            return [encode_frame("OK", {"result": plan.value})]
        me = self.server.server_address
        request = encode_frame("CONNECT", {"node": self.node.number, "host": me[0], "port": me[1]})
        try:
            accepted = bool(call_peer(address, request).get("accepted"))
        except GossipError as exc:
            log.warning("node %d: could not reach %d to link: %s", self.node.number, number, exc)
            accepted = False
        with self.server.lock:
            self.node.finish_link(number, address, accepted)
        return [encode_frame("OK", {"result": "linked" if accepted else "refused"})]

    def do_REMOVE(self, payload: dict[str, Any]) -> list[bytes]:
        """Leave the network: say goodbye to every peer, then introduce them to each other."""
        with self.server.lock:
            peers, plan = self.node.leave()
        heard = farewell(self.node.number, peers, timeout=PEER_TIMEOUT)
        links = introduce(peers, plan, timeout=PEER_TIMEOUT)
        log.info(
            "node %d: left the network; former peers %s, %s heard the goodbye; new links %s",
            self.node.number,
            sorted(peers),
            sorted(heard),
            links,
        )
        return [
            encode_frame(
                "OK", {"node": self.node.number, "former_peers": sorted(peers), "links": links}
            )
        ]
