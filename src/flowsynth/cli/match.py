"""``flowsynth match``: a sound in, the synth preset that sounds closest to it out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flowsynth.system import usable_cores

__all__ = ["register"]

#: Threads of a match: the cores this process may use, at most 4 (the ranking's STFTs use them).
DEFAULT_THREADS = usable_cores(4)
DEFAULT_CANDIDATES = 32
DEFAULT_REFINE_STEPS = 200
DEFAULT_BUDGET_S = 15.0


def _hold(text: str) -> str | float:
    if text in ("both", "auto", "model"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hold takes both, auto, model or seconds, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``match`` command."""
    parser = subparsers.add_parser(
        "match",
        help="find the synth preset closest to a sound (any audio file: instrument, drum hit, voice)",
        description="Find the synth parameters that sound closest to TARGET: the model's posterior gives "
        "candidates, rendered at the target's pitch and ranked by audio distance, then refined within a "
        "budget. Writes preset.json, match.wav, target.wav, spectrograms.png and report.json to --out.",
    )
    parser.add_argument("target", type=Path, help="the sound to match (wav, flac, ogg, aiff, mp3)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--model", help="model checkpoint (default: the shipped model); 'none' for model-free search")
    parser.add_argument("--synth", help="synth to match with (default: the model's; required with --model none)")
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="posterior draws to try")
    parser.add_argument(
        "--refine", type=int, default=DEFAULT_REFINE_STEPS, metavar="STEPS", help="refinement steps (0: none)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=DEFAULT_BUDGET_S, help="wall-time budget of the whole match, in seconds"
    )
    parser.add_argument("--metric", choices=("mr_stft", "mfcc_l1"), default="mr_stft", help="ranking distance")
    parser.add_argument(
        "--optimizer",
        choices=("auto", "gradient", "cma"),
        default="auto",
        help="refinement (auto: gradient if possible)",
    )
    parser.add_argument(
        "--hold",
        type=_hold,
        default="both",
        help="note hold time: auto (the target's), model (the model's sounds'), both (the better), or seconds",
    )
    parser.add_argument(
        "--no-reference-note", action="store_true", help="play the target's note only (not the model's note too)"
    )
    parser.add_argument("--note", type=float, help="MIDI note to play the synth at (default: the target's pitch)")
    parser.add_argument("--no-hints", action="store_true", help="do not try the target's envelope and vibrato")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws, the optimizer and the synth's noise")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch CPU threads (default {DEFAULT_THREADS}: this machine's cores, at most 4; the ranking's STFTs use them)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from flowsynth.matching import MatchSettings, load_match_model, match, write_match
    from flowsynth.synth import get_synth

    if args.threads < 1:
        raise ValueError("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    model = load_match_model(args.model)
    if model is None and not args.synth:
        raise ValueError("--model none needs --synth NAME (the synth to search)")
    synth = get_synth(args.synth) if args.synth else None
    settings = MatchSettings(
        candidates=args.candidates,
        refine_steps=args.refine,
        budget_s=args.budget_s,
        metric=args.metric,
        optimizer=args.optimizer,
        hints=not args.no_hints,
        hold=args.hold,
        note=args.note,
        reference_note=not args.no_reference_note,
        seed=args.seed,
    )
    result = match(args.target, model, synth, settings)
    paths = write_match(result, args.out)
    print(json.dumps(result.report, indent=2) if args.json else _summary(result.report, paths))
    return 0


def _summary(report: dict, paths: dict) -> str:
    target, metrics = report["target"], report["metrics"]
    pitch = f"{target['pitch_hz']:.1f} Hz" if target["pitched"] else "unpitched"
    lines = [
        f"{target['source']}: {pitch}, played at MIDI {target['note']:g} on {report['synth']}",
        *(f"  note: {remark}" for remark in target["remarks"]),
        "  " + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()),
        "  "
        + ", ".join(f"{stage} {info['time_s']:.2f} s" for stage, info in report["stages"].items())
        + f" (total {report['time_s']:.2f} s)",
        f"  preset: {paths['preset']}; sounds and report in {Path(paths['report']).parent}",
    ]
    return "\n".join(lines)
