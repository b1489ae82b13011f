"""A node's TCP server: thin I/O around the sans-IO core (``gossip.answers``).

One ``ThreadingTCPServer`` per node process. Each connection opens with the node's
hello and may carry several request frames, each sealed (``gossip.auth``); each gets the
reply frames of the node's ``Answer``. Every wait on a client is bounded, and so is the
number of connections served at once. Frames for other nodes go out from a small thread
pool or a peer's long-lived connection, so a slow or dead peer never holds up the others
or the sender, and how each went is reported back to the node. A housekeeping thread
gives the node the time every ``Timing.tick`` and carries out what it decides: pings,
walks, joins, searches and catch-up rounds. What is decided here is only I/O: which
socket carries a frame, how long to wait, and when to commit the store.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from gossip.answers import Answer, answer
from gossip.auth import MAX_LINE_BYTES, AuthError, Channel
from gossip.catchup import Round
from gossip.client import GossipClient, NodeUnreachable
from gossip.collection import held_off
from gossip.commands import OVER_CONNECTION, RELAYING, Command
from gossip.conditions import Conditions
from gossip.connections import PeerConnection, Reply, refusal, taken
from gossip.delays import Delayer
from gossip.errors import GossipError
from gossip.node import Node
from gossip.protocol import Frame, FrameError, LineBuffer, encode_frame, relay_id, unawaited
from gossip.sends import Address, CatchUp, Send, batched
from gossip.store import Store, StoreError

MAX_CONNECTIONS = 64
"""Connections a node serves at once; more are turned away. A node needs a few: its
peers' connections, their one-off requests, and clients."""
SLOT_WAIT = 1.0
"""Seconds a new connection waits for the slot of a silent one the node hung up on."""

BATCHED = frozenset({Command.RELAY, Command.RELAYS, Command.NEW})
"""Requests taken a run at a time when one read brings several (``/RELAY`` and ``/RELAYS``
in one run)."""

LISTINGS = frozenset({Command.GET, Command.PULL})
"""Requests answered with a listing of many messages: made with the collector held off
(``gossip.collection``)."""

WAITING_BYTES = 65536
"""Copies that can wait a connection holds back at most, in bytes (a frame's worth): lines
held are not checked yet, so whoever can reach the port may fill this much."""

RECV_BYTES = 65536
FLUSH_BYTES = 65536
"""Replies that go out before the rest of their batch is ready: a frame's worth."""

log = logging.getLogger("gossip.node")


class Waitable(Protocol):
    """What housekeeping waits on before its first look: the supervisor's go-ahead (a
    ``multiprocessing`` event, shared by every node it forks), or a thread's event."""

    def wait(self, timeout: float | None = None) -> bool: ...


