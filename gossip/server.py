"""A node's TCP server: thin I/O around ``gossip.node.Node``.

One ``ThreadingTCPServer`` per node process. Each connection opens with the node's
hello and may carry several request frames, each sealed (``gossip.auth``); each gets its
reply frames. Every wait on a client is bounded, and so is the number of connections
served at once. Frames for other nodes go out from a
small thread pool, so a slow or dead peer never holds up the others or the sender,
and how each went is reported back to the node. A housekeeping thread gives the node
the time every ``TICK`` seconds and carries out what it decides: pings, walks, joins
and catch-up rounds.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from gossip.auth import MAX_LINE_BYTES, AuthError, Channel
from gossip.client import GossipClient, NodeUnreachable, farewell, introduce
from gossip.digest import BUCKETS
from gossip.errors import GossipError
from gossip.links import PeerLink
from gossip.node import (
    MAX_LISTED_IDS,
    MAX_TRADED,
    SEEK_HOPS,
    WALK_HOPS,
    Address,
    CatchUp,
    Link,
    Node,
    Send,
)
from gossip.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_RELAYS,
    READ_FILTERS,
    Frame,
    FrameError,
    LineBuffer,
    address_fields,
    encode_frame,
    field,
    id_list,
    int_list,
    message_id_field,
    message_payload,
    message_text,
    positive_int,
    relay_fields,
)
from gossip.store import Store, StoreError

PEER_TIMEOUT = 2.0
"""Seconds to connect to and hear back from a peer before giving up on that frame."""

TICK = 0.1
"""Seconds between the housekeeping thread's looks at the clock."""

LINKED = frozenset({"RELAY", "PING", "WALK", "SYNC", "SEEK", "FOUND"})
"""What a node sends its peers over their long-lived links."""

MAX_CONNECTIONS = 64
"""Connections a node serves at once; more are turned away. A node needs a few: its
peers' links, their one-off requests, and clients."""

IDLE_TIMEOUT = 60.0
"""Seconds a connection may wait between frames before the node closes it."""

FRAME_TIMEOUT = 10.0
"""Seconds a frame may take to arrive once it has begun: a sender trickling bytes is cut off."""

WRITE_TIMEOUT = 10.0
"""Seconds a reply may take to go out: a client that stops reading is cut off."""

RECV_BYTES = 65536

log = logging.getLogger("gossip.node")


