"""Sound matching compared across methods, on real recorded sounds the synth did not make and on its own test sounds.

Out-of-domain sounds (made on this machine, at least 50): General MIDI notes of the TimGM6mb soundfont
rendered by fluidsynth at various pitches, drum hits of the Debian hydrogen-drumkits, and voice sounds
spoken by espeak-ng and shaped by sox. In-domain sounds: the test split of the model's dataset,
re-rendered from their parameters. Every sound is prepared once (trim, level, pitch, envelope) and
matched by each method:

* ``nearest``: the training sound whose log-mel is closest (L1) to the target's (one render);
* ``random``: uniform random parameters, as many renders as ``full`` used;
* ``cma``: CMA-ES alone from the synth's defaults, for as long as ``full`` took on that sound;
* ``mean``: the model's estimate; ``candidates``: its estimate and K posterior draws;
* ``hints``: ``candidates`` plus the target's envelope and vibrato as parameters;
* ``full``: ``hints`` then gradient refinement (or CMA-ES for a non-differentiable synth).

The protocol's metrics (target vs level-matched match) get a mean and 95% CI per method, with the
time per sound (preparation included) and renders. Writes ``match_ood.json``, ``.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from flowsynth.errors import AudioError
from flowsynth.features.metrics import AUDIO_METRICS, audio_metrics, mean_ci
from flowsynth.matching import (
    Condition,
    MatchSettings,
    TargetDistance,
    conditions,
    load_match_model,
    match_target,
    nearest_neighbour,
    prepare_target,
    score_candidates,
    shifted_log_mel,
)
from flowsynth.matching.conditions import choose_condition
from flowsynth.matching.output import write_json
from flowsynth.plots import save_figure
from flowsynth.synth import RenderConfig, from_description

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
#: General MIDI notes: (program, MIDI note, held seconds).
GM_NOTES = [
    (0, 48, 1.5), (0, 72, 1.0), (4, 60, 1.5), (11, 67, 1.0), (16, 55, 1.5), (19, 43, 2.0), (24, 52, 1.0),
    (33, 36, 1.0), (40, 76, 1.5), (42, 48, 2.0), (48, 60, 2.0), (56, 70, 1.0), (61, 58, 1.0), (65, 62, 1.5),
    (71, 64, 1.5), (73, 79, 1.0), (80, 57, 1.0), (81, 45, 1.5), (88, 60, 2.5), (95, 53, 2.5), (104, 62, 1.0),
    (12, 84, 0.5),
]  # fmt: skip
#: Drum kinds and the words of their file names.
DRUM_KINDS = {"kick": ("kick", "bassdrum", "bd"), "snare": ("snare", "sd"), "hat": ("hat", "hh"),
              "tom": ("tom",), "cymbal": ("crash", "ride", "cymbal", "china", "splash")}  # fmt: skip
DRUMS_PER_KIND = 4
#: Voice sounds: name -> (espeak-ng phonemes, espeak-ng options, sox effects).
VOICES = {
    "wooo": ("[[wu::::::]]", "-v en -s 60", ""),
    "tsss": ("[[ts::::::]]", "-v en -s 60", ""),
    "bwaaa": ("[[bwA::::::]]", "-v en+f3 -s 60 -p 70", ""),
    "mmm": ("mmmmmm", "-v en -s 60 -p 30", ""),
    "nooo": ("[[nu::::::]]", "-v en -s 60 -p 30", ""),
    "shhh": ("[[S::::::]]", "-v en -s 60", ""),
    "zzz": ("[[z::::::]]", "-v en -s 60", ""),
    "eee_high": ("[[i::::::]]", "-v en+f4 -s 60 -p 90", ""),
    "aaa_low": ("[[A::::::]]", "-v en -s 60 -p 10", ""),
    "ooo_vibrato": ("[[u::::::::]]", "-v en -s 50", "bend 0.2,60,0.1" + " 0,-120,0.1 0,120,0.1" * 6),
    "yaya": ("[[jA: jA: jA:]]", "-v en -s 80", ""),
    "boom": ("[[bu:m]]", "-v en -s 60 -p 20", "lowpass 800"),
    "pew": ("[[pju::]]", "-v en+f2 -s 70 -p 80", "pitch -300"),
    "hmm_up": ("[[hm::::]]", "-v en -s 60", "bend 0.3,400,0.6"),
    "ahh_tremolo": ("[[A::::::]]", "-v en+m3 -s 50", "tremolo 6 60"),
}


def _midi(program: int, note: int, note_s: float, tail_s: float = 1.0) -> bytes:
    def event(delta_s: float, data: bytes) -> bytes:
        ticks, out = round(delta_s * 960), []
        out.append(ticks & 0x7F)
        while ticks := ticks >> 7:
            out.append((ticks & 0x7F) | 0x80)
        return bytes(reversed(out)) + data

    track = event(0, bytes([0xC0, program])) + event(0, bytes([0x90, note, 100]))
    track += event(note_s, bytes([0x80, note, 0])) + event(tail_s, bytes([0xFF, 0x2F, 0]))
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def gm_sounds(folder: Path) -> list[dict]:
    """General MIDI notes rendered with fluidsynth (no reverb, no chorus) at 22,050 Hz."""
    sounds = []
    for program, note, note_s in GM_NOTES:
        out = folder / f"gm{program:03d}_n{note}.wav"
        midi = out.with_suffix(".mid")
        midi.write_bytes(_midi(program, note, note_s))
        command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", "22050", "-F", str(out)]
        subprocess.run([*command, str(SOUNDFONT), str(midi)], check=True, timeout=120)
        sounds.append({"name": out.stem, "kind": "instrument", "path": str(out), "note": note})
    return sounds


def _drum_kind(stem: str) -> str | None:
    words = re.split(r"[^a-z]+", stem.lower())
    for kind, names in DRUM_KINDS.items():
        if any(name in words or (len(name) > 2 and name in stem.lower()) for name in names):
            return kind
    return None


def drum_sounds(seed: int) -> list[dict]:
    """``DRUMS_PER_KIND`` hits of each kind, drawn with ``seed`` from every hydrogen kit."""
    files = sorted(p for p in DRUMKITS.rglob("*") if p.suffix.lower() in (".flac", ".wav"))
    rng, sounds = random.Random(seed), []
    for kind in DRUM_KINDS:
        found = [p for p in files if _drum_kind(p.stem) == kind]
        for path in rng.sample(found, min(DRUMS_PER_KIND, len(found))):
            sounds.append({"name": f"{kind}:{path.parent.name}/{path.stem}", "kind": "drum", "path": str(path)})
    return sounds


def voice_sounds(folder: Path) -> list[dict]:
    """Voice sounds: espeak-ng phonemes through sox, mono 22,050 Hz."""
    sounds = []
    for name, (phonemes, options, effects) in VOICES.items():
        raw, out = folder / f"{name}.raw.wav", folder / f"voice_{name}.wav"
        subprocess.run(["espeak-ng", *options.split(), "-w", str(raw), phonemes], check=True, timeout=60)
        subprocess.run(["sox", str(raw), "-r", "22050", "-c", "1", str(out), *effects.split()], check=True, timeout=60)
        sounds.append({"name": f"voice_{name}", "kind": "voice", "path": str(out)})
    return sounds


def in_domain_sounds(data: Path, count: int) -> tuple[list[dict], dict]:
    """The first ``count`` sounds of the dataset's test split, re-rendered, and the training bank."""
    from flowsynth.data import DatasetFile

    dataset = DatasetFile(data)
    _, params = dataset.load("test")
    synth = from_description(dataset.synth_description)
    config = RenderConfig(**dataset.render_config)
    with torch.no_grad():
        audio = synth.render_with(params[:count], config, seed=int(dataset.attrs["seed"]), on_error="nan")
    sounds = [{"name": f"test{i}", "kind": "in-domain", "audio": audio[i], "params": params[i]}
              for i in range(len(audio)) if torch.isfinite(audio[i]).all()]  # fmt: skip
    bank_features, bank_params = dataset.load("train")
    return sounds, {"features": bank_features, "params": bank_params}


