"""The ``flowsynth`` command: parses arguments and hands them to the library."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from flowsynth import __version__
from flowsynth.errors import FlowsynthError

__all__ = ["main", "build_parser"]

#: Modules of :mod:`flowsynth.cli` that each add commands with ``register(subparsers)``.
COMMAND_MODULES = (
    "flowsynth.cli.synths",
    "flowsynth.cli.dataset",
    "flowsynth.cli.demo",
    "flowsynth.cli.models",
    "flowsynth.cli.match",
    "flowsynth.cli.impact",
    "flowsynth.cli.control",
)


def build_parser() -> argparse.ArgumentParser:
    """Builds the parser of every command."""
    parser = argparse.ArgumentParser(prog="flowsynth", description=__doc__)
    parser.add_argument("--version", action="version", version=f"flowsynth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; user mistakes print one line and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FlowsynthError, ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"flowsynth {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flowsynth {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