class GossipServer(socketserver.ThreadingTCPServer):
    """Holds the node state, its lock, its store, and the pool that carries frames out."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, node: Node, address: Address, store: Store | None = None, key: bytes | None = None
    ) -> None:
        self.node = node
        self.store = store
        self.key = key
        """The network's secret: every frame in or out is sealed with it (None: --insecure)."""
        self.timing = node.timing
        self.idle_timeout = node.timing.idle_timeout
        self.frame_timeout = node.timing.frame_timeout
        self.write_timeout = node.timing.write_timeout
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.silent: dict[socket.socket, None] = {}
        """Connections that have sent no frame the node could read yet, oldest first: when
        every slot is taken, the oldest of them makes room, so connections opened and left
        silent (no secret needed for that) cannot shut clients and peers out for the whole
        idle timeout."""
        self.silent_lock = threading.Lock()
        self.turned_away = 0
        self.last_busy_log = 0.0
        self.last_store_log = 0.0
        self.lock = threading.Lock()
        """Held while the node decides: every call on the node, never across a wait."""
        self.outbox = ThreadPoolExecutor(max_workers=8, thread_name_prefix="send")
        self.closing = threading.Event()
        self.wake = threading.Event()
        """Set when the node may have a chore due sooner than housekeeping planned."""
        self.next_look = 0.0
        """When housekeeping plans to look at the clock next."""
        self.acks: dict[int, tuple[Send, float]] = {}
        """Each peer's latest acknowledged copy since the node last heard, and when: a link's
        reader notes it without the node's lock (a flood acknowledges copies by the
        thousand), and housekeeping tells the node (``Node.sent``) under it."""
        self.connections: dict[int, PeerConnection] = {}
        self.connections_lock = threading.Lock()
        self.rng = random.Random()
        """Draws the network's losses and jitter."""
        self.delayer: Delayer | None = None
        """Holds frames back while a delay is in force (started with the first)."""
        super().__init__(address, Handler)
        if node.address[1] == 0:
            node.address = self.server_address[:2]

    @contextlib.contextmanager
    def changing(self, defer: bool = False) -> Iterator[Node]:
        """The node, locked; what it wrote down is committed when the block ends, unless
        ``defer``: then the next housekeeping tick commits it (call ``commit_soon`` once
        what the change sends is out)."""
        with self.lock:
            try:
                yield self.node
            finally:
                if not defer:
                    self.commit()
                    if self.node.next_due() < self.next_look:
                        self.next_look = 0.0
                        self.wake.set()

    def commit_soon(self) -> None:
        """Bring housekeeping's next look to a tick away, so what a deferred change wrote
        down is committed within a tick. Called after the change's copies went out: the
        woken housekeeping takes the interpreter from the thread that sends them."""
        soon = time.time() + self.timing.tick
        if self.next_look > soon:
            self.next_look = soon
            self.wake.set()

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

    def respond(self, frame: Frame) -> Answer:
        """Carry out the node's answer to one frame (not one ``BATCHED``: those go a run at
        a time to ``relay_all`` or ``submit_all``); the last answer holds the replies.

        FrameError if the frame breaks the rules.
        """
        with self.changing():
            reply = answer(self.node, frame, time.time())
        while True:
            if reply.note:
                log.info("node %d: %s", self.number, reply.note)
            self.deliver(list(reply.sends))
            if reply.then is None:
                return reply
            replies = [self._ask(call) for call in reply.calls]
            with self.changing():
                reply = reply.then(replies)

    def submit_all(self, frames: list[Frame]) -> list[Answer | FrameError]:
        """Clients' messages that came together (``/NEW``): on the disk with one commit for
        all (a group commit), their copies sent together, each answered once a peer took
        one of its copies, or none did in time. For each, its answer or why it was refused.
        """
        with self.lock:
            now = time.time()
            outcomes = [self._answer(frame, now) for frame in frames]
            stored = [o.stored for o in outcomes if isinstance(o, Answer) and o.stored]
            try:
                self.commit(durable=bool(stored))
            except StoreError as exc:
                for message_id in stored:
                    self.node.messages.discard(message_id)
                if self.store is not None:
                    self.store.forget(stored)
                log.error("node %d: refused messages it could not store: %s", self.number, exc)
                refusal = FrameError(
                    f"node {self.number} could not store the message ({exc}), so it was not "
                    "sent: free some disk space and send it again"
                )
                # All of the run, a retry of one of its messages too: nothing of it is stored.
                outcomes = [refusal if isinstance(o, Answer) else o for o in outcomes]
        sends = [s for o in outcomes if isinstance(o, Answer) for s in o.sends]
        arrivals = iter(self.deliver(sends, wait=True))
        waits = [
            [next(arrivals) for _ in o.sends] if isinstance(o, Answer) else [] for o in outcomes
        ]
        deadline = time.monotonic() + self.timing.peer_timeout
        reached = [self._any_arrived(w, deadline) for w in waits]
        with self.lock:
            outcomes = [
                o.acked(r) if isinstance(o, Answer) and o.acked else o
                for o, r in zip(outcomes, reached, strict=True)
            ]
        for outcome in outcomes:
            if isinstance(outcome, Answer) and outcome.note:
                log.info("node %d: %s", self.number, outcome.note)
        return outcomes

    def _any_arrived(self, arrivals: list[Future[Reply]], deadline: float) -> bool:
        """Wait until a peer took one of these sends (True), all failed or were refused, or
        the deadline passed. A refused copy (a peer holding the id with another text) is not
        on its way."""
        pending = set(arrivals)
        while pending:
            done, pending = wait(
                pending, timeout=max(deadline - time.monotonic(), 0), return_when=FIRST_COMPLETED
            )
            if not done:
                return False
            if any(taken(f.result()) for f in done):
                return True
        return False

    def relay_all(self, frames: list[Frame]) -> list[FrameError | None]:
        """Relayed copies that came together: taken under one hold of the lock and passed
        on together, each peer's in as few frames as fit (``batched``; not under the lab's
        conditions, which lose or delay a frame as one copy). For each, None, or why it was
        refused.

        The path every copy takes, so it does only what a copy needs: what the copies
        wrote down is committed at housekeeping's next look (within ``Timing.rest``), and
        housekeeping is woken only for copies held for a strategy's next round. A commit
        or a catch-up round brought forward by each message cost every node a wake-up and
        a commit per message, in the middle of the next message's spread.
        """
        node = self.node
        with self.lock:
            now = time.time()
            outcomes = [self._answer(frame, now) for frame in frames]
            sends = [s for o in outcomes if isinstance(o, Answer) for s in o.sends]
            if sends:
                if not node.conditions.active:
                    sends = batched(sends)
                peers, conditions = self._sending(sends)
            wake = node.round_due() < self.next_look
        if sends and not self.closing.is_set():
            self._dispatch(sends, peers, conditions)
        if wake:
            self.commit_soon()
        return [o if isinstance(o, FrameError) else None for o in outcomes]

    def _answer(self, frame: Frame, now: float) -> Answer | FrameError:
        """The core's answer to one frame of a run, or why it was refused. Hold the lock."""
        try:
            return answer(self.node, frame, now)
        except FrameError as exc:
            return exc
        except Exception as exc:
            return failed_inside(frame, exc)

    def _ask(self, call: Send) -> dict[str, Any] | None:
        """Make one request the answer waits on; the reply, or None if it failed."""
        with self.lock:
            self.node.counters.sent([call])
        if not self._hold(call):
            return None
        try:
            return self.call(call.address, call.frame)[-1].payload
        except GossipError as exc:
            log.warning(
                "node %d: /%s to node %d failed: %s", self.number, call.kind, call.peer, exc
            )
            return None

    def keep_house(self, go: Waitable) -> None:
        """Once ``go`` is set (every node of the network listens), act on the node's chores.

        Waiting for the whole network keeps a node from counting a neighbour that is
        still starting as dead.
        """
        go.wait()
        timing = self.timing
        while not self.closing.is_set():
            self.wake.clear()
            with self.lock:
                self._learn_acks()
                now = time.time()
                chores = self.node.tick(now)
                self.commit()  # what relays deferred
                wait = min(max(self.node.next_due() - now, timing.tick), timing.rest)
                self.next_look = now + wait
            for chore in chores:
                if isinstance(chore, CatchUp):
                    self.outbox.submit(self._catch_up, chore)
                else:
                    self.deliver([chore])
            self._tend_connections()
            self._rest_until_next_look()

    def _rest_until_next_look(self) -> None:
        """Sleep until ``next_look``, which a change may bring forward (and wakes us to
        see): a flood of relays brings it to a tick away once, not to now each time."""
        while not self.closing.is_set():
            left = self.next_look - time.time()
            if left <= 0:
                return
            self.wake.wait(left)
            self.wake.clear()

    def deliver(self, sends: list[Send], wait: bool = False) -> list[Future[Reply]]:
        """Send each frame. With ``wait``, a future for each holds its reply (None: it did
        not arrive); without, how each went only goes to the node. Call without the lock.

        Frames for a current peer go on its long-lived connection, all of a batch at once;
        the rest (a link request to a walk's origin, a join, a goodbye to a dropped peer)
        on a connection of their own, from the pool.
        """
        if self.closing.is_set() or not sends:
            return [_settled_future(None) for _ in sends] if wait else []
        with self.lock:
            peers, conditions = self._sending(sends)
        return self._dispatch(sends, peers, conditions, wait)

    def _sending(self, sends: list[Send]) -> tuple[dict[int, Address], Conditions]:
        """Count ``sends`` as sent; the peers and the conditions they go under. Hold the
        lock (a run of relays does this in the hold that decided them)."""
        self.node.counters.sent(sends)
        return dict(self.node.peers), self.node.conditions

    def _dispatch(
        self,
        sends: list[Send],
        peers: dict[int, Address],
        conditions: Conditions,
        wait: bool = False,
    ) -> list[Future[Reply]]:
        """``deliver``, once ``_sending`` counted them. Call without the lock."""
        if conditions.active:
            if wait:
                return self._deliver_held(conditions, sends, peers)
            sends = self._impose(conditions, sends)
        return self._carry(sends, peers, wait)

    def _carry(
        self, sends: list[Send], peers: dict[int, Address] | None, wait: bool = False
    ) -> list[Future[Reply]]:
        """Hand each frame to its connection (``deliver``, once conditions are imposed)."""
        if self.closing.is_set():
            return [_settled_future(None) for _ in sends] if wait else []
        if peers is None:
            with self.lock:
                peers = dict(self.node.peers)
        futures: list[Future[Reply]] = []
        batches: dict[int, tuple[PeerConnection, list[Send]]] = {}
        # Each peer's connection, looked up once for a run of its copies.
        found: dict[tuple[int, Address, str], PeerConnection | None] = {}
        for send in sends:
            key = (send.peer, send.address, send.kind)
            if key in found:
                connection = found[key]
            else:
                connection = found[key] = self._connection(send, peers)
            if connection is None:
                futures.append(self.outbox.submit(self._deliver_one, send))
            elif wait:
                futures.append(connection.submit(send))
            else:
                batches.setdefault(id(connection), (connection, []))[1].append(send)
        for connection, batch in batches.values():
            connection.submit_all(batch)
        return futures

    def _impose(self, conditions: Conditions, sends: list[Send]) -> list[Send]:
        """The network's conditions on frames sent without waiting: the ones to send now.

        A frame across a partition fails as one to a dead peer would; a lost one is never
        heard of again; a delayed one goes out later, from the delayer's thread.
        """
        now: list[Send] = []
        for send in sends:
            delay = conditions.fate(self.number, send, self.rng)
            if delay is None:
                if conditions.blocked(self.number, send.peer):
                    self.outbox.submit(self._settle, send, None, False)
            elif delay > 0:
                self._delayer().later(delay, [send])
            else:
                now.append(send)
        return now

    def _delayer(self) -> Delayer:
        """The delayer, started by the first delay: under the lock, as handlers and
        housekeeping may ask at once, and a second one would outlive ``server_close``."""
        with self.lock:
            if self.delayer is None:
                self.delayer = Delayer(lambda later: self._carry(later, None))
            return self.delayer

    def _deliver_held(
        self, conditions: Conditions, sends: list[Send], peers: dict[int, Address]
    ) -> list[Future[Reply]]:
        """A client's copies under the network's conditions: those across a partition fail,
        the rest go out after the longest delay (the client waits for a peer's word); none
        is lost, as the client's acknowledgement waits on them."""
        fates = [conditions.fate(self.number, send, self.rng) or 0.0 for send in sends]
        time.sleep(max(fates))
        futures = []
        for send in sends:
            if conditions.blocked(self.number, send.peer):
                self.outbox.submit(self._settle, send, None, False)
                futures.append(_settled_future(None))
            else:
                futures += self._carry([send], peers, wait=True)
        return futures

    def _hold(self, send: Send) -> bool:
        """A request made and waited on under the network's conditions: whether it goes
        through (``Conditions.exchange``: not blocked, nor lost every try), once its delay,
        both ways, and the tries lost before it have passed."""
        with self.lock:
            conditions = self.node.conditions
        if not conditions.active:
            return True
        wait = conditions.exchange(self.number, send, self.rng)
        if wait is None:
            return False
        time.sleep(wait)
        return True

    def _connection(
        self, send: Send, peers: dict[int, Address] | None = None
    ) -> PeerConnection | None:
        """The connection to carry ``send``, opened if need be; None if it is not for a peer.

        ``peers``: the node's peers as just read under the lock (else read here).
        """
        if send.kind not in OVER_CONNECTION:
            return None
        if peers is None:
            with self.lock:
                peers = dict(self.node.peers)
        if peers.get(send.peer) != send.address:
            return None
        connection = self.connections.get(send.peer)  # the usual case, without the lock:
        if connection is not None and connection.address == send.address:
            return connection  # one closed meanwhile fails the send, as a break would
        with self.connections_lock:
            connection = self.connections.get(send.peer)
            if connection is None or connection.address != send.address:
                if connection is not None:
                    connection.close()
                connection = PeerConnection(
                    send.address,
                    self.key,
                    lambda peer=send.peer: self._unreachable(peer),
                    self.timing.reply_timeout,
                    self._settle_all,
                )
                self.connections[send.peer] = connection
            return connection

    def _settle_all(self, outcomes: list[tuple[Send, Reply]]) -> None:
        """How a batch of sends on a peer connection went: the node learns it under one
        hold of the lock (the commit left to the next tick), and what follows goes out.
        Copies that all arrived teach the node only that their peers live: noted in
        ``acks``, without the lock.

        A failure here is not counted against the peer: the connection reports a break
        once, however many sends it lost.
        """
        if all(reply is not None and send.kind in RELAYING for send, reply in outcomes):
            now = time.time()
            for send, _ in outcomes:
                self.acks[send.peer] = (send, now)
            return
        follow_ups: list[Send] = []
        deaths: list[Send] = []
        with self.changing(defer=True) as node:
            self._learn_acks()
            now = time.time()
            for send, reply in outcomes:
                if reply is not None:
                    follow_ups += node.sent(send, reply, now)
                else:
                    goodbye = node.failed(send, now, counted=False)
                    follow_ups += goodbye
                    deaths += [send] if goodbye else []
        for send in deaths:
            self._log_death(send.peer, True, f"/{send.kind} did not arrive")
        self.deliver(follow_ups)
        self.commit_soon()

    def _learn_acks(self) -> None:
        """Tell the node of the copies its peers acknowledged since it last heard: each
        peer's latest, as it came. Hold the lock."""
        acks, self.acks = self.acks, {}
        for send, at in acks.values():
            self.node.sent(send, {}, at)

    def _unreachable(self, peer: int) -> None:
        with self.changing() as node:
            self._learn_acks()  # an acknowledgement before the break counts first
            self._log_death(peer, node.missed(peer, time.time()), "its connection broke or refused")

    def _tend_connections(self) -> None:
        """Close the connections of nodes that are no longer peers; break those owing replies."""
        now = time.monotonic()
        with self.lock:
            peers = dict(self.node.peers)
        with self.connections_lock:
            gone = [n for n, c in self.connections.items() if peers.get(n) != c.address]
            stale = [self.connections.pop(n) for n in gone]
            live = list(self.connections.values())
        for connection in stale:
            connection.close()
        for connection in live:
            connection.check(now)

    def _deliver_one(self, send: Send) -> Reply:
        refused = False
        try:
            reply: dict[str, Any] | None = self.call(send.address, send.frame)[-1].payload
        except NodeUnreachable as exc:
            reply, refused = None, exc.refused
            log.warning(
                "node %d: /%s to node %d failed: %s", self.number, send.kind, send.peer, exc
            )
        except GossipError as exc:
            reply = refusal({"error": str(exc)})
            log.warning("node %d: node %d refused /%s: %s", self.number, send.peer, send.kind, exc)
        except Exception:  # any other failure: the node must still hear that it did not go
            reply = None  # (a slot it kept for the peer is freed)
            log.exception("node %d: /%s to node %d failed", self.number, send.kind, send.peer)
        self._settle(send, reply, refused)
        return reply

    def _settle(self, send: Send, reply: Reply, refused: bool) -> None:
        """Tell the node how a one-off send went (``reply`` None: it did not arrive)."""
        with self.changing() as node:
            if reply is not None:
                follow_up = node.sent(send, reply, time.time())
            else:
                follow_up = node.failed(send, time.time(), refused=refused)
        if reply is None:
            self._log_death(send.peer, bool(follow_up), f"/{send.kind} did not arrive")
        self.deliver(follow_up)

    def _log_death(self, peer: int, dropped: bool, why: str) -> None:
        if dropped:
            log.warning("node %d: peer %d is dead (%s); dropped it", self.number, peer, why)

    def _catch_up(self, chore: CatchUp) -> None:
        """Hold one catch-up round (``gossip.catchup.Round``) with a peer.

        The first frame goes on the peer's long-lived connection, the rest on one of the
        round's own. Best effort: a round that fails says nothing of the peer's health
        (its connection does).
        """
        timeout = self.timing.peer_timeout
        own = GossipClient(chore.address, self.key, timeout, f"node {chore.peer}")
        try:
            with self.lock:
                trade = Round(self.node, chore)
                request = trade.request()
            while request is not None:
                connection = self._connection(request) if request.kind == Command.SYNC else None
                if not self._hold(request):
                    replies = []
                elif connection is None:
                    replies = own.exchange(request.frame)
                else:
                    reply = connection.request(request, timeout)
                    replies = [] if reply is None else [Frame(Command.OK, reply)]
                with self.changing(defer=True):
                    sends = trade.take(replies, time.time())
                    request = trade.request()
                self.deliver(sends)
                self.commit_soon()
            if trade.pulled or trade.pushed:
                log.info(
                    "node %d: caught up with node %d: pulled %d, pushed %d",
                    self.number,
                    chore.peer,
                    len(trade.pulled),
                    len(trade.pushed),
                )
        except (GossipError, FrameError) as exc:
            log.warning("node %d: catch-up with node %d failed: %s", self.number, chore.peer, exc)
        except Exception:  # a thread of the pool would swallow it unseen
            log.exception("node %d: catch-up with node %d broke", self.number, chore.peer)

    def call(self, address: Address, frame: bytes) -> list[Frame]:
        """Send one frame to another node; its reply frames. GossipError if that fails."""
        return GossipClient(address, self.key, self.timing.peer_timeout, "peer").exchange(frame)

    @property
    def number(self) -> int:
        return self.node.number

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, unless ``MAX_CONNECTIONS`` are open
        and none of them is silent, to hang up on and take the slot of."""
        if not self.slots.acquire(blocking=False) and not (
            self._hang_up_silent() and self.slots.acquire(timeout=SLOT_WAIT)
        ):
            self._turn_away(request)
            return
        with self.silent_lock:
            self.silent[request] = None
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.spoke(request)
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.spoke(request)
            self.slots.release()

    def spoke(self, request: socket.socket) -> None:
        """The connection sent a frame the node could read (or ended): it keeps its slot."""
        with self.silent_lock:
            self.silent.pop(request, None)

    def _hang_up_silent(self) -> bool:
        """Hang up on the oldest silent connection (its thread then ends and frees its
        slot); whether there was one."""
        with self.silent_lock:
            oldest = next(iter(self.silent), None)
            if oldest is None:
                return False
            del self.silent[oldest]
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)
        return True

    def _turn_away(self, request: Any) -> None:
        """Say why in one frame (if the socket takes it at once), close, log once a second."""
        busy = f"node {self.number} is busy: {MAX_CONNECTIONS} connections are open; try again"
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(encode_frame(Command.ERR, {"error": busy}))
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
        self.wake.set()
        with self.connections_lock:
            links, self.connections = list(self.connections.values()), {}
        for connection in links:
            connection.close()
        if self.delayer is not None:
            self.delayer.close()
        super().server_close()
        self.outbox.shutdown(wait=False, cancel_futures=True)


def failed_inside(frame: Frame, exc: Exception) -> FrameError:
    """The refusal of a frame the node broke on: a bug, said to the sender, not a crash."""
    return FrameError(f"/{frame.command} failed inside the node: {exc!r}")


def _settled_future(reply: Reply) -> Future[Reply]:
    """A future that already holds ``reply`` (a send the closing server never makes)."""
    future: Future[Reply] = Future()
    future.set_result(reply)
    return future


class Outgoing:
    """A connection's replies not yet written, sealed, in order, bare ``/OK``s run together.

    Once ``FLUSH_BYTES`` wait, they are written at once: a long read's listing goes out
    while the rest of it is encoded. ``/OK``s no one waits on may stay for the next batch.
    """

    def __init__(self, channel: Channel, write: Callable[[bytes], bool]) -> None:
        self.channel = channel
        self.write = write
        self.sealed: list[bytes] = []
        self.size = 0
        self.oks = 0
        self.awaited = False
        """One of the ``oks`` answers a request its sender waits on: they go out now."""
        self.broken = False
        """A write failed: the rest is dropped, and the connection closes."""

    def ok(self, later: bool = False) -> None:
        """One more bare ``/OK``; ``later``: its sender does not wait on it."""
        self.oks += 1
        self.awaited = self.awaited or not later

    @property
    def can_wait(self) -> bool:
        """All there is to write is ``/OK``s no one waits on: they may go with the next."""
        return not self.sealed and self.oks > 0 and not self.awaited

    def error(self, frame: bytes) -> None:
        self.extend([frame])

    def extend(self, frames: Iterable[bytes]) -> None:
        """Seal these frames to go out after the rest; once a write failed, nothing more
        is made (a listing's frames are made as they are asked for): a client that stops
        reading must not have the node hold every reply it asked for."""
        self._settle_oks()
        if self.broken:
            return
        for frame in frames:
            sealed = self.channel.send(frame)
            self.sealed.append(sealed)
            self.size += len(sealed)
            if self.size >= FLUSH_BYTES:
                self.broken = not self.write(self.data())
                if self.broken:
                    return

    def data(self) -> bytes:
        """Everything still to write, sealed in order (none once a write failed)."""
        self._settle_oks()
        data = b"" if self.broken else b"".join(self.sealed)
        self.sealed.clear()
        self.size = 0
        return data

    def _settle_oks(self) -> None:
        if self.oks:
            payload = {"acked": self.oks} if self.oks > 1 else None
            self.sealed.append(self.channel.send(encode_frame(Command.OK, payload)))
            self.oks = 0
            self.awaited = False


class Handler(socketserver.BaseRequestHandler):
    """Greets the connection, then answers each request frame until the client closes.

    Every wait is bounded: for the next frame, for the rest of a frame, for a reply to
    go out; so a slow, silent or hostile client costs the node one thread for a while.
    """

    server: GossipServer
    request: socket.socket

    def handle(self) -> None:
        # Replies go out as they are ready, one write per batch: no waiting on Nagle.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.channel, hello = Channel.for_node(self.server.key)
        self.lines = LineBuffer(MAX_LINE_BYTES)
        self.out = Outgoing(self.channel, self._send)
        self.acks_due: float | None = None
        """When the ``/OK``s held back (for copies no one waits on) must go (monotonic)."""
        self.silent = True
        """No frame the node could read has come yet (``GossipServer.silent``)."""
        self.waiting: list[bytes] = []
        """Lines of copies that can wait (``Node.copy_can_wait``), in the order they came."""
        self.waiting_until: float | None = None
        """When the ``waiting`` lines must be taken (monotonic)."""
        self.waiting_bytes = 0
        if not self._send(hello):
            return
        while (lines := self._next_lines()) is not None:
            if not self._take(lines):
                return
        self._take([])  # the copies that waited, before the connection ends

    def _take(self, lines: list[bytes]) -> bool:
        """Answer these lines after any that waited; or, if every one of them is a copy
        that can wait, let it wait (up to ``Timing.copy_wait`` and ``WAITING_BYTES``).
        False to close the connection."""
        now = time.monotonic()
        size = self.waiting_bytes + sum(map(len, lines))
        if (
            lines
            and (self.waiting_until is None or now < self.waiting_until)
            and size <= WAITING_BYTES
            and self._can_wait(lines)
        ):
            if not self.waiting:
                self.waiting_until = now + self.server.timing.copy_wait
            self.waiting += lines
            self.waiting_bytes = size
            return True
        if self.waiting:
            lines, self.waiting, self.waiting_until = self.waiting + lines, [], None
            self.waiting_bytes = 0
        return not lines or self._answer_all(lines)

    def _can_wait(self, lines: list[bytes]) -> bool:
        """Whether every line is a copy the node may take later: read from its first
        bytes, unchecked, as only when it is taken matters (its seal is checked then)."""
        ids = [relay_id(line) for line in lines]
        if None in ids:
            return False
        with self.server.lock:
            return all(self.server.node.copy_can_wait(i) for i in ids if i is not None)

    def _answer_all(self, lines: list[bytes]) -> bool:
        """Answer every frame one read brought and write the replies in one go; False to
        close the connection.

        A run of relayed copies is taken under one hold of the node's lock, and the bare
        ``/OK``s they earn go back as one ``/OK {"acked": n}``; a run of clients' messages
        is stored with one commit.
        """
        out = self.out
        run: list[Frame] = []
        for line in lines:
            try:
                frame = self.channel.receive(line)
                if self.silent:
                    self.silent = False
                    self.server.spoke(self.request)
            except AuthError as exc:
                self._answer_run(run, out)
                self._log_refusal(str(exc))
                self._send(out.data() + encode_frame(Command.ERR, {"error": str(exc)}))
                return False  # nothing more from this sender can be trusted
            except FrameError as exc:
                self._answer_run(run, out)
                out.error(self._refusal(str(exc)))
                continue
            if frame.command in BATCHED:
                if run and (run[0].command == Command.NEW) != (frame.command == Command.NEW):
                    self._answer_run(run, out)
                run.append(frame)
                continue
            self._answer_run(run, out)
            with held_off() if frame.command in LISTINGS else contextlib.nullcontext():
                try:
                    reply = self.server.respond(frame)
                except FrameError as exc:
                    out.error(self._refusal(str(exc)))
                    continue
                except Exception as exc:
                    out.error(self._refusal(str(failed_inside(frame, exc))))
                    continue
                try:
                    out.extend(reply.replies)
                except FrameError as exc:  # a listing that cannot be framed
                    out.error(self._refusal(str(exc)))
                else:
                    if reply.written is not None and not self._record(reply.written):
                        return False
            if out.broken:
                return False  # it stopped reading: the rest of its requests go unanswered
            if reply.leaves:
                self._send(out.data())
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return False
        self._answer_run(run, out)
        if out.broken:
            return False
        if out.can_wait:
            if self.acks_due is None:
                self.acks_due = time.monotonic() + self.server.timing.ack_delay
            return True
        self.acks_due = None
        return self._send(out.data())

    def _record(self, written: Callable[[], Iterable[bytes]]) -> bool:
        """Write what the answer replied so far; once it is out, let the node record what
        that means (``Answer.written``) and queue the frames that end the reply. False if
        the write failed (the connection closes)."""
        if self.out.broken or not self._send(self.out.data()):
            return False
        with self.server.changing():
            ending = list(written())
        self.out.extend(ending)
        return not self.out.broken

    def _answer_run(self, run: list[Frame], out: Outgoing) -> None:
        """Answer a run of relayed copies or of clients' messages, then empty it."""
        if not run:
            return
        if run[0].command in RELAYING:
            later = all(map(unawaited, run))
            for refusal in self.server.relay_all(run):
                if refusal is None:
                    out.ok(later)
                else:
                    out.error(self._refusal(str(refusal)))
        else:
            for outcome in self.server.submit_all(run):
                if isinstance(outcome, FrameError):
                    out.error(self._refusal(str(outcome)))
                else:
                    out.extend(outcome.replies)
        run.clear()

    def _next_lines(self) -> list[bytes] | None:
        """The complete lines that have come; None once the client closes, breaks a limit,
        or takes too long."""
        waiting = time.monotonic()
        begun: float | None = None
        while True:
            try:
                lines = self.lines.complete_lines()
            except FrameError as exc:
                self._refuse(str(exc))
                return None
            if lines:
                return lines
            now = time.monotonic()
            if self.lines.partial and begun is None:
                begun = now
            server = self.server
            deadline = (
                waiting + server.idle_timeout if begun is None else begun + server.frame_timeout
            )
            acks_due = self.acks_due
            due = min(deadline, acks_due or deadline, self.waiting_until or deadline)
            try:
                self.request.settimeout(max(due - now, 0.001))
                data = self.request.recv(RECV_BYTES)
            except TimeoutError:
                if self.waiting:
                    return []  # the copies that waited are due (the first deadline)
                if acks_due is not None and time.monotonic() < deadline:
                    self.acks_due = None  # the held-back /OKs are due: out they go
                    if not self._send(self.out.data()):
                        return None
                    continue
                if begun is not None:
                    self._refuse(f"a frame took over {server.frame_timeout:g} s to arrive")
                return None  # an idle connection is closed without a word
            except OSError:
                return None
            if not data:
                if self.lines.partial:
                    self._log_refusal("connection closed in the middle of a frame")
                return None
            self.lines.feed(data)

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

    def _refuse(self, reason: str) -> None:
        """Log the refusal and answer ``/ERR`` at once, after the copies that waited: a
        peer matches replies to its requests in order."""
        if self._take([]):
            self.out.error(self._refusal(reason))  # after the /OKs held back: they came first
            self._send(self.out.data())

    def _refusal(self, reason: str) -> bytes:
        """Log the refusal; the ``/ERR`` frame that says it."""
        self._log_refusal(reason)
        return encode_frame(Command.ERR, {"error": reason})

    def _log_refusal(self, reason: str) -> None:
        log.warning("node %d: refused a frame from %s: %s", self.server.number, self.peer, reason)

    @property
    def peer(self) -> str:
        host, port = self.client_address[:2]
        return f"{host}:{port}"
