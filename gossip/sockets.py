"""Socket options gossip's connections share, in a module of their own.

The client's one-off connections and a node's peer links both set them and read with a
deadline; neither imports the other for them, and this module imports nothing but the
standard library.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from typing import Any

LINGER_ABORT = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: ``close`` resets the connection instead of lingering."""


class TimedReader(io.RawIOBase):
    """A socket's reading side whose reads end by ``deadline`` (monotonic; None: none).

    A socket's timeout bounds each ``recv`` alone: a peer that trickles a byte at a time
    could hold a read, and the thread in it, for ever.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def timed_stream(sock: socket.socket) -> tuple[TimedReader, io.BufferedReader]:
    """A buffered stream of what ``sock`` receives, and the reader whose deadline it keeps."""
    reader = TimedReader(sock)
    return reader, io.BufferedReader(reader)
