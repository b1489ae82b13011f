"""The pictures draw whatever text a user gave them: a message, a strategy's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gossip import labplots, plot
from gossip.experiment import Result
from gossip.spread import Arrival
from gossip.topology import build
from tests.networks import png_size

# matplotlib reads $...$ as a formula: these failed to parse, or drew something else.
TEXTS = ["$x^{$", "bad $\\frac{1}{$ math", "a_b^c $\\alpha$", "$"]


@pytest.mark.parametrize("text", TEXTS)
def test_a_spread_picture_takes_any_message_text(tmp_path: Path, text: str) -> None:
    topology = build("circular", 4, 3)
    arrivals = [Arrival(1, None, 0, 0.0), Arrival(2, 1, 1, 1.5)]
    picture = plot.draw_spread(topology, arrivals, tmp_path / "spread.png", f"'{text}'")
    assert png_size(picture.read_bytes()) == (840, 840)


@pytest.mark.parametrize("text", TEXTS)
def test_the_labs_pictures_take_any_strategy_name(tmp_path: Path, text: str) -> None:
    done = Result(text, submitted=1, spreads=[[0, 10, 20, 30]], frames=4, live=4)
    done.delivered = 1
    for picture in labplots.draw_all([done], tmp_path, text):
        assert png_size(picture.read_bytes()) == (700, 420)


def test_text_is_drawn_as_given_not_as_a_formula(tmp_path: Path) -> None:
    """``cost $5 and $10`` drew "cost 5*and*10", in italics."""
    from matplotlib.text import Text

    plot.draw_topology(build("circular", 3, 3), tmp_path / "t.png", "cost $5 and $10")
    assert not Text(0, 0, "cost $5 and $10").get_parse_math()


FOREIGN = "héllo ✓ 🎉 日本"
"""Characters the pictures' font has (é, ✓) and lacks (the emoji, the CJK)."""


def test_a_title_the_font_cannot_draw_is_escaped_and_warns_nobody(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """They were boxes in the picture, and matplotlib printed its warnings, with its file
    and line, on the user's terminal."""
    from gossip.canvas import drawable, pyplot

    pyplot()
    assert drawable(FOREIGN) == "héllo ✓ \\U0001f389 \\u65e5\\u672c"
    assert drawable("a\nb") == "a\nb"
    topology = build("circular", 4, 3)
    arrivals = [Arrival(1, None, 0, 0.0), Arrival(2, 1, 1, 1.5)]
    plot.draw_spread(topology, arrivals, tmp_path / "spread.png", FOREIGN)
    done = Result(FOREIGN, submitted=1, spreads=[[0, 10, 20, 30]], frames=4, live=4)
    done.delivered = 1
    labplots.draw_all([done], tmp_path, FOREIGN)
    assert not [w for w in recwarn if "Glyph" in str(w.message)]


def test_a_latency_picture_where_no_message_reached_everyone_says_so(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """At 100 % loss matplotlib warned of an empty legend on the terminal."""
    lost = Result("push", submitted=2, spreads=[[0, 10], [0]], frames=4, live=4)
    picture = labplots.latency_cdf([lost], tmp_path / "cdf.png", "all lost")
    assert png_size(picture.read_bytes()) == (700, 420)
    assert not [w for w in recwarn if "legend" in str(w.message)]


def test_a_long_title_is_wrapped_inside_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message's text in the spread picture's title ran off both edges of the picture."""
    from gossip.canvas import pyplot

    plt = pyplot()
    seen: list[tuple[str, float, float, float]] = []
    close = plt.close

    def measured(figure: Any) -> None:
        heading = figure.axes[0].title
        box = heading.get_window_extent(figure.canvas.get_renderer())
        seen.append((heading.get_text(), box.x0, box.x1, figure.bbox.width))
        close(figure)

    monkeypatch.setattr(plt, "close", measured)
    title = "gossip: '" + "a rather long message about nothing in particular " * 3 + "' reached 16"
    topology = build("circular", 4, 3)
    arrivals = [Arrival(1, None, 0, 0.0), Arrival(2, 1, 1, 1.5)]
    plot.draw_spread(topology, arrivals, tmp_path / "spread.png", title)
    ((text, left, right, width),) = seen
    assert text.replace("\n", " ") == title
    assert left >= 0 and right <= width


def failing_write(path: Path, written: bytes) -> object:
    """A ``savefig`` that opens ``path`` (emptying it), writes ``written``, then finds the
    disk full, as a real write to a full disk does."""

    def savefig(_figure: object, *_args: object, **_options: object) -> None:
        with open(path, "wb") as out:
            out.write(written)
        raise OSError(28, "No space left on device")

    return savefig


@pytest.mark.parametrize("before", [None, b"", b"an earlier picture"])
def test_a_picture_that_could_not_be_written_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: bytes | None
) -> None:
    """``draw`` on a full disk said so, but left an empty live-topology.png behind."""
    from matplotlib.figure import Figure

    path = tmp_path / "live.png"
    if before is not None:
        path.write_bytes(before)
    monkeypatch.setattr(Figure, "savefig", failing_write(path, b"\x89PNG half"))
    with pytest.raises(OSError, match="No space"):
        plot.draw_topology(build("circular", 4, 3), path, "t")
    assert not path.exists()


def test_a_picture_that_could_not_even_be_opened_leaves_the_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before a byte was written (not the user's to write, say): what was there
    stays, as it was."""
    from matplotlib.figure import Figure

    path = tmp_path / "live.png"
    path.write_bytes(b"an earlier picture")

    def refused(_figure: object, *_args: object, **_options: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Figure, "savefig", refused)
    with pytest.raises(PermissionError):
        plot.draw_topology(build("circular", 4, 3), path, "t")
    assert path.read_bytes() == b"an earlier picture"
