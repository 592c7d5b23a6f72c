"""Rendering throughput of every synth kind, 4 s at 22,050 Hz, in one run.

Prints a table and writes ``render_throughput.json`` and ``.md``. With
``--torchsynth-python PATH`` (a Python that has torchsynth installed, see the
README), torchsynth's ``Voice`` renders the same duration at the same sample
rate in a process of its own, interleaved with the built-in synth batch by
batch, so that both see the same load on a shared machine. Both are timed on
one thread, by wall clock and by the thread's CPU time (which a busy machine
disturbs less); the ratio of medians is the comparison.
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
import sys, time, torch
from torchsynth.config import SynthConfig
from torchsynth.synth import Voice
torch.set_num_threads(1)
voice = Voice(SynthConfig(batch_size=int(sys.argv[1]), sample_rate=22050, buffer_size_seconds=4.0, reproducible=False))
with torch.no_grad():
    voice(0)
    print("ready", flush=True)
    for i, _ in enumerate(sys.stdin):
        wall, cpu = time.perf_counter(), time.thread_time()
        voice(i + 1)
        print(time.perf_counter() - wall, time.thread_time() - cpu, flush=True)
"""


class Timer:
    """Wall-clock and thread CPU seconds of one call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall_s: float, cpu_s: float) -> None:
        self.wall.append(wall_s)
        self.cpu.append(cpu_s)

    def median(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def interleaved(python: str | None, batch: int, repeats: int) -> dict[str, Timer]:
    """Times the built-in synth, and torchsynth's Voice in its own process, one batch each in turn."""
    synth = get_synth("builtin-32")
    config = RenderConfig()
    params = torch.rand(batch, synth.num_learned, generator=torch.Generator().manual_seed(0))
    timers = {"builtin": Timer()}
    child = None
    if python:
        child = subprocess.Popen(
            [python, "-c", TORCHSYNTH, str(batch)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdin is not None and child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("torchsynth did not start")
        timers["torchsynth"] = Timer()
    with torch.no_grad():
        synth.render_with(params[:2], config)
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.thread_time()
            synth.render_with(params, config)
            timers["builtin"].add(time.perf_counter() - wall, time.thread_time() - cpu)
            if child is not None:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                timers["torchsynth"].add(*map(float, child.stdout.readline().split()))
    if child is not None:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)
    return timers


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


def row(name: str, batch: int, seconds: float, cpu_s: float | None = None, audio_s: float = 4.0) -> dict:
    return {
        "synth": name,
        "batch": batch,
        "seconds": round(seconds, 4),
        "cpu_seconds": None if cpu_s is None else round(cpu_s, 4),
        "sounds_per_s": round(batch / seconds, 2),
        "x_real_time": round(batch * audio_s / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--torchsynth-python", help="a Python with torchsynth installed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    timers = interleaved(args.torchsynth_python, args.batch, args.repeats)
    names = {"builtin": "builtin-32 (1 thread)", "torchsynth": "torchsynth Voice (1 thread)"}
    rows = [row(names[key], args.batch, *timer.median()) for key, timer in timers.items()]
    for name in ("faust:subtractive", "amsynth"):
        try:
            rows.append(row(name, 16, time_synth(name, 16, 3)))
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            print(f"{name}: skipped ({error})", file=sys.stderr)
    report: dict = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 1 torch thread, shared 2-core machine",
        "repeats": args.repeats,
        "rows": rows,
    }
    if "torchsynth" in timers:
        (wall_b, cpu_b), (wall_t, cpu_t) = timers["builtin"].median(), timers["torchsynth"].median()
        report["builtin_vs_torchsynth"] = {"wall": round(wall_t / wall_b, 2), "cpu": round(cpu_t / cpu_b, 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render_throughput.json").write_text(json.dumps(report, indent=2))
    lines = ["| synth | batch | wall s | CPU s | sounds/s (wall) | x real time |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['synth']} | {r['batch']} | {r['seconds']} | {r['cpu_seconds'] or '-'} | {r['sounds_per_s']} "
        f"| {r['x_real_time']} |"
        for r in rows
    ]
    if "builtin_vs_torchsynth" in report:
        ratio = report["builtin_vs_torchsynth"]
        lines.append(
            f"\nbuilt-in synth speed / torchsynth speed (medians of {args.repeats} interleaved batches): "
            f"{ratio['cpu']}x by CPU time, {ratio['wall']}x by wall clock"
        )
    (args.out / "render_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
