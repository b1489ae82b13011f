"""matplotlib as every picture of the tool uses it, imported only when one is drawn."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files (Agg), with text drawn as it is given: a
    message or a strategy named with ``$`` in it is not a formula (matplotlib would read
    ``$...$`` as mathtext, and fail on one it cannot parse)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt
