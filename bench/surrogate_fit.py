"""How well the descriptor surrogate of steered knobs predicts a synth's descriptors from its parameters.

Fits :func:`flowsynth.control.surrogate.fit_surrogate` on the first ``n`` training sounds of a dataset
for each ``--sizes`` value and reports R² (1 - MSE / variance, on the surrogate's normalized steering
scale) per descriptor on the test split, and the fitting time.

Usage: ``python bench/surrogate_fit.py --data data/b32-30k.h5 --sizes 2000 8000 24000 --out bench/reports``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from flowsynth.control.map import PresetBank
from flowsynth.control.surrogate import fit_surrogate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 24000])
    parser.add_argument("--steps", type=int, default=4000, help="training batches per fit")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = PresetBank.from_dataset(args.data, "train"), PresetBank.from_dataset(args.data, "test")
    if not train.descriptors or not test.descriptors:
        raise SystemExit(f"{args.data} stores no descriptors")
    rows = []
    for size in args.sizes:
        size = min(size, len(train))
        start = time.perf_counter()
        subset = {name: values[:size] for name, values in train.descriptors.items()}
        surrogate = fit_surrogate(train.params[:size], subset, steps=args.steps)
        seconds = time.perf_counter() - start
        truth = surrogate.normalize(test.descriptors)
        with torch.no_grad():
            found = surrogate(test.params.float())
        keep = torch.isfinite(truth).all(-1)
        r2 = 1 - (found[keep] - truth[keep]).square().mean(0) / truth[keep].var(0)
        row = {"train_sounds": size, "fit_s": round(seconds, 1)} | {
            n: round(float(v), 3) for n, v in zip(surrogate.names, r2, strict=True)
        }
        rows.append(row)
        print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"data": str(args.data), "test_sounds": len(test), "steps": args.steps, "r2": rows}
    (args.out / "surrogate_fit.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
