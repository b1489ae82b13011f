"""Authenticated connections, with no I/O: the hello, and a seal on every frame.

A node opens every connection with ``/HELLO {"auth": true, "nonce": ...}``, a fresh
random nonce. From then on each frame either way ends with `` #`` and an HMAC-SHA256 of
the network's secret over: which way it goes, the nonce, how many frames went that way
before it, and the frame itself. So a frame is obeyed only from someone holding the
secret, and only once, on the connection and at the place it was made for: a frame
replayed on another connection, repeated, reordered, or reflected back fails its seal.

A network started with ``--insecure`` has no secret: its hello says ``"auth": false``
and frames go bare, readable and typeable with ``nc``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from gossip.commands import Command
from gossip.protocol import (
    MAX_FRAME_BYTES,
    Frame,
    FrameError,
    decode_frame,
    encode_frame,
    read_frame,
    read_line,
)

SECRET_BYTES = 32
NONCE_HEX = 32
MAC_HEX = 2 * hashlib.sha256().digest_size
SEAL_BYTES = len(" #") + MAC_HEX
MAX_LINE_BYTES = MAX_FRAME_BYTES + SEAL_BYTES
"""Longest line on the wire: the largest frame and its seal."""

TO_NODE = b"C"
TO_CLIENT = b"S"
"""Which way a frame goes, part of what its seal covers, so a reply can't pass as a request."""


class AuthError(FrameError):
    """A frame whose seal is missing or wrong, or a hello that does not match our secret."""


class Refused(FrameError):
    """The node turned the connection away before its hello (it is busy, say)."""


def new_secret() -> bytes:
    """A network's secret, as the hex text its file holds."""
    return secrets.token_hex(SECRET_BYTES).encode()


def new_nonce() -> str:
    return secrets.token_hex(NONCE_HEX // 2)


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> tuple[Any, Any]:
    """SHA-256 already fed the key's inner and outer pads (RFC 2104): HMAC-SHA256 of a
    frame is then two copies and two updates, where ``hmac.new`` keyed them afresh for
    every frame, which cost more than hashing the frame."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in padded)),
        hashlib.sha256(bytes(b ^ 0x5C for b in padded)),
    )


@dataclass
class Seal:
    """One direction of one connection: seals or checks its frames in order."""

    key: bytes | None
    nonce: str
    direction: bytes
    count: int = field(default=0)

    def __post_init__(self) -> None:
        self._head = self.direction + self.nonce.encode()
        self._pads = None if self.key is None else _keyed(self.key)

    def _mac(self, body: bytes) -> bytes:
        """HMAC-SHA256 of the key over the direction, nonce, count and ``body``, in hex."""
        assert self._pads is not None
        inner, outer = self._pads[0].copy(), self._pads[1].copy()
        inner.update(self._head + self.count.to_bytes(8, "big") + body)
        outer.update(inner.digest())
        return outer.hexdigest().encode()

    def seal(self, frame: bytes) -> bytes:
        """``frame`` (ending in a newline) as it goes on the wire."""
        if self.key is None:
            return frame
        body = frame.removesuffix(b"\n")
        sealed = body + b" #" + self._mac(body) + b"\n"
        self.count += 1
        return sealed

    def open(self, line: bytes) -> bytes:
        """The frame inside ``line``, or AuthError if its seal is not the one expected next."""
        if self.key is None:
            return line
        body, mark, mac = line.removesuffix(b"\n").removesuffix(b"\r").rpartition(b" #")
        if not mark:
            raise AuthError("frame is not authenticated: it carries no seal")
        if not hmac.compare_digest(mac, self._mac(body)):
            raise AuthError(
                "frame is not authenticated: its seal is wrong (another network's secret?) "
                "or replayed"
            )
        self.count += 1
        return body + b"\n"


@dataclass
class Channel:
    """Both directions of one connection, from one end's point of view."""

    outgoing: Seal
    incoming: Seal

    @classmethod
    def for_node(cls, key: bytes | None) -> tuple[Channel, bytes]:
        """A node's end of a new connection, and the hello it sends first."""
        secure = key is not None
        nonce = new_nonce() if secure else ""
        hello = encode_frame(
            Command.HELLO, {"auth": True, "nonce": nonce} if secure else {"auth": False}
        )
        return cls(Seal(key, nonce, TO_CLIENT), Seal(key, nonce, TO_NODE)), hello

    @classmethod
    def for_client(cls, key: bytes | None, hello: Frame) -> Channel:
        """The connecting end, from the node's hello; AuthError if the two disagree on auth."""
        if hello.command != Command.HELLO:
            raise AuthError(f"expected /HELLO first, got /{hello.command}")
        secure = hello.payload.get("auth")
        nonce = hello.payload.get("nonce")
        if not isinstance(secure, bool):
            raise AuthError("its hello does not say whether it authenticates")
        if secure is True and key is None:
            raise AuthError("it requires authentication, and this side has no network secret")
        if secure is False and key is not None:
            raise AuthError("it runs without authentication (--insecure); this side has a secret")
        if secure is True and not (isinstance(nonce, str) and len(nonce) == NONCE_HEX):
            raise AuthError("its hello carries no valid nonce")
        nonce = nonce if secure else ""
        return cls(Seal(key, nonce, TO_NODE), Seal(key, nonce, TO_CLIENT))

    def send(self, frame: bytes) -> bytes:
        return self.outgoing.seal(frame)

    def receive(self, line: bytes) -> Frame:
        """The frame in a line that came in; FrameError (AuthError) if it is not one.

        A node refuses a frame whose seal is wrong with a bare ``/ERR`` (whoever sent it
        may not hold the secret); the connecting end takes that as the refusal it is.
        """
        try:
            return decode_frame(self.incoming.open(line))
        except AuthError:
            if self.incoming.direction == TO_CLIENT and line.startswith(b"/ERR "):
                with contextlib.suppress(FrameError):
                    return decode_frame(line)
            raise

    @classmethod
    def connect(cls, key: bytes | None, stream: BinaryIO) -> Channel:
        """The connecting end, once it has read the node's hello from ``stream``."""
        hello = read_frame(stream)
        if hello is None:
            raise FrameError("connection closed before the hello")
        if hello.command == Command.ERR:
            raise Refused(str(hello.payload.get("error")))
        return cls.for_client(key, hello)

    def read(self, stream: BinaryIO) -> Frame | None:
        """The next frame from ``stream``; None at a clean end. Raises FrameError."""
        line = read_line(stream, MAX_LINE_BYTES)
        return None if line is None else self.receive(line)
