"""Shared helpers of the impact tests: the command line and real drum recordings."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from flowsynth.cli import impact as impact_module

KITS = Path("/usr/share/hydrogen/data/drumkits")


def _run_impact_cli(argv: Sequence[str]) -> int:
    """Runs ``flowsynth impact ...`` through the command's own parser (exceptions propagate)."""
    parser = argparse.ArgumentParser(prog="flowsynth")
    impact_module.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["impact", *argv])
    return int(args.func(args) or 0)


@pytest.fixture
def impact_cli() -> Callable[[Sequence[str]], int]:
    """A function running ``flowsynth impact ARGV...`` and returning its exit code."""
    return _run_impact_cli


@pytest.fixture
def kits() -> Path:
    """The folder of Debian's hydrogen-drumkits (real recorded one-shots)."""
    if not KITS.is_dir():
        pytest.skip("Debian package hydrogen-drumkits is not installed")
    return KITS
