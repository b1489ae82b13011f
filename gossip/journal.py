"""What a node writes down so a restart does not forget it: held messages and peers."""

from __future__ import annotations

from dataclasses import dataclass

from gossip.protocol import Copy, MessageView
from gossip.sends import Address


@dataclass(slots=True)
class Message:
    """What a node holds of one message: every copy that reached it, in arrival order.

    A node holds thousands, so it keeps no ``__dict__`` and a tuple of peers rather than
    a dict of counts."""

    id: str
    text: str
    sent: float
    relays: int
    copies: list[Copy]
    read: bool = False
    relayed: tuple[int, ...] = ()
    """The peers this node sent a copy to, once per copy: at most ``relays`` times each."""
    row: tuple[int, bool, bytes] | None = None
    """The message as a read last listed it (``encoded_row``), and the copies and read
    mark it showed: still right while those are the same, as copies are only added."""

    def view(self) -> MessageView:
        return MessageView(self.id, self.text, self.sent, tuple(self.copies), self.read)


class Journal:
    """Where a node writes down what it must not forget; this one forgets everything.

    ``gossip.store.Store`` keeps it in SQLite, so a restarted node has its history.
    """

    def message_added(self, message: Message) -> None:
        """A message this node did not hold before (its copies follow)."""

    def copy_added(self, message_id: str, copy: Copy) -> None:
        """Another copy of a held message arrived."""

    def marked_read(self, ids: list[str]) -> None:
        """A client read these messages."""

    def peers_changed(self, peers: dict[int, Address], wanted: int) -> None:
        """The node's peers now, and how many it aims to hold."""