def _result(target, distance: TargetDistance, params: torch.Tensor, audio: torch.Tensor, seconds: float, renders: int):
    matched = distance.matched(audio[None])[0]
    metrics = {k: float(v) for k, v in audio_metrics(target.audio, matched, target.sample_rate).items()}
    return {"metrics": metrics, "time_s": seconds, "renders": renders, "params": _rounded(params)}


def _from_match(result, prep_s: float) -> dict:
    stages = result.report["stages"]
    renders = stages["infer"]["renders"] + stages["candidates"]["renders"] + stages.get("refine", {}).get("renders", 0)
    time_s = result.report["time_s"] - stages["prepare"]["time_s"] + prep_s
    return {"metrics": result.metrics, "time_s": time_s, "renders": renders, "params": _rounded(result.params)}


def _rounded(params: torch.Tensor) -> list[float]:
    """Normalized parameters to 4 decimals (the report's size)."""
    return [round(float(v), 4) for v in params]


def run_methods(target, prep_s: float, model, synth, bank: dict | None, args) -> dict[str, dict]:
    """Every method on one prepared target (see the module docstring)."""
    k, seed, out = args.candidates, args.seed, {}
    run = {"reference": args.reference}
    common = {"seed": seed, "hold": args.hold}
    settings = {
        "mean": MatchSettings(candidates=0, hints=False, **common),
        "candidates": MatchSettings(candidates=k, hints=False, **common),
        "hints": MatchSettings(candidates=k, **common),
        "full": MatchSettings(
            candidates=k, refine_steps=args.refine_steps, lr=args.lr, mel_weight=args.mel_weight, **common
        ),
    }
    for name, setting in settings.items():
        out[name] = _from_match(match_target(target, model, synth, setting, **run), prep_s)
    full_s, renders = out["full"]["time_s"], out["full"]["renders"]
    random_search = MatchSettings(candidates=renders - 1, hints=False, **common)
    out["random"] = _from_match(match_target(target, None, synth, random_search, **run), prep_s)
    cma = MatchSettings(candidates=0, hints=False, refine_steps=None, budget_s=max(full_s - prep_s, 0.1),
                        optimizer="cma", **common)  # fmt: skip
    out["cma"] = _from_match(match_target(target, None, synth, cma, **run), prep_s)
    if bank is not None:
        out["nearest"] = nearest_method(target, prep_s, synth, bank, args)
    return out


