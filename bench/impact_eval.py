"""Quality of the impact generator on held-out real impacts, against baselines measured in the same run.

* Reconstruction: each test-split clip's curves -> generated sound; descriptor error and the protocol's
  spectral distances to the real clip. Baselines: the nearest training clip by curves (a real sound,
  retrieval) and white noise shaped by the clip's loudness curve.
* Edits: sweeps of each scalar control (richness, noisiness, brightness, pitch) -> Spearman rho between the
  control and the measured target descriptor, and leakage (mean |change| of the other normalized descriptors).
* Merges: descriptor error at degree 0.5 and smoothness of 9-step paths (RMS of the second difference of the
  normalized descriptors), against a naive cross-fade of the two waveforms.
* A listening page (HTML with audio players) of examples.

    python bench/impact_eval.py --data data/impacts.h5 [--checkpoint runs/impact/best.pt]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch

from flowsynth.impact.dataset import load_dataset
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, describe
from flowsynth.impact.evaluate import (
    ERROR_UNITS,
    SPECTRAL_METRICS,
    descriptor_errors,
    error_table,
    nearest_neighbour,
    spectral_distances,
    summarize,
)
from flowsynth.impact.generate import default_generator, edit_curves, generate, merge_curves
from flowsynth.impact.model import normalize_curves
from flowsynth.impact.report import listening_page
from flowsynth.impact.train import load_generator

CONTROLS = {"richness": "richness", "noisiness": "noisiness", "brightness": "brightness", "pitch": "pitch"}
SWEEP = (-1.0, -0.5, 0.0, 0.5, 1.0)
#: Descriptors a control moves on purpose besides its target (left out of its leakage).
COUPLED = {"noisiness": ("tone_likeness",)}


def shaped_noise(curves: np.ndarray, num_samples: int, hop: int, seed: int) -> np.ndarray:
    """White noise whose level follows the loudness curve (a floor baseline)."""
    gain = 10.0 ** (curves[0] / 20.0)
    envelope = np.interp(np.arange(num_samples) / hop, np.arange(len(gain)), gain)
    return (0.5 * envelope * np.random.default_rng(seed).standard_normal(num_samples)).astype(np.float32)


def reconstruction(model, data, train, config) -> dict:
    test = data.subset("test")
    n = test.audio.shape[1]
    generated = np.stack([generate(model, c, n) for c in test.curves])
    neighbours = train.audio[[nearest_neighbour(train, c) for c in test.curves]]
    noise = np.stack([shaped_noise(c, n, config.hop_length, i) for i, c in enumerate(test.curves)])
    out = {}
    for name, audio in (("generator", generated), ("nearest_train_clip", neighbours), ("shaped_noise", noise)):
        spectral = spectral_distances(test.audio, audio, data.sample_rate)
        errors = [descriptor_errors(c, a, config) for c, a in zip(test.curves, audio, strict=True)]
        out[name] = {
            "spectral": {k: summarize(v) for k, v in spectral.items()},
            "descriptor_error": error_table(errors),
        }
    return {"clips": len(test), "methods": out, "generated": generated}


def _mean_descriptors(audio: np.ndarray, config) -> np.ndarray:
    curves = describe(audio, config)
    normalized = normalize_curves(torch.from_numpy(curves[None]))[0].numpy()
    loud = curves[0] > -60.0
    return normalized[:, loud].mean(axis=1) if loud.any() else normalized.mean(axis=1)


def tonal_clips(test) -> list[int]:
    """Test clips whose loud frames are mostly periodic (median tone-likeness >= 0.8)."""
    loud = test.curves[:, 0] > -60.0
    return [i for i, c in enumerate(test.curves) if np.median(c[3, loud[i]]) >= 0.8]


def edit_sweeps(model, test, config, count: int) -> dict:
    results = {}
    n = test.audio.shape[1]
    tonal = tonal_clips(test)
    for control, target in CONTROLS.items():
        rhos, leaks, errors = [], [], []
        clips = tonal[:count] if control == "pitch" else range(min(count, len(test)))
        for curves in test.curves[list(clips)]:
            values = [_edit(curves, control, v) for v in SWEEP]
            measured = np.stack([_mean_descriptors(generate(model, c, n), config) for c in values])
            rhos.append(scipy.stats.spearmanr(SWEEP, measured[:, DESCRIPTOR_NAMES.index(target)]).statistic)
            moved = (target, "loudness", *COUPLED.get(control, ()))
            others = [i for i, name in enumerate(DESCRIPTOR_NAMES) if name not in moved]
            leaks.append(float(np.abs(measured[:, others] - measured[2, others]).mean()))
            edited = values[3]
            errors.append(descriptor_errors(edited, generate(model, edited, n), config))
        results[control] = {
            "clips": len(clips),
            "spearman_rho": summarize(rhos),
            "leakage": summarize(leaks),
            "descriptor_error_at_+0.5": error_table(errors),
        }
    return results


def _edit(curves: np.ndarray, control: str, value: float) -> np.ndarray:
    if control == "pitch":
        return edit_curves(curves, pitch_semitones=12.0 * value)
    return edit_curves(curves, **{control: value})


def _smoothness(path: list[np.ndarray]) -> float:
    series = np.stack(path)
    return float(np.sqrt((np.diff(series, n=2, axis=0) ** 2).mean()))


def merges(model, test, config, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = test.audio.shape[1]
    errors, smooth, smooth_fade = [], [], []
    degrees = np.linspace(0.0, 1.0, 9)
    for _ in range(count):
        i, j = rng.choice(len(test), size=2, replace=False)
        a, b = test.curves[i], test.curves[j]
        half = merge_curves(a, b, 0.5)
        errors.append(descriptor_errors(half, generate(model, half, n), config))
        path = [_mean_descriptors(generate(model, merge_curves(a, b, float(d)), n), config) for d in degrees]
        fades = [_mean_descriptors((1 - d) * test.audio[i] + d * test.audio[j], config) for d in degrees]
        smooth.append(_smoothness(path))
        smooth_fade.append(_smoothness(fades))
    return {
        "pairs": count,
        "descriptor_error_at_0.5": error_table(errors),
        "smoothness_generator": summarize(smooth),
        "smoothness_waveform_crossfade": summarize(smooth_fade),
    }


def write_listening_page(model, test, train, generated, out: Path, rate: int) -> Path:
    audio_dir = out / "audio"
    picks = [
        i
        for i, name in enumerate(test.names)
        if any(k in name for k in ("TomMid-2", "SabianCrash-Hard", "EE_Kick_Hard_1", "EE_Snare_1"))
    ]
    sections = []
    for i in picks:
        stem = Path(test.names[i]).stem.replace(" ", "_")
        items = [
            ("real (held out)", test.audio[i]),
            ("generated from its curves", generated[i]),
            ("nearest training clip", train.audio[nearest_neighbour(train, test.curves[i])]),
        ]
        for control, value in (("richness", 0.8), ("noisiness", 0.8), ("brightness", 0.8), ("pitch", 0.5)):
            label = f"{control} {'+6 semitones' if control == 'pitch' else f'+{value}'}"
            items.append((label, generate(model, _edit(test.curves[i], control, value))))
        sections.append((test.names[i], _save(items, audio_dir, stem, rate)))
    for i, j in ((picks[0], picks[1]), (picks[2], picks[3])):
        items = [
            (f"degree {d:.2f}", generate(model, merge_curves(test.curves[i], test.curves[j], d)))
            for d in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]
        title = f"merge {Path(test.names[i]).stem} -> {Path(test.names[j]).stem}"
        sections.append((title, _save(items, audio_dir, f"merge_{i}_{j}", rate)))
    return listening_page(out / "index.html", "flowsynth impact generator: listening examples", sections)


def _save(items, folder: Path, stem: str, rate: int) -> list[tuple[str, str]]:
    saved = []
    for k, (caption, audio) in enumerate(items):
        path = folder / f"{stem}_{k}.flac"
        folder.mkdir(parents=True, exist_ok=True)
        import soundfile

        soundfile.write(str(path), np.clip(audio, -1, 1), rate, subtype="PCM_16")
        saved.append((caption, str(path)))
    return saved


def markdown(report: dict) -> str:
    lines = [
        f"# Impact generator evaluation\n\n{report['conditions']}\n",
        "## Reconstruction of held-out real impacts\n",
    ]
    methods = report["reconstruction"]["methods"]
    lines.append("| method | " + " | ".join(SPECTRAL_METRICS) + " |")
    lines.append("|---" * (len(SPECTRAL_METRICS) + 1) + "|")
    for name, m in methods.items():
        cells = [
            f"{m['spectral'][k]['mean']:.3f} ± {(m['spectral'][k]['high'] - m['spectral'][k]['low']) / 2:.3f}"
            for k in SPECTRAL_METRICS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("\nDescriptor error (requested = the real clip's curves; mean over clips):\n")
    lines.append("| method | " + " | ".join(f"{d} ({ERROR_UNITS[d]})" for d in DESCRIPTOR_NAMES) + " |")
    lines.append("|---" * (len(DESCRIPTOR_NAMES) + 1) + "|")
    for name, m in methods.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{m['descriptor_error'][d]['mean']:.3f}" for d in DESCRIPTOR_NAMES) + " |"
        )
    lines.append("\n## Scalar controls (sweeps of -1 ... 1)\n")
    lines.append(
        "Pitch sweeps (+-12 semitones) use the test clips whose median tone-likeness is at least 0.8 "
        "(the others have no pitch: their harmonic bank is voiced off). Leakage: mean |change| of the "
        "other normalized descriptors (noisiness moves tone-likeness on purpose: left out).\n"
    )
    lines.append("| control | clips | Spearman rho (target) | leakage | target error at +0.5 |")
    lines.append("|---|---|---|---|---|")
    for control, r in report["edits"].items():
        target = CONTROLS[control]
        lines.append(
            f"| {control} | {r['clips']} | {r['spearman_rho']['mean']:.2f} | {r['leakage']['mean']:.3f} | "
            f"{r['descriptor_error_at_+0.5'][target]['mean']:.3f} {ERROR_UNITS[target]} |"
        )
    m = report["merges"]
    lines.append(f"\n## Merges ({m['pairs']} pairs)\n")
    lines.append(
        f"- smoothness of 9-step paths (lower is smoother): generator {m['smoothness_generator']['mean']:.4f}, "
        f"waveform cross-fade {m['smoothness_waveform_crossfade']['mean']:.4f}"
    )
    lines.append(
        "- descriptor error at degree 0.5: "
        + ", ".join(f"{d} {m['descriptor_error_at_0.5'][d]['mean']:.3f} {ERROR_UNITS[d]}" for d in DESCRIPTOR_NAMES)
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/impacts.h5"))
    parser.add_argument("--checkpoint", type=Path, help="default: the shipped generator")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--sweep-clips", type=int, default=20)
    parser.add_argument("--merge-pairs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-listening", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_generator(args.checkpoint)[0] if args.checkpoint else default_generator()
    data = load_dataset(args.data)
    train, test, config = data.subset("train"), data.subset("test"), data.descriptor_config
    started = time.monotonic()
    rec = reconstruction(model, data, train, config)
    generated = rec.pop("generated")
    report = {
        "conditions": (
            f"Test split of {args.data} ({rec['clips']} real one-shots from Debian's hydrogen-drumkits, "
            f"instruments held out), {data.sample_rate} Hz, 1 s clips; generator "
            f"{args.checkpoint or 'shipped'} ({model.num_parameters} parameters); noise seed 0; "
            f"split seed in the dataset; mean ± 95% CI half-width."
        ),
        "parameters": model.num_parameters,
        "reconstruction": rec,
        "edits": edit_sweeps(model, test, config, args.sweep_clips),
        "merges": merges(model, test, config, args.merge_pairs, args.seed),
        "seconds": time.monotonic() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "impact_eval.json").write_text(json.dumps(report, indent=1))
    (args.out / "impact_eval.md").write_text(markdown(report))
    if not args.no_listening:
        page = write_listening_page(model, test, train, generated, args.out / "impact_listening", data.sample_rate)
        print(f"listening page: {page}")
    print(markdown(report))


if __name__ == "__main__":
    main()
