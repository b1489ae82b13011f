"""The ``gossip`` script and ``python -m gossip``: the command line, with a Ctrl-C that
comes while it is still importing (a few hundred milliseconds on a slow machine) said in
one line, as one that comes later is, not as a traceback."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from gossip.cli import main as command_line

        return command_line()
    except KeyboardInterrupt:
        print("gossip: interrupted", file=sys.stderr)
        return 130
