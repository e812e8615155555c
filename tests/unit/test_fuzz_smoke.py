"""A short run of tools/fuzz.py with a fixed seed: every parser refuses mutated input with
its own exception and nothing else (the long runs are in README.md, Hardening)."""

import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "fuzz.py")


def _fuzz():
    spec = importlib.util.spec_from_file_location("srspy_fuzz_tool", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fuzz = _fuzz()


@pytest.mark.parametrize("target, count", [
    ("amf0", 3000), ("chunk", 3000), ("handshake", 1000), ("http", 3000), ("flv", 3000), ("config", 300),
])
def test_parser_fuzz_smoke(target, count):
    r = fuzz.run_parser(target, count, 60.0, seed=20261206, out=None, quiet=True)
    assert r["inputs"] == count
    assert r["findings"] == 0, r["first_finding"]
    assert 0 < r["refused"] < count  # the mutations reach both the refusals and the successes


def test_mutations_are_deterministic_per_seed():
    import random

    corpus = fuzz.corpus_http()
    a = [fuzz.mutate(random.Random(5), c, corpus) for c in corpus]
    b = [fuzz.mutate(random.Random(5), c, corpus) for c in corpus]
    assert a == b and a != corpus
