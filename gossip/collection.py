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
def held_off(promote: bool = False) -> Iterator[None]:
    """Run the block with the cyclic collector held off, then as it was.

    ``promote`` (a client's read): what the block made and kept goes straight to the
    oldest generation, where a first collection would have moved it only after walking it
    all (a read of 10,000 messages keeps 80,000 tuples: the walk took a fifth of the
    read). Not where the process froze objects (``gc.freeze``): thawing them would make the
    collector touch, and so copy, every page a node inherited from its supervisor; and
    asking whether any are frozen walks them all, so a node never asks.

    Another thread may hold it off too: the one that found it running turns it back on.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            if promote and gc.get_freeze_count() == 0:
                gc.freeze()  # every tracked object to the permanent generation, at no cost
                gc.unfreeze()  # and from there to the oldest
            gc.enable()