def nearest_method(target, prep_s: float, synth, bank: dict, args) -> dict:
    """The training sound with the closest log-mel, under the conditions (note, hold) that suit it best."""
    begin = time.perf_counter()
    distance = TargetDistance(target.audio, target.sample_rate, "mr_stft")

    def estimate(condition: Condition) -> torch.Tensor:
        features = shifted_log_mel(target.audio, target.sample_rate, condition.shift)
        return nearest_neighbour(features, bank["features"], bank["params"])[0][None]

    options = conditions(target, args.reference, args.hold)
    chosen, tried = choose_condition(synth, distance, options, estimate, args.seed)
    params = estimate(chosen)
    scored = score_candidates(synth, params, chosen.config, distance, args.seed)
    renders = 1 + (len(tried) if len(tried) > 1 else 0)
    return _result(target, distance, params[0], scored.audio, time.perf_counter() - begin + prep_s, renders)


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Mean and 95% CI of every metric, time and renders, per method."""
    methods = list(rows[0]["methods"]) if rows else []
    summary = {}
    for method in methods:
        values = {m: [r["methods"][method]["metrics"][m] for r in rows] for m in AUDIO_METRICS}
        values["time_s"] = [r["methods"][method]["time_s"] for r in rows]
        values["renders"] = [r["methods"][method]["renders"] for r in rows]
        summary[method] = {m: dict(zip(("mean", "ci95_low", "ci95_high"), mean_ci(v), strict=True))
                           for m, v in values.items()}  # fmt: skip
    return summary


def goals(summary: dict) -> dict[str, float]:
    """Ratios behind the issue's goals: full vs nearest neighbour and vs CMA-ES at equal time (< 1 is better)."""
    out = {}
    for metric in ("mfcc_l1", "lsd", "mr_stft"):
        full = summary["full"][metric]["mean"]
        for other in ("nearest", "cma"):
            if other in summary:
                out[f"{metric}_full_over_{other}"] = full / summary[other][metric]["mean"]
    return out


def markdown(report: dict) -> str:
    lines = [f"# Sound matching: methods compared\n\n{report['conditions']}\n"]
    for test_set, part in report["sets"].items():
        lines += [f"## {test_set} ({part['sounds']} sounds)\n", "| method | " + " | ".join(AUDIO_METRICS)
                  + " | time per sound (s) | renders |", "|---" * (len(AUDIO_METRICS) + 3) + "|"]  # fmt: skip
        for method, values in part["summary"].items():
            cells = [_cell(values[m]) for m in (*AUDIO_METRICS, "time_s")] + [f"{values['renders']['mean']:.0f}"]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += ["", "Ratios (full / other, mean; the goal is <= 0.75 vs nearest on MFCC-L1 and LSD, < 1 vs CMA-ES):",
                  ""] + [f"- {k}: {v:.3f}" for k, v in part["goals"].items()] + [""]  # fmt: skip
        lines += kind_table(part["rows"])
    return "\n".join(lines)


