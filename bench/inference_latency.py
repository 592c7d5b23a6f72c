"""Inference latency, audio features -> parameters, at batch 1 on one CPU core, for every model (goal: < 10 ms).

Times ``model.infer(features[1, 64, 80])`` (normalization included, no rendering) for trained checkpoints
(``--checkpoint``) or, by default, for freshly built models of every kind at the default sizes (latency does
not depend on the weights' values). As a baseline measured in the same run, it also times the log-mel
feature extraction of 4 s of audio, so the table gives ratios as well as medians.

Example::

    python bench/inference_latency.py --num-params 32 --out bench/reports
    python bench/inference_latency.py --checkpoint runs/b32_flow_reg/model.pt
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from flowsynth.features.logmel import log_mel
from flowsynth.models import ParamModel, available_models, build_model, load_model

GOAL_MS = 10.0


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 10) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process) times of ``fn()`` in milliseconds, after ``warmup`` untimed calls.

    On a shared machine the CPU time is the better estimate of the latency on an idle core.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def summary(times: tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = times
    ordered = sorted(wall)
    return {
        "median_ms": statistics.median(wall),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "cpu_median_ms": statistics.median(cpu),
    }


def models_to_time(args: argparse.Namespace) -> dict[str, ParamModel]:
    if args.checkpoint:
        return {str(path): load_model(path) for path in args.checkpoint}
    out = {}
    for name in args.models:
        kwargs = {"pairs": [["dark", "bright"], ["tonal", "noisy"]]} if name == "flow_dis" else {}
        torch.manual_seed(0)
        out[name] = build_model(name, args.num_params, **kwargs).eval()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, nargs="+", help="trained model.pt files (default: every model)")
    parser.add_argument("--models", nargs="+", default=available_models(), choices=available_models())
    parser.add_argument("--num-params", type=int, default=32, help="parameters of freshly built models")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    audio = torch.randn(1, 4 * 22050, generator=torch.Generator().manual_seed(0)) * 0.1
    features = log_mel(audio)
    with torch.no_grad():
        baseline = summary(time_ms(lambda: log_mel(audio), args.repeats))
    rows = []
    for label, model in models_to_time(args).items():
        timing = summary(time_ms(lambda model=model: model.infer(features), args.repeats))
        weights = sum(p.numel() for p in model.parameters())
        ratio = timing["median_ms"] / baseline["median_ms"]
        rows.append({"model": label, "parameters": weights, **timing, "x_log_mel": ratio})
    print(
        f"log-mel of 4 s audio (baseline): median {baseline['median_ms']:.2f} ms wall, "
        f"{baseline['cpu_median_ms']:.2f} ms CPU, p90 {baseline['p90_ms']:.2f} ms"
    )
    header = f"{'model':<28} {'weights':>9} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8} {'x log-mel':>10}"
    print(f"{header}  goal < {GOAL_MS:g} ms")
    for row in rows:
        flag = "ok" if min(row["median_ms"], row["cpu_median_ms"]) < GOAL_MS else "OVER"
        print(
            f"{row['model']:<28} {row['parameters']:>9} {row['median_ms']:>10.2f} {row['p90_ms']:>8.2f} "
            f"{row['cpu_median_ms']:>8.2f} {row['x_log_mel']:>10.2f}  {flag}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "threads": 1,
        "batch": 1,
        "machine": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "baseline_log_mel": baseline,
        "goal_ms": GOAL_MS,
        "rows": rows,
    }
    (args.out / "inference_latency.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
