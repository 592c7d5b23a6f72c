"""Time to a finished match (preset, sounds, figure and report written) at the default settings.

Configurations of ``flowsynth match``: K=32 candidates without refinement (goal: under 2 s), ranked
by MR-STFT (the default) or by the cheaper MFCC-L1, and the defaults, K=32 and gradient refinement
within the 15 s budget (goal: under 20 s). Each is timed in
one warm process (the library call plus writing the files, as a server would run it) on real sounds:
instrument notes (fluidsynth + TimGM6mb), drum hits (hydrogen-drumkits) and voices (espeak-ng + sox).
The baseline measured in the same run is the bare render of the K+1 candidates in one batch, so the
report also gives match time / render time. A cold ``flowsynth match`` command (interpreter start and
imports included) is timed once per configuration, next to ``python -c "import torch"``.
Writes ``match_time.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from flowsynth.cli.match import DEFAULT_BUDGET_S, DEFAULT_CANDIDATES, DEFAULT_REFINE_STEPS, DEFAULT_THREADS
from flowsynth.matching import MatchSettings, load_match_model, match, render, write_match
from flowsynth.matching.output import write_json
from flowsynth.synth import RenderConfig, from_description
from match_ood import drum_sounds, gm_sounds, voice_sounds  # bench/ is the script's folder, first on sys.path

_K = {"candidates": DEFAULT_CANDIDATES}
CONFIGS = {
    "no_refinement": {**_K, "refine_steps": 0, "budget_s": None, "metric": "mr_stft", "goal_s": 2.0},
    "no_refinement_mfcc": {**_K, "refine_steps": 0, "budget_s": None, "metric": "mfcc_l1", "goal_s": 2.0},
    "defaults": {
        **_K,
        "refine_steps": DEFAULT_REFINE_STEPS,
        "budget_s": DEFAULT_BUDGET_S,
        "metric": "mr_stft",
        "goal_s": 20.0,
    },
}


def sounds(folder: Path, count: int) -> list[dict]:
    """``count`` sounds taken in turn from the instruments, drums and voices of ``bench/match_ood.py``."""
    groups = [gm_sounds(folder), drum_sounds(0), voice_sounds(folder)]
    picked = [group[i] for i in range(max(len(g) for g in groups)) for group in groups if i < len(group)]
    return picked[:count]


def render_baseline(synth, count: int, repeats: int) -> float:
    """Median seconds to render ``count`` random sounds in one batch at the protocol's conditions."""
    params = torch.rand(count, synth.num_learned, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(synth, params, RenderConfig())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_matches(paths: list[str], model, config: dict, out: Path) -> list[dict]:
    keys = ("candidates", "refine_steps", "budget_s", "metric")
    settings = MatchSettings(**{key: config[key] for key in keys})
    rows = []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        result = match(path, model, settings=settings)
        write_match(result, out / f"m{i}")
        total = time.perf_counter() - start
        stages = {name: info["time_s"] for name, info in result.report["stages"].items()}
        rows.append({"sound": path, "time_s": total, "stages": stages, "score": result.report["score"]})
        print(f"  {Path(path).name}: {total:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in stages.items())})")
    return rows


def cold_command(path: str, model_arg: list[str], config: dict, out: Path, threads: int) -> float:
    command = [sys.executable, "-m", "flowsynth.cli.main", "match", path, "--out", str(out), *model_arg]
    command += ["--candidates", str(config["candidates"]), "--refine", str(config["refine_steps"])]
    command += ["--metric", config["metric"]]
    command += ["--threads", str(threads)] + (["--budget-s", str(config["budget_s"])] if config["budget_s"] else [])
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def import_torch_s() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=300)
    return time.perf_counter() - start


def markdown(report: dict) -> str:
    lines = ["# Time to a finished match", "", report["conditions"], "",
             "| settings | goal (s) | median (s) | max (s) | median / render of K+1 | cold command (s) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, part in report["configs"].items():
        lines.append(f"| {name} | {part['goal_s']:g} | {part['median_s']:.2f} | {part['max_s']:.2f} | "
                     f"{part['median_over_render']:.1f} | {part['cold_command_s']:.2f} |")  # fmt: skip
    lines += ["", f"Render of K+1 = {report['baseline_render_s']:.2f} s (median); `python -c 'import torch'` "
              f"{report['import_torch_s']:.2f} s. Median time per stage:", ""]  # fmt: skip
    for name, part in report["configs"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in part["stage_medians_s"].items()))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model checkpoint (default: the shipped model)")
    parser.add_argument("--sounds", type=int, default=6, help="number of sounds timed per configuration")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="torch threads (default: flowsynth match's)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_match_model(args.model)
    synth = from_description(model.meta["synth"])
    work = Path(tempfile.mkdtemp(prefix="match_time_"))
    paths = [s["path"] for s in sounds(work, args.sounds)]
    match(paths[0], model, settings=MatchSettings(candidates=1))  # warm-up: imports, caches
    baseline = render_baseline(synth, DEFAULT_CANDIDATES + 1, 3)
    model_arg = ["--model", args.model] if args.model else []
    report = {
        "conditions": f"{synth.name} ({synth.num_learned} parameters), model {model.name} ({model.meta.get('path')}),"
        f" {len(paths)} sounds, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs,"
        f" {platform.machine()}, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "baseline_render_s": baseline,
        "import_torch_s": import_torch_s(),
        "configs": {},
    }
    for name, config in CONFIGS.items():
        print(f"{name}:")
        rows = time_matches(paths, model, config, work / name)
        times = [r["time_s"] for r in rows]
        stage_names = rows[0]["stages"]
        report["configs"][name] = {
            **config,
            "median_s": statistics.median(times),
            "max_s": max(times),
            "median_over_render": statistics.median(times) / baseline,
            "stage_medians_s": {k: statistics.median(r["stages"][k] for r in rows) for k in stage_names},
            "cold_command_s": cold_command(paths[0], model_arg, config, work / f"cold_{name}", args.threads),
            "rows": rows,
        }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "match_time.json", report)
    (args.out / "match_time.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
