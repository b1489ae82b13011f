"""The error a user can act on, in a module of its own.

Every layer raises it (client, server, topology, network files, the run directory, the
CLI), so importing it must pull in nothing else, least of all the run directory's state
handling.
"""

from __future__ import annotations


class GossipError(Exception):
    """A problem the user can fix; its text is the one line the CLI prints."""


class UsageError(GossipError):
    """The command line is wrong in itself, whatever the network (exit status 2): a value
    out of range, one that cannot be read, a combination that cannot be."""
