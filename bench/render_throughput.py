"""Rendering throughput of every synth kind, 4 s at 22,050 Hz, in one run.

Prints a table and writes ``render_throughput.json`` and ``.md``. With
``--torchsynth-python PATH`` (a Python that has torchsynth installed, see the
README), torchsynth's ``Voice`` is timed at the same duration and sample rate
in the same run, one process after the other.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from flowsynth.synth import RenderConfig, get_synth

TORCHSYNTH = """
import statistics, sys, time, torch
from torchsynth.config import SynthConfig
from torchsynth.synth import Voice
torch.set_num_threads(int(sys.argv[2]))
batch = int(sys.argv[1])
voice = Voice(SynthConfig(batch_size=batch, sample_rate=22050, buffer_size_seconds=4.0, reproducible=False))
voice(0)
times = []
for i in range(int(sys.argv[3])):
    start = time.perf_counter(); voice(i + 1); times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def time_synth(name: str, batch: int, repeats: int) -> float:
    """Median seconds to render ``batch`` sounds of ``name``."""
    synth = get_synth(name)
    config = RenderConfig()
    params = torch.rand(batch, synth.num_learned, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        synth.render_with(params[:2], config)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            synth.render_with(params, config)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_torchsynth(python: str, batch: int, threads: int, repeats: int) -> float:
    """Median seconds for torchsynth's Voice to render ``batch`` sounds, in another process."""
    result = subprocess.run(
        [python, "-c", TORCHSYNTH, str(batch), str(threads), str(repeats)], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def row(name: str, batch: int, seconds: float, audio_s: float = 4.0) -> dict:
    return {
        "synth": name,
        "batch": batch,
        "seconds": round(seconds, 4),
        "sounds_per_s": round(batch / seconds, 2),
        "x_real_time": round(batch * audio_s / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torchsynth-python", help="a Python with torchsynth installed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [row("builtin-32 (1 thread)", args.batch, time_synth("builtin-32", args.batch, args.repeats))]
    if args.torchsynth_python:
        seconds = time_torchsynth(args.torchsynth_python, args.batch, 1, args.repeats)
        rows.append(row("torchsynth Voice (1 thread)", args.batch, seconds))
    for name in ("faust:subtractive", "amsynth"):
        try:
            rows.append(row(name, 16, time_synth(name, 16, args.repeats)))
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            print(f"{name}: skipped ({error})", file=sys.stderr)
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread(s), {platform.processor()}",
        "rows": rows,
    }
    if args.torchsynth_python:
        report["builtin_vs_torchsynth"] = round(rows[1]["seconds"] / rows[0]["seconds"], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render_throughput.json").write_text(json.dumps(report, indent=2))
    lines = ["| synth | batch | s | sounds/s | x real time |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['synth']} | {r['batch']} | {r['seconds']} | {r['sounds_per_s']} | {r['x_real_time']} |" for r in rows
    ]
    if "builtin_vs_torchsynth" in report:
        lines.append(f"\nbuilt-in synth speed / torchsynth speed: {report['builtin_vs_torchsynth']}x")
    (args.out / "render_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
