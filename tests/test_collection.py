"""``held_off``: the collector is off inside, as it was after; with ``promote``, what the
block kept skips the young generations, except in a process that froze objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gossip.collection import held_off


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    running = gc.isenabled()
    yield
    gc.unfreeze()
    if running:
        gc.enable()
    else:
        gc.disable()


def oldest_holds(thing: object) -> bool:
    return any(o is thing for o in gc.get_objects(generation=2))


def test_the_collector_is_off_inside_and_on_after() -> None:
    gc.enable()
    with held_off():
        assert not gc.isenabled()
        with held_off():  # nested, or from another thread: the outer one turns it on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_found_off_stays_off_and_nothing_moves() -> None:
    gc.disable()
    with held_off(promote=True):
        kept = [(n, (n, 1.0)) for n in range(1000)]
    assert not gc.isenabled()
    assert not oldest_holds(kept)


def test_what_the_block_kept_goes_to_the_oldest_generation_if_promoted() -> None:
    gc.enable()
    with held_off(promote=True):
        kept = [(n, (n, 1.0)) for n in range(50_000)]
    assert oldest_holds(kept)
    assert gc.get_count()[0] < 1000  # no young generation left to walk
    assert gc.get_freeze_count() == 0


def test_unless_promoted_what_the_block_kept_stays_young() -> None:
    """A node's listing: asking whether objects are frozen would walk them all."""
    gc.enable()
    with held_off():
        kept = [(n, (n, 1.0)) for n in range(1000)]
    assert not oldest_holds(kept)


def test_objects_a_process_froze_stay_frozen() -> None:
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    with held_off(promote=True):
        kept = [(n, (n, 1.0)) for n in range(1000)]
    assert gc.get_freeze_count() == frozen
    assert not oldest_holds(kept)
