"""``flowsynth demo``: the main job on the built-in default."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the demo command (its defaults live in :mod:`flowsynth.demo`, imported only when it runs)."""
    demo = subparsers.add_parser(
        "demo", help="the shipped model matches sounds it never heard: target and match audio, spectrograms, metrics"
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--model", help="shipped model name (default: builtin-32-flow_reg)")
    demo.add_argument("--count", type=int, default=3, help="number of sounds")
    demo.add_argument("--seed", type=int, help="seed of the random sounds (default: 20261127)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flowsynth.demo import DEFAULT_MODEL, DEMO_SEED, run_demo

    if args.count < 1:
        raise ValueError("--count must be at least 1")
    seed = DEMO_SEED if args.seed is None else args.seed
    summary = run_demo(args.out, args.model or DEFAULT_MODEL, args.count, seed)
    metrics = summary["metrics"]
    print(
        f"{summary['model']} matched {len(summary['sounds'])} new sounds of {summary['synth']} "
        f"({summary['learned_params']} parameters) in {summary['inference_s'] * 1000:.0f} ms: "
        f"spectral convergence {metrics['sc']['mean']:.3f}, MFCC-L1 {metrics['mfcc_l1']['mean']:.2f}, "
        f"log-spectral distance {metrics['lsd']['mean']:.1f} dB"
    )
    print(f"wrote {args.out}/: target-*.wav, match-*.wav, spectrograms.png, summary.json")
    return 0
