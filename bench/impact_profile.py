"""Where a render's time goes: the impact generator's stages timed on one thread, per generator.

For 1 s of audio from the curves of the first ``--clips`` test clips (clip ``i % clips`` at repeat ``i``),
all generators and stages timed round-robin in one loop (so load changes hit them alike), medians:
the whole render, the network (``controls``) and within it the GRU, the harmonic bank, the filtered noise
and within it the random draws, and the impulse response. The stages are the generator's own methods,
so the script also profiles older versions of the code.

    python bench/impact_profile.py --checkpoint runs/impact_prune/88_24_65_0_2/best.pt --label pruned
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from flowsynth.impact.dataset import load_dataset
from flowsynth.impact.generate import default_generator
from flowsynth.impact.model import noise_frames
from flowsynth.impact.train import load_generator

STAGES = ("render", "network", "GRU", "harmonic bank", "noise", "noise draws", "impulse response")


def stages(model, curves: torch.Tensor, seed: int) -> dict[str, Callable[[], object]]:
    """Each stage of one render of ``curves`` [1, 7, T] as a call with its inputs ready."""
    n = (curves.shape[-1] - 1) * model.hop_length
    amplitude, mix, magnitude = model.controls(curves)
    hop = getattr(model, "noise_hop", model.noise_fft // 4)
    draws = (1, model.noise_fft // 2 + 1, n // hop + 1, 2)
    gru_input = torch.randn(1, curves.shape[-1], model.gru.input_size)
    audio = torch.randn(1, n)
    return {
        "render": lambda: model(curves, n, seed=seed),
        "network": lambda: model.controls(curves),
        "GRU": lambda: model.gru(gru_input),
        "harmonic bank": lambda: model.harmonic(amplitude, mix, curves[:, -1], n),
        "noise": lambda: model.noise(magnitude, n, seed),
        "noise draws": lambda: noise_frames(draws, seed),
        "impulse response": lambda: model.reverb(audio) if model.ir is not None else None,
    }


@torch.no_grad()
def profile(models: dict, clips: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(-1, repeats):  # repeat -1 warms up
        curves = torch.from_numpy(clips[max(i, 0) % len(clips)])[None]
        for label, model in models.items():
            for stage, call in stages(model, curves, max(i, 0)).items():
                started = time.perf_counter()
                call()
                if i >= 0:
                    times.setdefault((label, stage), []).append(time.perf_counter() - started)
    return {label: {s: 1000 * statistics.median(times[(label, s)]) for s in STAGES} for label in models}


def markdown(report: dict) -> str:
    labels = list(report["ms"])
    lines = ["# Impact generator: where a render's time goes\n", report["conditions"] + "\n",
             "| stage (ms per 1 s) | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]  # fmt: skip
    for stage in STAGES:
        lines.append(f"| {stage} | " + " | ".join(f"{report['ms'][label][stage]:.2f}" for label in labels) + " |")
    lines.append("| parameters | " + " | ".join(str(report["parameters"][label]) for label in labels) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], help="generators besides the shipped")
    parser.add_argument("--label", action="append", default=[], help="a label per --checkpoint")
    parser.add_argument("--data", type=Path, default=Path("data/impacts.h5"))
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--report", default="impact_profile", help="report file name (without extension)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {"shipped": default_generator()}
    for i, path in enumerate(args.checkpoint):
        models[args.label[i] if i < len(args.label) else path.stem] = load_generator(path)[0]
    clips = load_dataset(args.data).subset("test").curves[: args.clips]
    report = {
        "conditions": f"first {len(clips)} test clips of {args.data}, 1 s each, {args.repeats} repeats, medians; "
        "one thread",
        "ms": profile(models, clips, args.repeats),
        "parameters": {label: sum(p.numel() for p in m.parameters()) for label, m in models.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.report}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"{args.report}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