def kind_table(rows: list[dict]) -> list[str]:
    """Mean MFCC-L1 / LSD of each method per kind of sound (instrument, drum, voice), when there are several."""
    kinds = sorted({r["kind"] for r in rows})
    if len(kinds) < 2:
        return []
    methods = list(rows[0]["methods"])
    lines = ["By kind of sound, mean MFCC-L1 / LSD (dB):", "", "| kind | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|"]  # fmt: skip
    for kind in kinds:
        chosen = [r for r in rows if r["kind"] == kind]
        cells = []
        for method in methods:
            mfcc, lsd = (
                sum(r["methods"][method]["metrics"][m] for r in chosen) / len(chosen) for m in ("mfcc_l1", "lsd")
            )
            cells.append(f"{mfcc:.2f} / {lsd:.1f}")
        lines.append(f"| {kind} ({len(chosen)}) | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cell(value: dict) -> str:
    low, high = value["ci95_low"], value["ci95_high"]
    ci = f" [{low:.3g}, {high:.3g}]" if math.isfinite(low) else ""
    return f"{value['mean']:.3g}{ci}"


def figure(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("mfcc_l1", "lsd", "mr_stft", "sc")
    sets = list(report["sets"])
    fig, axes = plt.subplots(len(sets), len(metrics), figsize=(4 * len(metrics), 3.2 * len(sets)), squeeze=False)
    for row, test_set in enumerate(sets):
        summary = report["sets"][test_set]["summary"]
        methods = list(summary)
        for col, metric in enumerate(metrics):
            means = [summary[m][metric]["mean"] for m in methods]
            errors = [[mean - summary[m][metric]["ci95_low"] for m, mean in zip(methods, means, strict=True)],
                      [summary[m][metric]["ci95_high"] - mean for m, mean in zip(methods, means, strict=True)]]  # fmt: skip
            ax = axes[row, col]
            ax.bar(methods, means, yerr=errors, capsize=3, color="tab:blue")
            ax.set_title(f"{test_set}: {metric}", fontsize=9)
            ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def evaluate_set(sounds: list[dict], model, synth, config: RenderConfig, bank, args) -> list[dict]:
    rows = []
    for i, sound in enumerate(sounds):
        begin = time.perf_counter()
        source = sound.get("audio", sound.get("path"))
        try:
            rate = config.sample_rate if "audio" in sound else None
            target = prepare_target(source, config, source_rate=rate, hold="auto" if args.hold == "both" else args.hold)
        except AudioError as error:
            print(f"[{i + 1}/{len(sounds)}] {sound['name']}: skipped ({error})", flush=True)
            continue
        prep_s = time.perf_counter() - begin
        methods = run_methods(target, prep_s, model, synth, bank, args)
        rows.append({"name": sound["name"], "kind": sound["kind"], "target": target.describe(), "methods": methods})
        scores = ", ".join(f"{m} {v['metrics']['mfcc_l1']:.2f}" for m, v in methods.items())
        print(f"[{i + 1}/{len(sounds)}] {sound['name']}: MFCC-L1 {scores}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model checkpoint (default: the shipped model)")
    parser.add_argument("--data", type=Path, help="the model's dataset (training bank and in-domain test split)")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--in-domain", type=int, default=30, help="test-split sounds (0: none)")
    parser.add_argument("--max-sounds", type=int, help="use only the first N out-of-domain sounds (quick check)")
    parser.add_argument("--stride", type=int, default=1, help="use every N-th out-of-domain sound (quick check)")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--refine-steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--hold", default="both", choices=("both", "auto", "model"), help="hold of the synth notes")
    parser.add_argument("--mel-weight", type=float, default=0.5, help="log-mel L1 weight of the refinement loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-sounds", type=Path, help="keep the out-of-domain sounds in this folder")
    parser.add_argument("--report-only", type=Path, help="write the Markdown and figure of this JSON report, no run")
    args = parser.parse_args()
    if args.report_only:
        report = json.loads(args.report_only.read_text())
        (args.out / "match_ood.md").write_text(markdown(report))
        figure(report, args.out / "match_ood.png")
        return 0
    torch.set_num_threads(args.threads)
    model = load_match_model(args.model)
    synth, config = from_description(model.meta["synth"]), RenderConfig(**model.meta["render"])
    args.reference = config
    folder = args.keep_sounds or Path(tempfile.mkdtemp(prefix="match_ood_"))
    folder.mkdir(parents=True, exist_ok=True)
    ood = gm_sounds(folder) + drum_sounds(args.seed) + voice_sounds(folder)
    ood = ood[:: args.stride][: args.max_sounds]
    domain, bank = in_domain_sounds(args.data, args.in_domain) if args.data else ([], None)
    sets = {"out-of-domain": ood, "in-domain": domain}
    report = {
        "conditions": f"synth {synth.name} ({synth.num_learned} parameters), model {model.name} "
        f"({model.meta.get('path')}), K={args.candidates} candidates, {args.refine_steps} refinement steps "
        f"(lr {args.lr}, log-mel weight {args.mel_weight}), hold {args.hold}, metric MR-STFT, seed {args.seed}, "
        f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
        f"data {args.data}; times include the target's preparation",
        "command": " ".join(sys.argv),
        "sets": {},
    }
    for name, sounds in sets.items():
        if not sounds:
            continue
        rows = evaluate_set(sounds, model, synth, config, bank, args)
        summary = summarize(rows)
        report["sets"][name] = {"sounds": len(rows), "summary": summary, "goals": goals(summary), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "match_ood.json", report, indent=None)
    (args.out / "match_ood.md").write_text(markdown(report))
    figure(report, args.out / "match_ood.png")
    print(markdown(report))
    if not args.keep_sounds:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
