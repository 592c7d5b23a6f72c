"""The demo: the shipped model hears sounds it never saw, infers their parameters, and re-renders them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

__all__ = ["DEFAULT_MODEL", "run_demo"]

#: The model ``make demo`` uses.
DEFAULT_MODEL = "builtin-32-flow_reg"
#: Seed of the demo's sounds; datasets of the shipped models use other seeds, so these are new to the model.
DEMO_SEED = 20261127


def run_demo(out: Path, model_name: str = DEFAULT_MODEL, count: int = 3, seed: int = DEMO_SEED) -> dict:
    """Renders ``count`` new random sounds, matches each with the model, and writes the results to ``out``.

    Per sound: ``target-I.wav``, ``match-I.wav``; for all: ``spectrograms.png`` (targets above,
    matches below) and ``summary.json`` with the protocol's metrics and the presets.
    """
    from flowsynth.audio import save_audio
    from flowsynth.features.logmel import log_mel
    from flowsynth.features.metrics import audio_metrics, mean_ci, param_mae
    from flowsynth.models import load_shipped_model
    from flowsynth.plots import save_spectrograms
    from flowsynth.synth import RenderConfig, from_description
    from flowsynth.synth.presets import preset_to_json

    model = load_shipped_model(model_name)
    synth = from_description(model.meta["synth"])
    config = RenderConfig(**model.meta["render"])
    truth = torch.rand(count, synth.num_learned, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        target = synth.render_with(truth, config)
        start = time.perf_counter()
        estimate = model.infer(log_mel(target, config.sample_rate))
        infer_s = time.perf_counter() - start
        match = synth.render_with(estimate, config)
        metrics = audio_metrics(target, match, config.sample_rate)
    out.mkdir(parents=True, exist_ok=True)
    sounds = []
    for i in range(count):
        save_audio(out / f"target-{i}.wav", target[i], config.sample_rate)
        save_audio(out / f"match-{i}.wav", match[i], config.sample_rate)
        sounds.append(
            {
                "target": f"target-{i}.wav",
                "match": f"match-{i}.wav",
                "metrics": {k: float(v[i]) for k, v in metrics.items()},
                "true_preset": preset_to_json(synth, truth[i]),
                "inferred_preset": preset_to_json(synth, estimate[i]),
            }
        )
    figure = {f"target {i}": target[i] for i in range(count)} | {f"match {i}": match[i] for i in range(count)}
    title = f"{model_name}: targets (top), matches (bottom)"
    save_spectrograms(out / "spectrograms.png", figure, config.sample_rate, title, columns=count)
    summary = {
        "model": model_name,
        "synth": synth.name,
        "learned_params": synth.num_learned,
        "render": config.describe(),
        "seed": seed,
        "inference_s": infer_s,
        "metrics": {k: dict(zip(("mean", "low", "high"), mean_ci(v), strict=True)) for k, v in metrics.items()},
        "param_mae": float(param_mae(truth, estimate).mean()),
        "sounds": sounds,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
