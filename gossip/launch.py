"""The ``gossip`` script and ``python -m gossip``: the command line, with a Ctrl-C that
comes while it is still importing (a few hundred milliseconds on a slow machine) said in
one line, as one that comes later is, not as a traceback.

SIGTERM (``timeout``, ``kill``) and SIGHUP (a closed terminal) end a command as Ctrl-C
does, so what it does when interrupted is done for them too: a start undoes itself or
says the network runs, an experiment stops its network. Left to their default, they
ended the process on the spot, and a start cut short left a network no command knew.
A command that serves until stopped (``start-node``, ``mend``, ``web``) sets its own.
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        from gossip.cli import main as command_line

        return command_line()
    except KeyboardInterrupt:
        print("gossip: interrupted", file=sys.stderr)
        return 130
    finally:  # done and said: one that comes as the process exits changes nothing
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
