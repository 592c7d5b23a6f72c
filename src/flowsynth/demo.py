"""The demo: a few sounds of the built-in synth, as audio, a spectrogram figure and a summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

__all__ = ["run_demo"]


def run_demo(out: Path, synth_name: str = "builtin-32", count: int = 4, seed: int = 0) -> dict:
    """Renders ``count`` random sounds of a synth to ``out`` (WAVs, ``spectrograms.png``, ``summary.json``)."""
    from flowsynth.audio import save_audio
    from flowsynth.features.descriptors import describe
    from flowsynth.plots import save_spectrograms
    from flowsynth.synth import RenderConfig, get_synth
    from flowsynth.synth.presets import preset_to_json

    synth = get_synth(synth_name)
    config = RenderConfig()
    params = torch.rand(count, synth.num_learned, generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    audio = synth.render_with(params, config, seed=seed)
    elapsed_s = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    values = describe(audio, config.sample_rate)
    sounds = []
    for i in range(count):
        wav = save_audio(out / f"sound-{i}.wav", audio[i], config.sample_rate)
        preset = preset_to_json(synth, params[i], name=f"random-{seed}-{i}")
        sounds.append({"wav": wav.name, **preset, "descriptors": {k: float(v[i]) for k, v in values.items()}})
    png = save_spectrograms(
        out / "spectrograms.png", {f"sound {i}": audio[i] for i in range(count)}, config.sample_rate, synth_name
    )
    summary = {
        "synth": synth_name,
        "render": config.describe(),
        "seed": seed,
        "render_time_s": elapsed_s,
        "real_time_factor": elapsed_s / (count * config.render_s),
        "spectrograms": png.name,
        "sounds": sounds,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
