"""``/NEW`` on a real in-process node: stored before it spreads, held without peers, a
retried id is one message, and a store that fails never costs a message already held."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip.auth import new_secret
from gossip.client import GossipClient
from gossip.errors import GossipError
from gossip.node import Node
from gossip.server import GossipServer
from gossip.store import Store, StoreError
from tests.networks import free_origin

KEY = new_secret()


class FailingStore(Store):
    """A store whose durable commits fail while ``full`` is set, as on a full disk."""

    full = False

    def commit(self, durable: bool = False) -> None:
        if self.full and durable and self.pending:
            self.rollback()
            raise StoreError("database or disk is full")
        super().commit(durable)


@pytest.fixture
def lone_node(tmp_path: Path) -> Iterator[tuple[GossipServer, FailingStore]]:
    """Node 1 with no peers, its store in tmp_path, serving on a free loopback port."""
    port = free_origin(1) + 1
    store = FailingStore(tmp_path / "node-1.db")
    node = Node(1, 3, {}, address=("127.0.0.1", port), journal=store)
    server = GossipServer(node, ("127.0.0.1", port), store, KEY)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, store
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def client(server: GossipServer) -> GossipClient:
    return GossipClient(server.server_address[:2], KEY, timeout=5)


def test_a_node_without_peers_holds_the_message_and_says_so(
    lone_node: tuple[GossipServer, FailingStore],
) -> None:
    server, store = lone_node
    receipt = client(server).post("alone", message_id="m1")
    assert (receipt.id, receipt.held, receipt.duplicate) == ("m1", True, False)
    assert [m.id for m in store.load()[0]] == ["m1"], "on disk before the answer"


def test_the_same_id_twice_is_one_message_and_another_text_is_refused(
    lone_node: tuple[GossipServer, FailingStore],
) -> None:
    server, _ = lone_node
    assert not client(server).post("once", message_id="same").duplicate
    assert client(server).post("once", message_id="same").duplicate
    with pytest.raises(GossipError, match="taken by another message"):
        client(server).post("other text", message_id="same")
    assert [v.id for v in client(server).read_messages(peek=True)] == ["same"]


def test_a_message_the_store_cannot_take_is_refused_and_forgotten(
    lone_node: tuple[GossipServer, FailingStore],
) -> None:
    server, store = lone_node
    store.full = True
    with pytest.raises(GossipError, match="could not store the message"):
        client(server).post("lost", message_id="no-room")
    assert client(server).read_messages(peek=True) == []
    assert server.node.messages.digest.count == 0, "catch-up would offer it otherwise"
    store.full = False
    assert client(server).post("lost", message_id="no-room").id == "no-room"
    assert [v.id for v in client(server).read_messages(peek=True)] == ["no-room"]


def test_a_message_whose_flush_failed_is_not_on_disk_to_spread_after_a_restart(
    lone_node: tuple[GossipServer, FailingStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite committed its rows before the flush failed: a restarted node would load the
    refused message and pass it on."""
    server, store = lone_node
    with server.lock:  # a relayed copy in the same group commit: it is not the client's
        server.node.relay("other", "from a peer", (2,), 1, 0.0)

    def failing(descriptor: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(GossipError, match="could not store the message"):
        client(server).post("refused", message_id="unflushed")
    monkeypatch.undo()
    reopened = Store(store.path)
    try:
        assert [m.id for m in reopened.load()[0]] == ["other"]
    finally:
        reopened.close()


def test_a_retry_on_a_full_disk_keeps_the_message_already_held(
    lone_node: tuple[GossipServer, FailingStore],
) -> None:
    server, store = lone_node
    client(server).post("held", message_id="kept")
    with server.lock:  # a relayed copy waiting for the next group commit
        server.node.relay("other", "from a peer", (2,), 1, 0.0)
    store.full = True
    assert client(server).post("held", message_id="kept").duplicate
    assert "kept" in server.node.messages
    assert {v.id for v in client(server).read_messages(peek=True)} == {"kept", "other"}


@pytest.mark.parametrize(("holds", "held"), [(None, False), ("the same", False), ("other", True)])
def test_a_message_its_only_peer_refuses_is_held_not_on_its_way(
    tmp_path: Path, holds: str | None, held: bool
) -> None:
    """The peer holds the id with another text (a client that reused an id): it refuses
    the copy, so the message is not on its way, and the client must not hear that it is."""
    origin = free_origin(2)
    servers = []
    for number, peers in ((2, {}), (1, {2: ("127.0.0.1", origin + 2)})):
        node = Node(number, 3, peers, address=("127.0.0.1", origin + number))
        if number == 2 and holds is not None:
            node.submit("the same" if holds == "the same" else "another text", 1, "m1")
        servers.append(GossipServer(node, ("127.0.0.1", origin + number), None, KEY))
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
    try:
        receipt = client(servers[1]).post("the same", message_id="m1")
        assert (receipt.id, receipt.held) == ("m1", held)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
