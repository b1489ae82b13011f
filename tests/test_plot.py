"""The pictures draw whatever text a user gave them: a message, a strategy's name."""

from __future__ import annotations

from pathlib import Path

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
