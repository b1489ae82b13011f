"""matplotlib as every picture of the tool uses it, imported only when one is drawn."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files (Agg), with text drawn as it is given: a
    message or a strategy named with ``$`` in it is not a formula (matplotlib would read
    ``$...$`` as mathtext, and fail on one it cannot parse)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    # Text is made drawable first (``drawable``); a glyph missing elsewhere (a strategy's
    # name) is a box in the picture, not a warning with a file and line on the terminal.
    warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
    import matplotlib.pyplot as plt

    return plt


def drawable(text: str) -> str:
    """``text`` with each character the pictures' font lacks written as its escape
    (``\\U0001f389``), as the terminal shows control characters: legible, not a box."""
    from matplotlib import font_manager

    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    return "".join(
        c if c == "\n" or font.get_char_index(ord(c)) else c.encode("unicode_escape").decode()
        for c in text
    )
