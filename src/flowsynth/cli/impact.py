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
    _add_dataset(commands)
    _add_train(commands)


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


def _add_dataset(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("dataset", help="cut real drum-kit recordings into a one-shot dataset (HDF5)")
    p.add_argument("--out", type=Path, required=True, help="HDF5 file to write (atomically)")
    p.add_argument("--kits", type=Path, nargs="+", help="kit folders (default: Debian's hydrogen-drumkits)")
    p.add_argument("--duration-s", type=float, default=1.0, help="clip length in seconds (default 1.0)")
    p.add_argument("--sample-rate", type=int, default=22050, help="clip sample rate in Hz (default 22050)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/valid/test split (default 0)")
    p.add_argument("--limit", type=int, help="use only the first N files (for quick trials)")
    p.set_defaults(func=_run_dataset)


def _run_dataset(args: argparse.Namespace) -> int:
    from flowsynth.impact.dataset import DEFAULT_KITS, DatasetSpec, build_dataset, find_sources

    spec = DatasetSpec(sample_rate=args.sample_rate, duration_s=args.duration_s, seed=args.seed)
    sources = find_sources(args.kits or [DEFAULT_KITS])
    if args.limit is not None:
        sources = sources[: max(args.limit, 0)]
    summary = build_dataset(args.out, sources, spec, progress=_progress("cutting"))
    print(
        f"\n{args.out}: {summary['clips']} clips from {summary['instruments']} instruments, "
        f"{summary['per_split']}, {summary['duplicates']} duplicates dropped, {len(summary['skipped'])} skipped"
    )
    return 0


def _progress(what: str):
    import sys

    def report(done: int, total: int) -> None:
        if done % 25 == 0 or done == total - 1:
            print(f"\r{what} {done + 1}/{total}", end="", file=sys.stderr, flush=True)

    return report


def _add_train(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="train the generator (resumes from OUT/last.pt when present)")
    p.add_argument("--data", type=Path, required=True, help="dataset made by 'flowsynth impact dataset'")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints last.pt, best.pt, rewind.pt)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps of the whole run (default 3000)")
    p.add_argument("--minutes", type=float, help="stop this call after M minutes (resume later)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--harmonics", type=int, default=48)
    p.add_argument("--valid-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from flowsynth.impact.train import TrainConfig, train

    config = TrainConfig(
        steps=args.steps,
        minutes=args.minutes,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        valid_every=args.valid_every,
        rewind_step=min(args.valid_every, args.steps),
        seed=args.seed,
        threads=args.threads,
    )
    kwargs = {"hidden_size": args.hidden_size, "num_harmonics": args.harmonics}
    summary = train(args.data, args.out, config, kwargs, log=lambda line: print(line, flush=True))
    print(
        f"{args.out}: {summary['steps']} steps, best valid loss {summary['best_valid']:.3f}, "
        f"{summary['parameters']} parameters"
    )
    return 0
