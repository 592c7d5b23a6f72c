"""``flowsynth demo``: the main job on the built-in default."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the demo command."""
    demo = subparsers.add_parser("demo", help="render sounds of the built-in synth with a spectrogram and summary")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--synth", default="builtin-32")
    demo.add_argument("--count", type=int, default=4, help="number of sounds")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flowsynth.demo import run_demo

    if args.count < 1:
        raise ValueError("--count must be at least 1")
    summary = run_demo(args.out, args.synth, args.count, args.seed)
    print(f"rendered {len(summary['sounds'])} sounds of {summary['synth']} in {summary['render_time_s']:.2f} s")
    print(f"wrote {args.out}/: sound-*.wav, {summary['spectrograms']}, summary.json")
    return 0
