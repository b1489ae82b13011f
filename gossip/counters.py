"""What a node counts of its own work, so a network's cost can be measured (no I/O).

Each ``Node`` keeps one ``Counters``. The core counts what it decides (copies, duplicates,
messages submitted, links lost and made); the I/O that carries frames counts them, one
per frame, as it hands them over (``sent``), and ``gossip.answers.answer`` counts every
request frame it answers. Plain integers and ``collections.Counter``s, bumped under the
node's lock the caller already holds: the hot path pays an increment per frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from gossip.sends import Send


class Counters:
    """Totals since the node started; ``report`` is what ``/STATUS`` says of them."""

    def __init__(self) -> None:
        self.frames_in: Counter[str] = Counter()
        """Request frames the node answered, by command (``RELAY``, ``SYNC``, ...)."""
        self.frames_out: Counter[str] = Counter()
        """Request frames the node sent other nodes, by command."""
        self.copies = 0
        """Relayed copies received (by gossip or catch-up), recorded or not."""
        self.duplicates = 0
        """Copies of a message the node already held: what redundancy costs."""
        self.submitted = 0
        """Messages clients submitted to this node (a retry of one is not counted again)."""
        self.link_breaks = 0
        """Peers dropped: they left, died, or stopped answering."""
        self.heals = 0
        """Links made while the node was short of the peers it aims for."""
        self.merges = 0
        """Links made again with a peer lost for silence: a cut mended."""
        self.pulls = 0
        """Messages the node got by pulling them in catch-up."""

    def sent(self, sends: Iterable[Send]) -> None:
        """These frames go out now (call with the node's lock held)."""
        frames_out = self.frames_out
        for send in sends:
            frames_out[send.kind] += 1

    def report(self) -> dict[str, Any]:
        return {
            "frames_in": dict(self.frames_in),
            "frames_out": dict(self.frames_out),
            "copies": self.copies,
            "duplicates": self.duplicates,
            "submitted": self.submitted,
            "link_breaks": self.link_breaks,
            "heals": self.heals,
            "merges": self.merges,
            "pulls": self.pulls,
        }