class GossipServer(socketserver.ThreadingTCPServer):
    """Holds the node state, its lock, its store, and the pool that carries frames out."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128
    idle_timeout = IDLE_TIMEOUT
    frame_timeout = FRAME_TIMEOUT
    write_timeout = WRITE_TIMEOUT

    def __init__(
        self, node: Node, address: Address, store: Store | None = None, key: bytes | None = None
    ) -> None:
        self.node = node
        self.store = store
        self.key = key
        """The network's secret: every frame in or out is sealed with it (None: --insecure)."""
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.turned_away = 0
        self.last_busy_log = 0.0
        self.last_store_log = 0.0
        self.lock = threading.Lock()
        self.outbox = ThreadPoolExecutor(max_workers=8, thread_name_prefix="send")
        self.closing = threading.Event()
        self.links: dict[int, PeerLink] = {}
        self.links_lock = threading.Lock()
        super().__init__(address, Handler)
        if node.address[1] == 0:
            node.address = self.server_address[:2]

    @contextlib.contextmanager
    def changing(self, durable: bool = False, defer: bool = False) -> Iterator[Node]:
        """The node, locked; what it wrote down is committed when the block ends.

        ``durable`` also waits for the disk (a client's new message). ``defer`` leaves
        the commit to the next housekeeping tick, a tenth of a second later: relayed
        copies are the hot path, and one a crash loses then, catch-up brings back.
        """
        with self.lock:
            try:
                yield self.node
            finally:
                if not defer:
                    self.commit()

    def commit(self, durable: bool = False) -> None:
        """Commit what the node wrote down. Only a durable commit (a client's message)
        reports a failure; others are logged: the node keeps serving from memory, and
        what a restart would miss, catch-up brings back. Hold the lock."""
        if self.store is None:
            return
        try:
            self.store.commit(durable)
        except StoreError as exc:
            if durable:
                raise
            now = time.monotonic()
            if now - self.last_store_log >= 1.0:
                self.last_store_log = now
                log.error("node %d: could not write to its store: %s", self.number, exc)

    def keep_house(self, go: Any) -> None:
        """Once ``go`` is set (every node of the network listens), act on the node's chores.

        Waiting for the whole network keeps a node from counting a neighbour that is
        still starting as dead.
        """
        go.wait()
        while not self.closing.wait(TICK):
            with self.changing() as node:  # also commits what relays deferred
                chores = node.tick(time.time())
            for chore in chores:
                if isinstance(chore, CatchUp):
                    self.outbox.submit(self._catch_up, chore)
                else:
                    self.deliver([chore])
            self._tend_links()

    def deliver(self, sends: list[Send]) -> list[Future[bool]]:
        """Send each frame; each future says whether it arrived.

        Frames for a current peer go on its long-lived link; the rest (a link request
        to a walk's origin, a join, a goodbye to a dropped peer) on a connection of
        their own, from the pool.
        """
        if self.closing.is_set():
            return []
        futures = []
        for send in sends:
            link = self._link(send)
            if link is None:
                futures.append(self.outbox.submit(self._deliver_one, send))
                continue
            arrived: Future[bool] = Future()
            link.submit(send).add_done_callback(
                lambda reply, send=send, arrived=arrived: arrived.set_result(
                    self._settle(send, reply.result(), counted=False)
                )
            )
            futures.append(arrived)
        return futures

    def _link(self, send: Send) -> PeerLink | None:
        """The link to carry ``send``, opened if need be; None if it is not for a peer."""
        if send.kind not in LINKED or self.node.peers.get(send.peer) != send.address:
            return None
        with self.links_lock:
            link = self.links.get(send.peer)
            if link is None or link.address != send.address:
                if link is not None:
                    link.close()
                link = PeerLink(
                    send.address, self.key, lambda peer=send.peer: self._unreachable(peer)
                )
                self.links[send.peer] = link
            return link

    def _unreachable(self, peer: int) -> None:
        with self.changing() as node:
            self._log_death(peer, node.missed(peer, time.time()), "its link broke or refused")

    def _tend_links(self) -> None:
        """Close the links of nodes that are no longer peers; break those owing replies."""
        now = time.monotonic()
        with self.lock:
            peers = dict(self.node.peers)
        with self.links_lock:
            gone = [n for n, link in self.links.items() if peers.get(n) != link.address]
            stale = [self.links.pop(n) for n in gone]
            live = list(self.links.values())
        for link in stale:
            link.close()
        for link in live:
            link.check(now)

    def _deliver_one(self, send: Send) -> bool:
        refused = False
        try:
            reply: dict[str, Any] | None = self.call(send.address, send.frame)[-1].payload
        except NodeUnreachable as exc:
            reply, refused = None, exc.refused
            log.warning(
                "node %d: /%s to node %d failed: %s", self.number, send.kind, send.peer, exc
            )
        except GossipError as exc:
            reply = {}
            log.warning("node %d: node %d refused /%s: %s", self.number, send.peer, send.kind, exc)
        return self._settle(send, reply, refused=refused)

    def _settle(
        self,
        send: Send,
        reply: dict[str, Any] | None,
        counted: bool = True,
        refused: bool = False,
    ) -> bool:
        """Tell the node how a send went (``reply`` None: it did not arrive); whether it did."""
        with self.changing() as node:
            if reply is not None:
                follow_up = node.sent(send, reply, time.time())
            else:
                goodbye = node.failed(send, time.time(), counted, refused)
        if reply is not None:
            self.deliver(follow_up)
            return True
        self._log_death(send.peer, bool(goodbye), f"/{send.kind} did not arrive")
        self.deliver(goodbye)
        return False

    def _log_death(self, peer: int, dropped: bool, why: str) -> None:
        if dropped:
            log.warning("node %d: peer %d is dead (%s); dropped it", self.number, peer, why)

    def _catch_up(self, chore: CatchUp) -> None:
        """One catch-up round with a peer: compare digests, then pull and push what differs.

        Best effort: a round that fails says nothing of the peer's health (its link does).
        """
        peer = GossipClient(chore.address, self.key, PEER_TIMEOUT, f"node {chore.peer}")
        try:
            with self.lock:
                sync = encode_frame("SYNC", {"total": self.node.digest.total})
            send = Send(chore.peer, chore.address, sync, "SYNC")
            link = self._link(send)
            reply = link.request(send, PEER_TIMEOUT) if link else peer.exchange(sync)[-1].payload
            if reply is None or reply.get("same") is not False:
                return  # the same messages (almost always), or a link that says why not
            theirs = reply.get("buckets")
            with self.lock:
                buckets = self.node.digest.differing(theirs if isinstance(theirs, list) else [])
            pulled, pushed, after = 0, 0, ""
            while pulled + pushed < MAX_TRADED:
                request = {"buckets": buckets, "after": after}
                listing = peer.request("IDS", request)[-1].payload
                ids = id_list(listing, "ids", MAX_LISTED_IDS)
                complete = listing.get("complete") is True or not ids
                budget = MAX_TRADED - pulled - pushed
                with self.lock:
                    lack, extra = self.node.compare(ids, complete, buckets, time.time(), after)
                    lack = lack[:budget]
                    gifts = self.node.offer(extra[: budget - len(lack)], chore.peer)
                pulled += self._pull(peer, lack)
                for gift in gifts:
                    peer.request("RELAY", gift)
                pushed += len(gifts)
                if complete or ids[-1] <= after:
                    break  # the last page, or a peer that does not page: stop either way
                after = ids[-1]
            if pulled or pushed:
                log.info(
                    "node %d: caught up with node %d: pulled %d, pushed %d",
                    self.number,
                    chore.peer,
                    pulled,
                    pushed,
                )
        except (GossipError, FrameError) as exc:
            log.warning("node %d: catch-up with node %d failed: %s", self.number, chore.peer, exc)

    def _pull(self, peer: GossipClient, ids: list[str]) -> int:
        """Fetch these messages from a peer and take each as a copy it relayed; how many."""
        if not ids:
            return 0
        taken = 0
        for frame in peer.request("PULL", {"node": self.number, "ids": ids}):
            if frame.command == "COPY":
                with self.changing(defer=True) as node:
                    sends = node.relay(*relay_fields(frame.payload))
                self.deliver(sends)
                taken += 1
        return taken

    def call(self, address: Address, frame: bytes) -> list[Frame]:
        """Send one frame to another node; its reply frames. GossipError if that fails."""
        return GossipClient(address, self.key, PEER_TIMEOUT, "peer").exchange(frame)

    @property
    def number(self) -> int:
        return self.node.number

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, unless ``MAX_CONNECTIONS`` are open."""
        if not self.slots.acquire(blocking=False):
            self._turn_away(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _turn_away(self, request: Any) -> None:
        """Say why in one frame (if the socket takes it at once), close, log once a second."""
        busy = f"node {self.number} is busy: {MAX_CONNECTIONS} connections are open; try again"
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(encode_frame("ERR", {"error": busy}))
        self.shutdown_request(request)
        self.turned_away += 1
        now = time.monotonic()
        if now - self.last_busy_log >= 1.0:
            log.warning(
                "node %d: turned away %d connections: %s", self.number, self.turned_away, busy
            )
            self.turned_away, self.last_busy_log = 0, now

    def server_close(self) -> None:
        self.closing.set()
        with self.links_lock:
            links, self.links = list(self.links.values()), {}
        for link in links:
            link.close()
        super().server_close()
        self.outbox.shutdown(wait=False, cancel_futures=True)


class Handler(socketserver.BaseRequestHandler):
    """Greets the connection, then answers each request frame until the client closes.

    Every wait is bounded: for the next frame, for the rest of a frame, for a reply to
    go out; so a slow, silent or hostile client costs the node one thread for a while.
    """

    server: GossipServer
    request: socket.socket

    def handle(self) -> None:
        # Replies go out as they are ready, one small write each: no waiting on Nagle.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.channel, hello = Channel.for_node(self.server.key)
        self.lines = LineBuffer(MAX_LINE_BYTES)
        if not self._send(hello):
            return
        while (line := self._next_line()) is not None:
            try:
                frame = self.channel.receive(line)
            except AuthError as exc:
                self._refuse(str(exc), sealed=False)
                return  # nothing more from this sender can be trusted
            except FrameError as exc:
                self._refuse(str(exc))
                continue
            try:
                replies = self.dispatch(frame)
            except FrameError as exc:
                self._refuse(str(exc))
                continue
            except Exception as exc:
                self._refuse(f"/{frame.command} failed inside the node: {exc!r}")
                continue
            if not self._write(replies):
                return
            if frame.command == "REMOVE":
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return

    def _next_line(self) -> bytes | None:
        """The next line; None once the client closes, breaks a limit, or takes too long."""
        waiting = time.monotonic()
        begun: float | None = None
        while True:
            try:
                line = self.lines.next_line()
            except FrameError as exc:
                self._refuse(str(exc))
                return None
            if line is not None:
                return line
            now = time.monotonic()
            if self.lines.partial and begun is None:
                begun = now
            limits = self.server
            deadline = (
                waiting + limits.idle_timeout if begun is None else begun + limits.frame_timeout
            )
            try:
                self.request.settimeout(max(deadline - now, 0.001))
                data = self.request.recv(RECV_BYTES)
            except TimeoutError:
                if begun is not None:
                    self._refuse(f"a frame took over {limits.frame_timeout:g} s to arrive")
                return None  # an idle connection is closed without a word
            except OSError:
                return None
            if not data:
                if self.lines.partial:
                    self._log_refusal("connection closed in the middle of a frame")
                return None
            self.lines.feed(data)

    def _write(self, frames: list[bytes]) -> bool:
        """Seal and send reply frames; False if the client did not take them in time."""
        return self._send(b"".join(self.channel.send(f) for f in frames))

    def _send(self, data: bytes) -> bool:
        try:
            self.request.settimeout(self.server.write_timeout)
            self.request.sendall(data)
        except TimeoutError:
            log.warning(
                "node %d: closed the connection from %s: it stopped reading its replies",
                self.server.number,
                self.peer,
            )
            return False
        except OSError:
            return False
        return True

    def _refuse(self, reason: str, sealed: bool = True) -> None:
        """Log the refusal and answer ``/ERR``, bare if the sender could not be trusted."""
        self._log_refusal(reason)
        error = encode_frame("ERR", {"error": reason})
        self._send(self.channel.send(error) if sealed else error)

    def _log_refusal(self, reason: str) -> None:
        log.warning("node %d: refused a frame from %s: %s", self.server.number, self.peer, reason)

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
        reply: dict[str, Any] = {"node": self.server.number}
        if "node" in payload:
            asker = positive_int(payload, "node", 1 << 31)
            with self.server.lock:
                node = self.server.node
                reply["peer"] = asker in node.peers or asker in node.pending
                node.heard_from(asker, time.time())
        return [encode_frame("OK", reply)]

    def do_NEW(self, payload: dict[str, Any]) -> list[bytes]:
        """Store the message durably, then answer once a peer holds it too.

        So a message the client saw accepted survives this node dying at once: it is on
        this node's disk, and with a peer that is already passing it on. A message that
        cannot be stored is forgotten and refused, so it never spreads. If no peer takes
        it, the answer says it is ``held``: on disk here, to spread by catch-up once the
        node has a peer again. A retry with the same ``id`` is the same message.
        """
        text = message_text(payload)
        relays = positive_int(payload, "relays", MAX_RELAYS)
        chosen = message_id_field(payload, "id") if payload.get("id") is not None else None
        server = self.server
        with server.lock:
            node = server.node
            if chosen is not None and chosen in node.messages:
                node.submit(text, relays, chosen)  # refuses an id taken by another text
                return [encode_frame("OK", {"id": chosen, "duplicate": True})]
            message_id, sends = node.submit(text, relays, chosen)
            try:
                server.commit(durable=True)
            except StoreError as exc:
                node.discard(message_id)
                log.error("node %d: refused a message it could not store: %s", server.number, exc)
                raise FrameError(
                    f"node {server.number} could not store the message ({exc}), so it was not "
                    "sent: free some disk space and send it again"
                ) from None
        pending = set(server.deliver(sends))
        reached = 0
        while pending and not reached:
            done, pending = wait(pending, timeout=PEER_TIMEOUT, return_when=FIRST_COMPLETED)
            if not done:
                break
            reached += sum(f.result() for f in done)
        log.info(
            "node %d: new message %s (%d bytes)%s",
            server.number,
            message_id,
            len(text),
            "" if reached else ", held: no peer took it",
        )
        reply = {"id": message_id, "max_bytes": MAX_MESSAGE_BYTES, "held": not reached}
        return [encode_frame("OK", reply)]

    def do_RELAY(self, payload: dict[str, Any]) -> list[bytes]:
        fields = relay_fields(payload)
        with self.server.changing(defer=True) as node:
            sends = node.relay(*fields)
        self.server.deliver(sends)
        return [encode_frame("OK")]

    def do_GET(self, payload: dict[str, Any]) -> list[bytes]:
        which = payload.get("which", "all")
        if which not in READ_FILTERS:
            raise FrameError(f"field 'which' must be one of {', '.join(READ_FILTERS)}")
        peek = payload.get("peek", False)
        if not isinstance(peek, bool):
            raise FrameError("field 'peek' must be true or false")
        with self.server.changing() as node:
            views = node.read(which, mark=not peek)
        frames = [encode_frame("MSG", message_payload(view)) for view in views]
        return [*frames, encode_frame("OK", {"node": self.server.number, "count": len(views)})]

    def do_PEERS(self, payload: dict[str, Any]) -> list[bytes]:
        with self.server.lock:
            peers = [[n, host, port] for n, (host, port) in sorted(self.server.node.peers.items())]
        return [encode_frame("OK", {"node": self.server.number, "peers": peers})]

    def do_STATUS(self, payload: dict[str, Any]) -> list[bytes]:
        with self.server.lock:
            status = self.server.node.status()
        return [encode_frame("OK", status)]

    def do_LEAVE(self, payload: dict[str, Any]) -> list[bytes]:
        number = positive_int(payload, "node", 1 << 31)
        with self.server.changing() as node:
            dropped = node.drop_peer(number)
        if dropped:
            log.info("node %d: peer %d left", self.server.number, number)
        return [encode_frame("OK", {"dropped": dropped})]

    def do_CONNECT(self, payload: dict[str, Any]) -> list[bytes]:
        number, address = address_fields(payload)
        with self.server.changing() as node:
            accepted = node.accept_link(number, address)
        log.info(
            "node %d: link request from %d %s",
            self.server.number,
            number,
            "accepted" if accepted else "refused",
        )
        return [encode_frame("OK", {"accepted": accepted})]

    def do_INTRODUCE(self, payload: dict[str, Any]) -> list[bytes]:
        number, address = address_fields(payload)
        with self.server.lock:
            plan = self.server.node.plan_link(number)
        if plan is not Link.TRY:
            return [encode_frame("OK", {"result": plan.value})]
        try:
            reply = self.server.call(address, self.server.node.connect_frame())[-1].payload
            accepted = reply.get("accepted") is True
        except GossipError as exc:
            log.warning("node %d: could not reach %d to link: %s", self.server.number, number, exc)
            accepted = False
        with self.server.changing() as node:
            node.finish_link(number, address, accepted)
        return [encode_frame("OK", {"result": "linked" if accepted else "refused"})]

    def do_WALK(self, payload: dict[str, Any]) -> list[bytes]:
        origin, address = address_fields(payload)
        hops = positive_int(payload, "hops", WALK_HOPS)
        visited = int_list(payload, "visited", WALK_HOPS)
        any_slot = field(payload, "any", bool)
        with self.server.changing() as node:
            sends = node.walk(origin, address, hops, visited, any_slot)
        self.server.deliver(sends)
        return [encode_frame("OK")]

    def do_MERGE(self, payload: dict[str, Any]) -> list[bytes]:
        """A peer this node lost for silence is back (a cut network healed): link again."""
        number, address = address_fields(payload)
        with self.server.changing() as node:
            accepted, orphan = node.accept_merge(number, address)
        log.info(
            "node %d: lost peer %d is back; %s%s",
            self.server.number,
            number,
            "linked again" if accepted else "no room to link",
            f", letting go of {orphan[0]} for it to pair up" if orphan else "",
        )
        let_go = [orphan[0], *orphan[1]] if orphan else None
        return [encode_frame("OK", {"accepted": accepted, "orphan": let_go})]

    def do_JOIN(self, payload: dict[str, Any]) -> list[bytes]:
        """Take in a node that has no peers, handing it one of this node's links if need be."""
        newcomer, address = address_fields(payload)
        prefer = int_list(payload, "prefer", 64)
        slots = field(payload, "slots", int)
        with self.server.changing() as node:
            splice = node.plan_join(newcomer, address, prefer, slots)
        if splice is None:
            return [encode_frame("OK", {"peers": []})]
        swapped = False
        if splice.partner is not None and splice.address is not None:
            host, port = address
            swap = {"old": self.server.number, "node": newcomer, "host": host, "port": port}
            try:
                reply = self.server.call(splice.address, encode_frame("SWAP", swap))[-1].payload
                swapped = reply.get("accepted") is True
            except GossipError as exc:
                log.warning("node %d: swap with %d failed: %s", self.server.number, newcomer, exc)
        with self.server.changing() as node:
            linked = node.finish_join(newcomer, address, splice, swapped)
        log.info("node %d: took in node %d, now linked to %s", self.server.number, newcomer, linked)
        peers = [[n, host, port] for n, (host, port) in linked]
        return [encode_frame("OK", {"peers": peers})]

    def do_SWAP(self, payload: dict[str, Any]) -> list[bytes]:
        old = positive_int(payload, "old", 1 << 31)
        new, address = address_fields(payload)
        merge = payload.get("merge") is True
        with self.server.changing() as node:
            accepted = node.swap(old, new, address, remember=merge)
        return [encode_frame("OK", {"accepted": accepted})]

    def do_SEEK(self, payload: dict[str, Any]) -> list[bytes]:
        """Someone looks for a node it lost: say so if it is this node's peer, else pass on."""
        seek = message_id_field(payload, "seek")
        target = positive_int(payload, "target", 1 << 31)
        origin, address = address_fields(payload)
        hops = positive_int(payload, "hops", SEEK_HOPS)
        with self.server.lock:
            sends = self.server.node.seek(seek, target, origin, address, hops)
        self.server.deliver(sends)
        return [encode_frame("OK")]

    def do_FOUND(self, payload: dict[str, Any]) -> list[bytes]:
        seek = message_id_field(payload, "seek")
        target = positive_int(payload, "target", 1 << 31)
        with self.server.changing() as node:
            node.found(seek, target)
        return [encode_frame("OK")]

    def do_SYNC(self, payload: dict[str, Any]) -> list[bytes]:
        theirs = field(payload, "total", str)
        with self.server.lock:
            digest = self.server.node.digest
            if digest.total == theirs:
                return [encode_frame("OK", {"same": True})]
            return [encode_frame("OK", {"same": False, "buckets": digest.bucket_hashes()})]

    def do_IDS(self, payload: dict[str, Any]) -> list[bytes]:
        buckets = int_list(payload, "buckets", BUCKETS)
        after = payload.get("after", "")
        if not isinstance(after, str) or len(after) > 64:
            raise FrameError("field 'after' must be a message id or empty")
        with self.server.lock:
            ids, complete = self.server.node.settled_ids(buckets, time.time(), after)
        return [encode_frame("OK", {"ids": ids, "complete": complete})]

    def do_PULL(self, payload: dict[str, Any]) -> list[bytes]:
        asker = positive_int(payload, "node", 1 << 31)
        ids = id_list(payload, "ids", MAX_LISTED_IDS)
        with self.server.lock:
            gifts = self.server.node.offer(ids, asker)
        return [*(encode_frame("COPY", g) for g in gifts), encode_frame("OK")]

    def do_REMOVE(self, payload: dict[str, Any]) -> list[bytes]:
        """Leave the network: say goodbye to every peer, then introduce them to each other."""
        with self.server.changing() as node:
            peers, plan = node.leave()
        if payload.get("introduce") is False:
            plan = []  # the command line plans the new links against the whole network
        heard = farewell(self.server.number, peers, self.server.key, PEER_TIMEOUT)
        links = introduce(peers, plan, self.server.key, PEER_TIMEOUT)
        log.info(
            "node %d: left the network; former peers %s, %s heard the goodbye; new links %s",
            self.server.number,
            sorted(peers),
            sorted(heard),
            links,
        )
        return [
            encode_frame(
                "OK", {"node": self.server.number, "former_peers": sorted(peers), "links": links}
            )
        ]
