"""gossip: a peer-to-peer network of TCP nodes that spread messages with a gossip protocol."""

__version__ = "0.1.0"
