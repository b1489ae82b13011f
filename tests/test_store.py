"""The SQLite journal on real files: what a restarted node gets back, and when it is safe."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from gossip.journal import Message
from gossip.node import Node
from gossip.protocol import Copy
from gossip.sends import Address
from gossip.simulation import address
from gossip.state import store_path
from gossip.store import Store, StoreError, _checksum, log_damaged
from tests.core import make_node, read

Loaded = tuple[list[Message], dict[int, Address], int | None]


class Clock:
    """A clock like ``time.time``: large values with fractions, so REAL columns are tested."""

    def __init__(self, start: float = 1_700_000_000.123456) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.1
        return self.now


def live_a_little(node: Node) -> None:
    """Everything the journal records: new messages, more copies, reads, peers coming and going."""
    node.submit("first", 2)
    node.relay("x", "from 5", (5, 2), 1, 12.5)
    node.relay("x", "from 5", (6, 3), 1, 12.5)
    read(node.messages, "all")
    node.submit("second", 1)
    node.relay("y", "unread", (3,), 3, 13.25)
    node.relay("x", "from 5", (3,), 1, 12.5)  # a copy of an older message, after newer ones
    read(node.messages, "unread", mark=False)  # a peek marks nothing
    node.drop_peer(2)
    node.members.accept_link(4, address(4))
    node.members.accept_link(5, address(5))


def reload(path: Path) -> Loaded:
    """What a restarted node reads, through a connection of its own."""
    store = Store(path)
    try:
        return store.load()
    finally:
        store.close()


def held(messages: Iterable[Message]) -> list[tuple[object, ...]]:
    """What the journal must keep of each message, in order (``relayed`` is not kept)."""
    return [(m.id, m.text, m.sent, m.relays, m.copies, m.read) for m in messages]


def test_reload_gives_back_what_the_node_held(tmp_path: Path) -> None:
    path = store_path(tmp_path, 1)
    store = Store(path)
    node = make_node(1, [2, 3], Clock(), journal=store)
    live_a_little(node)
    store.commit()
    store.close()

    messages, peers, wanted = reload(path)
    assert held(messages) == held(node.messages.values())
    assert [m.id for m in messages] == ["n1-1", "x", "n1-2", "y"]
    assert [m.read for m in messages] == [True, True, False, False]
    assert [c.path for c in messages[1].copies] == [(5, 2, 1), (6, 3, 1), (3, 1)]
    assert peers == node.peers == {3: address(3), 4: address(4), 5: address(5)}
    assert wanted == node.members.wanted == 3

    restarted = Node(1, 3, {}, messages=messages, wanted=wanted)
    assert restarted.messages.digest.total == node.messages.digest.total
    assert restarted.members.wanted == 3
    assert read(restarted.messages, "all", mark=False) == read(node.messages, "all", mark=False)


def test_restarted_node_keeps_journaling(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    first = Store(path)
    live_a_little(make_node(1, [2, 3], Clock(), journal=first))
    first.close()

    messages, peers, wanted = reload(path)
    second = Store(path)
    node = Node(1, 3, {}, messages=messages, wanted=wanted, journal=second, clock=Clock(2e9))
    node.relay("x", "from 5", (7,), 1, 12.5)
    node.relay("z", "after the restart", (4,), 1, 2e9)
    read(node.messages, "unread")
    second.close()

    again, peers_again, wanted_again = reload(path)
    assert held(again) == held(node.messages.values())
    assert [c.path for c in again[1].copies] == [(5, 2, 1), (6, 3, 1), (3, 1), (7, 1)]
    assert all(m.read for m in again)
    # No peer changed after the restart: the last ones known stay on record.
    assert (peers_again, wanted_again) == (peers, wanted)


def test_uncommitted_changes_are_invisible_until_commit(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    writer = Store(path)
    reader = Store(path)
    node = make_node(1, [2, 3], Clock(), journal=writer)
    live_a_little(node)
    assert reader.load() == ([], {}, None)
    writer.commit()
    messages, peers, wanted = reader.load()
    assert held(messages) == held(node.messages.values())
    assert (peers, wanted) == (node.peers, node.members.wanted)
    writer.close()
    reader.close()


def test_committed_changes_survive_an_abandoned_connection(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    abandoned = Store(path)
    node = make_node(1, [2, 3], Clock(), journal=abandoned)
    node.submit("kept", 1)
    abandoned.commit()
    node.submit("not committed", 1)
    node.drop_peer(2)

    def texts_and_peers() -> tuple[list[str], list[int]]:
        messages, peers, _ = reload(path)
        return [m.text for m in messages], sorted(peers)

    # Nobody calls close: the process is gone as far as the next one can tell.
    assert texts_and_peers() == (["kept"], [])
    # The connection dying drops its uncommitted rest, as a crash would.
    abandoned.db.close()
    assert texts_and_peers() == (["kept"], [])


CRASHING_NODE = """
import os, sys
from pathlib import Path
from gossip.node import Node
from gossip.store import Store, StoreError

