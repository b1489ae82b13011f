"""A node's memory on disk: its messages, every copy's path, read marks and peers, in SQLite.

One database per node in the network's run directory, so a node that is restarted
(``gossip restart-node``) comes back with its history. Writes go to SQLite's
write-ahead log, which survives the process being killed; a message a client submits
is also flushed to the disk before the node acknowledges it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
from pathlib import Path

from gossip.journal import Journal, Message
from gossip.protocol import MAX_MESSAGE_BYTES, MAX_RELAYS, Copy, is_host, is_message_id
from gossip.sends import Address

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, text TEXT NOT NULL, sent REAL NOT NULL,
    relays INTEGER NOT NULL, read INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS copies (
    message_id TEXT NOT NULL REFERENCES messages(id), path TEXT NOT NULL, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS peers (number INTEGER PRIMARY KEY, host TEXT NOT NULL, port INTEGER);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


CACHE_KIB = 256
"""SQLite's page cache per node (its default is 2,000 KiB): a node writes its store and
reads it back only when it starts, so a larger cache only holds pages it never reads."""


class StoreError(Exception):
    """The store could not write (a full disk, a broken file); the text says why."""


class DamagedStore(sqlite3.DatabaseError):
    """The store's database file is empty while its log is not: SQLite would take it for a
    new database and delete the log, and every message in it, without a word."""


class DamagedLog(sqlite3.DatabaseError):
    """The store's write-ahead log has a header or first frame SQLite would refuse: it
    would take the log for empty and reset it, and every change since the last checkpoint
    with it (a killed node's store is often all log), without a word."""


WAL_MAGIC = (0x377F0682, 0x377F0683)
"""A write-ahead log's first word: its checksums read words little- or big-endian."""
WAL_VERSION = 3007000


def log_damaged(path: Path) -> bool:
    """Whether ``path``, a write-ahead log, starts with a header or a first frame SQLite
    would refuse, taking the whole log for empty.

    Not damaged: no log, or one that cannot be read (SQLite says why when it opens it); a
    log cut short of a header or of its first frame (a crash cut it while it was written);
    a first frame of the log before (SQLite writes a restarted log's header, its first salt
    one more than the last log's, before its first frame); damage further in, which costs
    only the frames after it, as a torn write would: SQLite's to drop.
    """
    try:
        with open(path, "rb") as log:
            header = log.read(32)
            if len(header) < 32:
                return False
            magic, version, page_size = struct.unpack(">III", header[:12])
            if magic not in WAL_MAGIC or version != WAL_VERSION:
                return True
            order = ">" if magic & 1 else "<"
            sums = _checksum(order, header[:24], 0, 0)
            if sums != struct.unpack(">II", header[24:]):
                return True
            frame = log.read(24 + page_size)
    except OSError:
        return False
    if len(frame) < 24 + page_size:
        return False
    if frame[8:16] != header[16:24]:  # salts: the frame is of an earlier log, or damaged
        (salt,) = struct.unpack(">I", frame[8:12])
        return (salt + 1) & 0xFFFFFFFF != struct.unpack(">I", header[16:20])[0]
    sums = _checksum(order, frame[:8] + frame[24:], *sums)
    return sums != struct.unpack(">II", frame[16:24])


def _checksum(order: str, data: bytes, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's checksum of a log's header or frame, from the one before it."""
    for x0, x1 in struct.iter_unpack(order + "II", data):
        s0 = (s0 + x0 + s1) & 0xFFFFFFFF
        s1 = (s1 + x1 + s0) & 0xFFFFFFFF
    return s0, s1


def _size(path: Path) -> int:
    """A file's size; 0 if it is not there."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _text(raw: object) -> str | None:
    """A column read as bytes, as text; None if it is not UTF-8 (damaged)."""
    if not isinstance(raw, bytes):
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _copy_row(message_id: object, path: object, arrived: object) -> tuple[str, Copy] | None:
    """A ``copies`` row as the message id and the copy; None if it is damaged."""
    name, walk = _text(message_id), _text(path)
    if name is None or walk is None or type(arrived) not in (float, int):
        return None
    try:
        steps = json.loads(walk)
    except ValueError:
        return None
    if not is_message_id(name) or type(steps) is not list or not steps:
        return None
    if {*map(type, steps)} != {int} or min(steps) < 1 or len(set(steps)) != len(steps):
        return None
    return name, Copy(tuple(steps), float(arrived))


def _message_row(
    message_id: object,
    text: object,
    sent: object,
    relays: object,
    read: object,
    copies: dict[str, list[Copy]],
) -> Message | None:
    """A ``messages`` row, with its copies; None if it is damaged."""
    name, body = _text(message_id), _text(text)
    if name is None or body is None or not is_message_id(name):
        return None
    if not body or len(body.encode()) > MAX_MESSAGE_BYTES:  # kept as it was taken
        return None
    if type(sent) not in (float, int) or type(relays) is not int or not 1 <= relays <= MAX_RELAYS:
        return None
    return Message(name, body, float(sent), relays, copies.get(name, []), bool(read))


BUSY_TIMEOUT_MS = 5000
"""How long SQLite waits for another connection's lock (Python's default)."""


class Store(Journal):
    """The journal of one node, kept in SQLite; the server commits after each change."""

    def __init__(self, path: Path, writing: bool = True) -> None:
        """DamagedLog if its log is damaged, DamagedStore if its database is empty and its
        log is not: found before SQLite opens it, and resets or deletes the log. StoreError
        if ``writing`` (a node's own store, not a look into it) and it cannot be written."""
        self.path = path
        wal = Path(f"{path}-wal")
        if log_damaged(wal):
            raise DamagedLog(f"the write-ahead log {path}-wal is damaged")
        with contextlib.suppress(OSError):  # one that cannot be looked at: SQLite says why
            if wal.stat().st_size > 0 and not _size(Path(path)):
                raise DamagedStore(f"the database {path} is empty or gone, and its log is not")
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self.db.executescript(SCHEMA)
        if writing:
            self._count_open()
        self._messages: list[tuple[str, str, float, int, int]] = []
        self._copies: list[tuple[str, str, float]] = []
        """Rows written down since the last commit, inserted by it in one call per table:
        a flood journals thousands of copies a second, and a statement each cost more
        than the rest of taking a copy in (and held up the relay that waited on it)."""
        self.damaged_rows = 0
        """Rows the last ``load`` left out as damaged."""
        self._wal: int | None = None
        """The write-ahead log, opened by the first durable commit and kept: every client's
        message waits for its flush before a copy goes out, and ``fdatasync`` of an open
        file is the whole of that wait (the log keeps its file while the store is open)."""

    def _count_open(self) -> None:
        """Count this open in the database's header (``user_version``): a write, so a store
        the node cannot write to (a read-only file or mount) is found as it starts, not at
        its first message, which it would refuse as if the disk were full."""
        self.db.execute("PRAGMA busy_timeout = 0")  # busy (another connection writes): it
        try:  # says nothing of whether this one may write, and is no reason to wait
            opened = self.db.execute("PRAGMA user_version").fetchone()[0]
            self.db.execute(f"PRAGMA user_version = {(opened + 1) % (1 << 31)}")
        except sqlite3.Error as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                return
            self.db.close()
            raise StoreError(
                f"cannot write to {self.path} or its log ({exc}): make them writable, then "
                "try again"
            ) from None
        finally:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed above
                self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def load(self) -> tuple[list[Message], dict[int, Address], int | None]:
        """Everything a restarted node needs: its messages, its last peers, its aim.

        A row damaged on the disk (text that is not UTF-8, a path that is not a walk) is
        left out and counted in ``damaged_rows``: the rest loads, and catch-up brings back
        what it held. Read as bytes, so no row can fail the whole read.
        """
        self.db.text_factory = bytes
        try:
            copy_rows = self.db.execute(
                "SELECT message_id, path, arrived FROM copies ORDER BY rowid"
            ).fetchall()
            message_rows = self.db.execute(
                "SELECT id, text, sent, relays, read FROM messages ORDER BY rowid"
            ).fetchall()
            peer_rows = self.db.execute("SELECT number, host, port FROM peers").fetchall()
            row = self.db.execute("SELECT value FROM settings WHERE key = 'wanted'").fetchone()
        finally:
            self.db.text_factory = str
        copies: dict[str, list[Copy]] = {}
        damaged = 0
        for message_id, path, arrived in copy_rows:
            found = _copy_row(message_id, path, arrived)
            if found is None:
                damaged += 1
            else:
                copies.setdefault(found[0], []).append(found[1])
        messages = []
        for fields in message_rows:
            message = _message_row(*fields, copies)
            damaged += message is None
            if message is not None and message.copies:
                messages.append(message)
        peers = {}
        for number, host, port in peer_rows:
            name = _text(host)
            if type(number) is int and name is not None and is_host(name) and type(port) is int:
                peers[number] = (name, port)
        self.damaged_rows = damaged
        wanted = row[0] if row and type(row[0]) is int else None
        return messages, peers, wanted

    def peers(self) -> list[int]:
        """The node's last peers, without loading its messages."""
        return sorted(n for (n,) in self.db.execute("SELECT number FROM peers"))

    def message_added(self, message: Message) -> None:
        self._messages.append(
            (message.id, message.text, message.sent, message.relays, int(message.read))
        )

    def copy_added(self, message_id: str, copy: Copy) -> None:
        self._copies.append((message_id, f"[{','.join(map(str, copy.path))}]", copy.arrived))

    def marked_read(self, ids: list[str]) -> None:
        self._insert()  # a message read before its commit is marked once it is there
        self.db.executemany("UPDATE messages SET read = 1 WHERE id = ?", [(i,) for i in ids])

    def _insert(self) -> None:
        """Insert the rows written down since the last commit (in its transaction)."""
        messages, copies, self._messages, self._copies = self._messages, self._copies, [], []
        if messages:
            self.db.executemany(
                "INSERT OR IGNORE INTO messages (id, text, sent, relays, read) "
                "VALUES (?, ?, ?, ?, ?)",
                messages,
            )
        if copies:
            self.db.executemany(
                "INSERT INTO copies (message_id, path, arrived) VALUES (?, ?, ?)", copies
            )

    def peers_changed(self, peers: dict[int, Address], wanted: int) -> None:
        self.db.execute("DELETE FROM peers")
        self.db.executemany(
            "INSERT INTO peers (number, host, port) VALUES (?, ?, ?)",
            [(n, host, port) for n, (host, port) in peers.items()],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('wanted', ?)", (wanted,)
        )

    def commit(self, durable: bool = False) -> None:
        """Make the changes so far permanent; ``durable`` also waits for the disk.

        StoreError if that fails (a full disk): the changes since the last commit are
        then undone here, so a failed write never lands later by surprise.
        """
        if not self.pending:
            return
        try:
            self._insert()
            self.db.commit()
            if durable:
                if self._wal is None:
                    self._wal = os.open(f"{self.path}-wal", os.O_RDONLY)
                os.fdatasync(self._wal)
        except (sqlite3.Error, OSError) as exc:
            self.rollback()
            raise StoreError(str(exc) or type(exc).__name__) from exc

    def forget(self, ids: list[str]) -> None:
        """Take out clients' messages whose submission failed: when the flush is what
        failed, their rows were committed already, and a restart would load them and let
        them spread, refused. As far as the disk still lets it (a failing disk may not)."""
        rows = [(i,) for i in ids]
        with contextlib.suppress(sqlite3.Error):
            self.db.executemany("DELETE FROM copies WHERE message_id = ?", rows)
            self.db.executemany("DELETE FROM messages WHERE id = ?", rows)
            self.db.commit()

    @property
    def pending(self) -> bool:
        """Whether anything was written down since the last commit."""
        return bool(self._messages or self._copies) or self.db.in_transaction

    def rollback(self) -> None:
        """Forget what was written down since the last commit."""
        self._messages, self._copies = [], []
        with contextlib.suppress(sqlite3.Error):
            self.db.rollback()

    def close(self) -> None:
        self._insert()
        self.db.commit()
        self.db.close()  # first: a durable commit racing the close fails there, not on the log
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None
