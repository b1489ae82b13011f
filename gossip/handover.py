"""What a node taken out hands over to the rest, decided with no I/O.

A node may hold messages no other node has: one it held for want of a peer, or had not
passed on yet. ``remove-node`` gives each to a live node as a copy relayed from the leaving
node, and that node passes it on as it would any copy.
"""

from __future__ import annotations

from typing import Any

HeldCopy = tuple[str, str, tuple[int, ...], float]
"""A message a leaving node holds, as it hands it over: id, text, first path, sent time."""


def handed_over(held: list[HeldCopy], theirs: set[str], receiver: int) -> list[dict[str, Any]]:
    """The ``/RELAY`` payloads that hand node ``receiver``, which holds ``theirs``, every
    message of ``held`` it lacks. A copy whose walk passed through the receiver is left
    out: a node refuses a walk that comes back to it."""
    return [
        {"id": message_id, "text": text, "path": list(path), "sent": sent, "relays": 1}
        for message_id, text, path, sent in held
        if message_id not in theirs and receiver not in path
    ]
