"""matplotlib as every picture of the tool uses it, imported only when one is drawn."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import Any

TITLE_WIDTH = 72
"""Characters of a title per line: a longer line runs off the picture's edges."""


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


def heading(text: str) -> str:
    """A picture's title: drawable, and wrapped to fit inside the picture."""
    return textwrap.fill(drawable(text), TITLE_WIDTH)


def save(plt: Any, figure: Any, path: Path) -> Path:
    """Write the figure to ``path`` and close it. One that could not be written leaves no
    file behind (a full disk left an empty one, or half a PNG), but a file the write never
    opened (not the user's to write, say) stays as it was."""
    before = _written(path)
    try:
        figure.savefig(path)
    except OSError:
        with contextlib.suppress(OSError):
            if path.is_file() and _written(path) != before:
                path.unlink()
        raise
    finally:
        plt.close(figure)
    return path


def _written(path: Path) -> tuple[int, int] | None:
    """When a file was last written and its size (None: no file there)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
