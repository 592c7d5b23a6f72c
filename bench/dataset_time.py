"""Wall time of `flowsynth render-dataset` for a 10,000-sound 32-parameter dataset on this machine.

Runs the real command in a temporary folder, with local workers, and writes
``dataset_time.json`` and ``.md``; the baseline in the same run is the time
to render and featurize 64 sounds in this process on one thread, so that the
ratio says how well the workers scale on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from flowsynth.data import RenderJob
from flowsynth.data.render import render_chunk
from flowsynth.synth import RenderConfig, get_synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    synth = get_synth("builtin-32")
    job = RenderJob(synth.describe(), RenderConfig().describe(), 64, 0)
    params = torch.rand(64, 32, generator=torch.Generator().manual_seed(0)).numpy()
    render_chunk(job, 0, params[:2])
    start = time.perf_counter()
    render_chunk(job, 0, params)
    one_thread_s = (time.perf_counter() - start) / 64
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "flowsynth.cli.main", "render-dataset", "--synth", "builtin-32"]
        command += ["--n", str(args.n), "--out", f"{folder}/b32.h5", "--workers", str(args.workers), "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall_s = time.perf_counter() - start
    report = {
        "n": args.n,
        "workers": args.workers,
        "wall_s": round(wall_s, 1),
        "sounds_per_s": round(args.n / wall_s, 1),
        "one_thread_s_per_sound": round(one_thread_s, 4),
        "speedup_vs_one_thread": round(one_thread_s * args.n / wall_s, 2),
        "goal_s": 180,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dataset_time.json").write_text(json.dumps(report, indent=2))
    text = (
        f"render-dataset builtin-32, {args.n} sounds of 4 s, {args.workers} workers: {report['wall_s']} s "
        f"({report['sounds_per_s']} sounds/s; one thread in-process: {one_thread_s * 1000:.1f} ms per sound, "
        f"so the workers gave {report['speedup_vs_one_thread']}x); goal: under 180 s\n"
    )
    (args.out / "dataset_time.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
