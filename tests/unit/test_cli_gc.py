"""The command line server keeps start-up objects out of the cyclic collector and makes
full collections rarer (a full pass over a thousand players' objects is a 25 ms pause)."""

import gc

from srspy import cli


def test_tune_gc_freezes_startup_and_spaces_full_collections():
    before = gc.get_threshold()
    try:
        junk = [[i] for i in range(1000)]  # objects alive at start-up
        cli._tune_gc()
        assert gc.get_freeze_count() >= len(junk)
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2] and full >= 100
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