store = Store(Path(sys.argv[1]))
node = Node(1, 2, {}, journal=store)
node.submit("kept", 1)
store.commit(durable=True)
node.submit("lost", 1)
os._exit(1)
"""


def crash(script: str, path: Path) -> None:
    """Run ``script`` on the store at ``path`` in a process of its own, which dies at its end
    without closing anything, as kill -9 leaves it."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr


def test_committed_changes_survive_the_process_dying(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    crash(CRASHING_NODE, path)
    # Never checkpointed: the message is only in the write-ahead log.
    assert Path(f"{path}-wal").stat().st_size > 0
    messages, _, _ = reload(path)
    assert [m.text for m in messages] == ["kept"]


def test_durable_commit_writes_the_log_and_is_visible(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = Store(path)
    node = make_node(1, [2, 3], Clock(), journal=store)
    message_id, _ = node.submit("on disk before the client hears OK", 1)
    store.commit(durable=True)
    assert Path(f"{path}-wal").exists()
    messages, _, _ = reload(path)
    assert [m.id for m in messages] == [message_id]
    store.close()


def test_commit_with_nothing_pending_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = Store(path)
    store.commit()
    store.commit(durable=True)
    make_node(1, [2, 3], Clock(), journal=store).submit("once", 1)
    store.commit(durable=True)
    store.commit(durable=True)
    store.commit()
    assert [m.text for m in store.load()[0]] == ["once"]
    store.close()


def test_a_commit_that_failed_never_lands_later(tmp_path: Path) -> None:
    """Rows wait in memory until a commit inserts them: a failed commit forgets them, as
    SQLite's rollback forgets a failed transaction."""
    store = Store(tmp_path / "node.db")
    node = make_node(1, [2, 3], Clock(), journal=store)
    node.submit("lost", 1)
    real = store.db
    store.db = sqlite3.connect(":memory:")  # no tables: the insert fails as a broken file would
    with pytest.raises(StoreError):
        store.commit(durable=True)
    store.db.close()
    store.db = real
    assert not store.pending
    node.submit("kept", 1)
    store.commit()
    assert [m.text for m in store.load()[0]] == ["kept"]
    store.close()


def test_a_message_read_before_its_commit_is_stored_read(tmp_path: Path) -> None:
    store = Store(tmp_path / "node.db")
    node = make_node(1, [2, 3], Clock(), journal=store)
    node.submit("read at once", 1)
    node.relay("a" * 32, "passed on", (2,), 1, 1.0)
    assert len(read(node.messages, "all")) == 2
    store.commit()
    assert sorted((m.text, m.read) for m in store.load()[0]) == [
        ("passed on", True),
        ("read at once", True),
    ]
    store.close()


def test_store_path_names_one_file_per_node(tmp_path: Path) -> None:
    assert store_path(tmp_path, 7) == tmp_path / "node-7.db"
    assert store_path(tmp_path, 12) != store_path(tmp_path, 1)


def test_new_database_loads_empty(tmp_path: Path) -> None:
    path = store_path(tmp_path, 3)
    assert reload(path) == ([], {}, None)
    assert path.exists()
    assert reload(path) == ([], {}, None)


def test_messages_without_copies_are_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = Store(path)
    store.message_added(Message("bare", "no copy was written", 1.0, 1, []))
    store.message_added(Message("full", "with a copy", 2.0, 1, []))
    store.copy_added("full", Copy((2, 1), 3.0))
    store.close()
    messages, _, _ = reload(path)
    assert held(messages) == [("full", "with a copy", 2.0, 1, [Copy((2, 1), 3.0)], False)]


TEXTS = [
    "Grüße, 世界, مرحبا 😀",
    "line one\nline two\r\nline three\r",
    "quotes ' \" ` and a \\ backslash",
    "a NUL \x00 inside",
    "tab\tform feed\fline separator\u2028end",
    "\u202eright to left",
    "'); DROP TABLE messages; --",
    '{"json": [1, 2]}',
    "  spaces around  ",
]


def test_text_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = Store(path)
    node = make_node(1, [2, 3], Clock(), journal=store)
    ids = [node.submit(text, 1)[0] for text in TEXTS]
    store.close()
    messages, _, _ = reload(path)
    assert [(m.id, m.text) for m in messages] == list(zip(ids, TEXTS, strict=True))


CHECKPOINTED_THEN_CRASHING = """
import os, sys
from pathlib import Path
from gossip.node import Node
from gossip.store import Store

path = Path(sys.argv[1])
store = Store(path)
Node(1, 2, {}, journal=store).submit("checkpointed", 1)
store.close()  # the last connection checkpoints the log into the database
store = Store(path)
Node(1, 2, {}, journal=store).submit("in the log", 1)
store.commit(durable=True)
os._exit(1)
"""


def a_killed_nodes_log(directory: Path) -> Path:
    """Node 1's store as kill -9 leaves it: one message checkpointed into the database,
    the next only in the write-ahead log."""
    crash(CHECKPOINTED_THEN_CRASHING, store_path(directory, 1))
    return Path(f"{store_path(directory, 1)}-wal")


def damage(path: Path, at: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(data)
    return bytes(data)


def restarted_over(log: bytes, salt: int) -> bytes:
    """``log`` as SQLite leaves it when killed between a restarted log's new header (its
    first salt ``salt``) and its first frame: the frames are the last log's."""
    header = bytearray(log[:32])
    header[16:20] = salt.to_bytes(4, "big")
    header[20:24] = bytes.fromhex("5eed5eed")
    order = ">" if header[3] & 1 else "<"
    header[24:32] = b"".join(
        n.to_bytes(4, "big") for n in _checksum(order, bytes(header[:24]), 0, 0)
    )
    return bytes(header) + log[32:]


@pytest.mark.parametrize(
    ("where", "at"),
    [("header", 20), ("first frame's salt", 40), ("first frame's checksum", 50), ("page", 100)],
)
def test_a_log_damaged_at_its_start_alone_is_kept_aside_and_the_rest_loaded(
    tmp_path: Path, where: str, at: int
) -> None:
    """SQLite took the whole log for empty and reset it: the node came back without it and
    no one was told, and what only this node held was gone for good."""
    from gossip.state import damaged_stores, log_only
    from gossip.supervisor import open_store

    log = a_killed_nodes_log(tmp_path)
    assert not log_damaged(log)
    damaged = damage(log, at)
    assert log_damaged(log), where
    store, messages, _, _ = open_store(tmp_path, 1)
    store.close()
    assert [m.text for m in messages] == ["checkpointed"], "the database is kept in use"
    [kept] = tmp_path.glob("node-1.db-wal.corrupt-*")
    assert kept.read_bytes() == damaged, "kept as it was, for whoever wants to dig"
    assert not list(tmp_path.glob("node-1.db.corrupt-*"))
    said = damaged_stores(tmp_path, 0)
    assert said == {1: kept} and log_only(said[1]), "the restart says so"


def test_a_log_cut_short_restarted_or_damaged_further_in_is_left_to_sqlite(
    tmp_path: Path,
) -> None:
    """A crash can cut a log while it is written, or between a restarted log's header and
    its first frame; later damage costs only the frames after it, as a torn write would."""
    log = a_killed_nodes_log(tmp_path)
    whole = log.read_bytes()
    damage(log, len(whole) - 5)
    assert not log_damaged(log)
    for size in (0, 10, 40):
        log.write_bytes(whole[:size])
        assert not log_damaged(log), size
    salt = int.from_bytes(whole[16:20], "big")
    log.write_bytes(restarted_over(whole, salt + 1))
    assert not log_damaged(log), "the last log's first frame after a new header"
    log.write_bytes(restarted_over(whole, salt + 7))
    assert log_damaged(log), "a first frame no log before this one wrote"
    assert not log_damaged(tmp_path / "none-wal")
    (tmp_path / "a-directory-wal").mkdir()
    assert not log_damaged(tmp_path / "a-directory-wal"), "SQLite's to refuse, as before"


def three_stored(path: Path) -> None:
    """Node 1's store holding three messages, closed."""
    store = Store(path)
    node = Node(1, 3, {}, journal=store)
    for text in ("first", "second", "third"):
        node.submit(text, 1)
    store.commit(durable=True)
    store.close()


@pytest.mark.parametrize(
    ("damage_done", "left"),
    [
        ("UPDATE copies SET path = '[1x' WHERE rowid = 2", ["first", "third"]),
        ("UPDATE copies SET path = '[1, 1]' WHERE rowid = 2", ["first", "third"]),
        ("UPDATE messages SET text = CAST(x'ff41fe' AS TEXT) WHERE rowid = 1", ["second", "third"]),
        ("UPDATE messages SET relays = 'many' WHERE rowid = 3", ["first", "second"]),
        ("UPDATE copies SET message_id = CAST(x'c3' AS TEXT) WHERE rowid = 1", ["second", "third"]),
    ],
)
def test_a_damaged_row_is_left_out_and_the_rest_loads(
    tmp_path: Path, damage_done: str, left: list[str]
) -> None:
    """One damaged row made the node fail to start (a JSON or UTF-8 error), and remove-node
    fail with a traceback, and a resume of the whole network fail."""
    from gossip.supervisor import open_store

    path = store_path(tmp_path, 1)
    three_stored(path)
    with sqlite3.connect(path) as db:
        db.execute(damage_done)
    store, messages, _, _ = open_store(tmp_path, 1)
    store.close()
    assert [m.text for m in messages] == left
    assert store.damaged_rows == 1


def test_an_empty_database_with_a_log_is_kept_aside_whole(tmp_path: Path) -> None:
    """SQLite took the empty file for a new database and deleted the log, and every
    message in it, without a word."""
    from gossip.supervisor import open_store

    path = store_path(tmp_path, 1)
    log = a_killed_nodes_log(tmp_path).read_bytes()
    path.write_bytes(b"")
    store, messages, _, _ = open_store(tmp_path, 1)
    store.close()
    assert messages == []
    [kept] = tmp_path.glob("node-1.db-wal.corrupt-*")
    assert kept.read_bytes() == log
    assert list(tmp_path.glob("node-1.db.corrupt-*")), "the empty database beside it"


def test_a_message_of_only_spaces_taken_before_the_rule_still_loads(tmp_path: Path) -> None:
    """Nodes took such a message from a raw client once: it is not damage."""
    path = store_path(tmp_path, 1)
    three_stored(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE messages SET text = '   ' WHERE rowid = 2")
    store = Store(path)
    messages, _, _ = store.load()
    store.close()
    assert [m.text for m in messages] == ["first", "   ", "third"] and store.damaged_rows == 0


def test_a_log_whose_database_is_gone_is_kept_aside(tmp_path: Path) -> None:
    """SQLite deleted the log of a database that was no longer there."""
    from gossip.supervisor import open_store

    path = store_path(tmp_path, 1)
    log = a_killed_nodes_log(tmp_path).read_bytes()
    path.unlink()
    store, messages, _, _ = open_store(tmp_path, 1)
    store.close()
    assert messages == []
    [kept] = tmp_path.glob("node-1.db-wal.corrupt-*")
    assert kept.read_bytes() == log


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterable[Path]:
    """A store that holds a message and that this user cannot write to: read-only for a
    user, immutable (chattr +i) for root, whom permissions do not stop."""
    path = tmp_path / "node-3.db"
    store = Store(path)
    store.message_added(Message("m1", "kept", 1.0, 1, []))
    store.copy_added("m1", Copy((1, 3), 2.0))
    store.commit(durable=True)
    store.close()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("this file system has no immutable files, and root writes anything")
        try:
            yield path
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        yield path


def test_a_store_the_node_cannot_write_to_is_refused_as_it_opens(unwritable: Path) -> None:
    """It opened, and the node then refused every message and link as if the disk were
    full; restart-node said it had restarted."""
    with pytest.raises(StoreError, match=r"cannot write to .*node-3\.db or its log .*: make them"):
        Store(unwritable)
    look = Store(unwritable, writing=False)  # the supervisor's look at its peers, a hand-over
    try:
        assert [m.id for m in look.load()[0]] == ["m1"]
    finally:
        look.close()
