"""Socket options gossip's connections share, in a module of their own.

The client's one-off connections and a node's peer links both set them; neither imports
the other for them, and this module imports nothing but the standard library.
"""

from __future__ import annotations

import struct

LINGER_ABORT = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: ``close`` resets the connection instead of lingering."""
