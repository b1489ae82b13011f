"""Bulk work without the cyclic garbage collector's passes.

Building or reading a listing of thousands of messages makes hundreds of thousands of
small lists and tuples at once. Each few hundred of them start a collection, and every
so often one that walks everything the process holds (a node's messages, a client's
earlier reads): that took as long as the work itself. None of them can form a cycle,
so reference counting frees them all; the collector is held off while they are made.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def held_off() -> Iterator[None]:
    """Run the block with the cyclic collector held off, then as it was.

    Another thread may hold it off too: the one that found it running turns it back on.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()
