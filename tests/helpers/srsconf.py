"""SRS's own sample configs (trunk/conf of SRS), for the tests that load every one of them.

They are not part of this repository: the tests that need them read the folder named by
the ``SRSPY_SRS_CONF_DIR`` environment variable (a path relative to the repository root, or
absolute) and carry the ``srs_conf`` marker. Without the variable, tests/conftest.py leaves
them out at collection and says so in one line; with it, a missing or empty folder fails
them (its placeholder sample does not load)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "SRSPY_SRS_CONF_DIR"
ROOT = Path(__file__).resolve().parents[2]

srs_conf = pytest.mark.srs_conf


def srs_conf_dir() -> Path | None:
    """The folder ``SRSPY_SRS_CONF_DIR`` names, resolved against the repository root; None when unset."""
    value = os.environ.get(ENV, "").strip()
    return (ROOT / value).resolve() if value else None


def srs_samples(folder: Path | None) -> list[Path]:
    """Every ``*.conf`` in ``folder``, or one placeholder that fails to load (never an empty list,
    which pytest would turn into a skip)."""
    if folder is None:
        folder = ROOT / f"unset-{ENV}"
    return sorted(folder.glob("*.conf")) or [folder / "missing-srs-samples.conf"]
