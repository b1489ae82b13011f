"""The frame commands, named once: the codec, the core, the server and the client use these."""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    """What a frame asks or answers; its value is the name on the wire (``/RELAY``)."""

    # A client's requests
    NEW = "NEW"
    GET = "GET"
    READ = "READ"
    PEERS = "PEERS"
    STATUS = "STATUS"
    REMOVE = "REMOVE"
    # Between nodes: spreading, health, membership
    RELAY = "RELAY"
    RELAYS = "RELAYS"
    PING = "PING"
    LEAVE = "LEAVE"
    INTRODUCE = "INTRODUCE"
    CONNECT = "CONNECT"
    WALK = "WALK"
    JOIN = "JOIN"
    SWAP = "SWAP"
    # Repair across cuts
    SEEK = "SEEK"
    FOUND = "FOUND"
    MERGE = "MERGE"
    # Catch-up
    SYNC = "SYNC"
    IDS = "IDS"
    PULL = "PULL"
    # The lab: network conditions imposed from outside
    CONDITIONS = "CONDITIONS"
    # Replies and greeting
    OK = "OK"
    ERR = "ERR"
    MSGS = "MSGS"
    COPY = "COPY"
    HELLO = "HELLO"


OVER_CONNECTION = frozenset(
    {
        Command.RELAY,
        Command.RELAYS,
        Command.PING,
        Command.WALK,
        Command.SYNC,
        Command.SEEK,
        Command.FOUND,
    }
)
"""What a node sends its peers over their long-lived connections; other frames go on a
connection of their own."""

RELAYING = frozenset({Command.RELAY, Command.RELAYS})
"""Frames that hand on copies of messages: one, or several in a row for one peer."""

REPLY_ENDS = frozenset({Command.OK, Command.ERR})
"""The frames that end a reply: what comes before them (``/MSGS``, ``/COPY``) is part of it."""
