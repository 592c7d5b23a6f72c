"""Structured pruning with rewinding (lottery ticket) of the impact generator: size, speed and quality per level.

For each level (hidden units : harmonics [: noise bands [: impulse-response taps [: noise overlap]]]),
channels are chosen by importance in the previous level's trained generator, the kept channels' weights are
taken from the rewind checkpoint (an early step of the dense run), and the small generator is retrained.
Measured on the test split, in the same run as the dense generator: parameters, file size, time to generate
1 s on one thread (all generators timed round-robin in one loop over the first 8 test clips' curves, so that
load changes and voiced or noisy clips hit them alike; medians; and the speed-up), and the protocol's
MR-STFT and LSD between real clips and the generated ones. "pruned, no retraining" shows the same channels
cut out of the trained dense generator without rewinding or retraining.

    python bench/impact_prune.py --dense runs/impact_voiced/best.pt --rewind runs/impact_voiced/rewind.pt
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flowsynth.impact.dataset import load_dataset
from flowsynth.impact.evaluate import spectral_distances, summarize
from flowsynth.impact.generate import generate
from flowsynth.impact.prune import all_channels, compose, cut, select_channels
from flowsynth.impact.train import TrainConfig, load_generator, save_checkpoint, train


def quality(model, test) -> dict:
    n = test.audio.shape[1]
    audio = np.stack([generate(model, c, n) for c in test.curves])
    distances = spectral_distances(test.audio, audio, test.sample_rate)
    return {name: summarize(distances[name]) for name in ("mr_stft", "lsd")}


def interleaved_speed(models: list, curves: np.ndarray, repeats: int) -> list[float]:
    """Median seconds per model to generate one of ``curves`` [C, 7, T] (clip ``i % C`` at repeat ``i``),
    timed round-robin so that load changes hit all alike."""
    times: list[list[float]] = [[] for _ in models]
    for model in models:
        generate(model, curves[0])
    for i in range(repeats):
        for k, model in enumerate(models):
            started = time.perf_counter()
            generate(model, curves[i % len(curves)], seed=i)
            times[k].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def size_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as folder:
        return save_checkpoint(Path(folder) / "m.pt", model, {}).stat().st_size


def row(label: str, model, test) -> dict:
    entry = {"level": label, "parameters": model.num_parameters, "bytes": size_bytes(model),
             "quality": quality(model, test)}  # fmt: skip
    print(json.dumps({k: v for k, v in entry.items() if k != "quality"}), entry["quality"]["mr_stft"]["mean"])
    return entry


def compare(rows: list[dict], models: list, curves: np.ndarray, repeats: int) -> None:
    """Adds speed (timed together) and the ratios to the dense generator (the first row)."""
    for entry, seconds in zip(rows, interleaved_speed(models, curves, repeats), strict=True):
        entry["seconds_per_1s"] = seconds
    base = rows[0]
    for entry in rows:
        entry["fewer_parameters"] = base["parameters"] / entry["parameters"]
        entry["speed_up"] = base["seconds_per_1s"] / entry["seconds_per_1s"]
        entry["mr_stft_change"] = entry["quality"]["mr_stft"]["mean"] / base["quality"]["mr_stft"]["mean"] - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dense", type=Path, default=Path("runs/impact_voiced/best.pt"))
    parser.add_argument("--rewind", type=Path, default=Path("runs/impact_voiced/rewind.pt"))
    parser.add_argument("--data", type=Path, default=Path("data/impacts.h5"))
    parser.add_argument("--levels", default="128:32:129,88:24:65,88:24:65:0:2,48:16:33:0:2",
                        help="hidden:harmonics[:bands[:ir_taps[:noise_overlap]]] per level")  # fmt: skip
    parser.add_argument("--steps", type=int, default=800, help="retraining steps per level")
    parser.add_argument("--minutes", type=float, default=8.0, help="retraining time limit per level")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--runs", type=Path, default=Path("runs/impact_prune"))
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--reuse", action="store_true", help="keep levels already retrained in --runs")
    parser.add_argument("--report", default="impact_prune", help="report file name (without extension)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dense, _ = load_generator(args.dense)
    rewind, _ = load_generator(args.rewind)
    test = load_dataset(args.data).subset("test")
    curves = test.curves[:8]
    rows, models = [row("dense", dense, test)], [dense]
    trained, channels = dense, all_channels(dense)
    for level in args.levels.split(","):
        hidden, harmonics, *rest = (int(v) for v in level.split(":"))
        channels = compose(channels, select_channels(trained, hidden, harmonics, *rest[:2]))
        overlap = rest[2] if len(rest) > 2 else None
        plain = cut(dense, channels, overlap)
        rows.append(row(f"{level} pruned, no retraining", plain, test))
        folder = args.runs / level.replace(":", "_") / ""
        if not (args.reuse and (folder / "best.pt").is_file()):
            init = save_checkpoint(
                folder / "rewound.pt", cut(rewind, channels, overlap), {"channels_from": str(args.rewind)}
            )
            config = TrainConfig(steps=args.steps, minutes=args.minutes, learning_rate=5e-4, valid_every=50,
                                 rewind_step=10**9)  # fmt: skip
            train(args.data, folder, config, init=init, log=lambda line: print(line, flush=True))
        trained, _ = load_generator(folder / "best.pt")
        rows.append(row(f"{level} rewound + retrained", trained, test))
        models += [plain, trained]
    compare(rows, models, curves, args.repeats)
    report = {"conditions": f"test split of {args.data} ({len(test)} real clips); retraining {args.steps} steps "
              f"(at most {args.minutes} min) per level from {args.rewind}; one thread", "rows": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.report}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"{args.report}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = ["# Impact generator: structured pruning with rewinding\n", report["conditions"] + "\n",
             "| level | parameters | fewer | KiB | ms per 1 s | speed-up | MR-STFT | change | LSD dB |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["rows"]:
        q = r["quality"]
        lines.append(f"| {r['level']} | {r['parameters']} | {r.get('fewer_parameters', 1.0):.1f}x | {r['bytes'] / 1024:.0f} | "
                     f"{r['seconds_per_1s'] * 1000:.1f} | {r.get('speed_up', 1.0):.2f}x | "
                     f"{q['mr_stft']['mean']:.3f} ± {(q['mr_stft']['high'] - q['mr_stft']['low']) / 2:.3f} | "
                     f"{100 * r.get('mr_stft_change', 0.0):+.1f}% | {q['lsd']['mean']:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
