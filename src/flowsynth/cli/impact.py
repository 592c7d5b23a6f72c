"""``flowsynth impact ...``: the impact instrument's commands (describe, dataset, train, generate, render, play)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``impact`` and its sub-commands."""
    parser = subparsers.add_parser("impact", help="descriptor-controlled impact generator (the Neurorack)")
    commands = parser.add_subparsers(dest="impact_command", metavar="SUBCOMMAND", required=True)
    _add_describe(commands)


def _add_describe(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("describe", help="print (and plot) the 7 descriptor curves of a sound")
    p.add_argument("audio", type=Path, help="a WAV/FLAC/AIFF file")
    p.add_argument("--png", type=Path, help="write a plot of the curves to this PNG file")
    p.add_argument("--json", action="store_true", help="print every frame's values as JSON instead of a table")
    p.add_argument("--sample-rate", type=int, default=22050, help="analysis sample rate in Hz (default 22050)")
    p.set_defaults(func=_run_describe)


def _run_describe(args: argparse.Namespace) -> int:
    from flowsynth.impact._io import load_mono
    from flowsynth.impact.descriptors import DescriptorConfig, describe
    from flowsynth.impact.report import curves_table, curves_to_json, plot_curves

    config = DescriptorConfig(sample_rate=args.sample_rate)
    curves = describe(load_mono(args.audio, config.sample_rate), config)
    if args.json:
        print(json.dumps(curves_to_json(curves, config)))
    else:
        print(f"{args.audio}: {curves.shape[1]} frames at {config.frame_rate_hz:.2f} frames/s")
        print(curves_table(curves))
    if args.png:
        plot_curves(curves, config, args.png, title=args.audio.name)
    return 0
