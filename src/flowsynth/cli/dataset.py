"""``flowsynth render-dataset`` and ``flowsynth dataset-info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flowsynth.system import usable_cores

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the dataset commands."""
    render = subparsers.add_parser("render-dataset", help="render a dataset of sounds and features (resumable)")
    render.add_argument("--synth", default="builtin-32", help="synth name (see `flowsynth synths`)")
    render.add_argument("--n", type=int, default=10000, help="number of sounds")
    render.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    render.add_argument("--seed", type=int, default=0, help="seed of the parameters, the noise and the split")
    render.add_argument(
        "--workers", type=int, default=usable_cores(), help="local worker processes (default: usable cores)"
    )
    render.add_argument("--scheduler", help="Dask distributed scheduler address (tcp://HOST:PORT)")
    render.add_argument("--presets", help="sample around presets: 'factory' (the synth's banks) or a JSON file")
    render.add_argument("--spread", type=float, default=0.1, help="std of the perturbations around presets")
    render.add_argument("--random-fraction", type=float, default=0.2, help="share of uniform random patches")
    render.add_argument("--chunk-size", type=int, default=64, help="sounds per work unit")
    render.add_argument("--audio", action="store_true", help="store the audio too")
    render.add_argument("--note", type=float, default=60.0)
    render.add_argument("--velocity", type=int, default=100)
    render.add_argument("--note-s", type=float, default=3.0)
    render.add_argument("--render-s", type=float, default=4.0)
    render.add_argument("--sample-rate", type=int, default=22050)
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=run_render)

    info = subparsers.add_parser("dataset-info", help="counts, parameter ranges and descriptor statistics")
    info.add_argument("path", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_render(args: argparse.Namespace) -> int:
    from flowsynth.data import RenderJob, render_dataset
    from flowsynth.synth import RenderConfig, get_synth
    from flowsynth.synth.presets import load_presets

    if args.n < 1 or args.chunk_size < 1 or args.workers < 1:
        raise ValueError("--n, --chunk-size and --workers must be at least 1")
    synth = get_synth(args.synth)
    config = RenderConfig(args.note, args.velocity, args.note_s, args.render_s, args.sample_rate)
    presets = load_presets(synth, args.presets) if args.presets else None
    sampling = {"spread": args.spread, "random_fraction": args.random_fraction} if presets else {}
    job = RenderJob(synth.describe(), config.describe(), args.n, args.seed, args.chunk_size, args.audio, sampling)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    counts = render_dataset(args.out, job, presets, args.workers, args.scheduler, progress=not args.quiet)
    print(f"{args.out}: {counts['kept']} sounds kept, {counts['silent']} silent and {counts['broken']} broken dropped")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from flowsynth.data.info import dataset_info, format_info

    info = dataset_info(args.path)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
