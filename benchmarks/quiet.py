"""Imported first by every benchmark script: a Ctrl-C or SIGTERM that comes while the
script is still importing (a few hundred milliseconds) ends it in one line, not with a
traceback. Nothing has started yet then; ``harness.guarded`` takes over once it runs."""

import os
import signal
import sys
from pathlib import Path


def _leave(signum: int, frame: object) -> None:
    os.write(2, f"{Path(sys.argv[0]).name}: interrupted\n".encode())
    os._exit(130)


signal.signal(signal.SIGINT, _leave)
signal.signal(signal.SIGTERM, _leave)
