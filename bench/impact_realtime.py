"""Real-time behaviour of the impact instrument: speed on one core, trigger-to-sound latency, underruns.

1. Real-time factor of generation (compute time / audio duration, 1 s impacts, one thread), torch and
   ONNX, for every generator given (the first is the baseline the others are compared with).
2. A simulated performance on a real JACK server (dummy driver, started here with ``--period`` frames per
   period, which is also the audio block, and real-time scheduling unless ``--no-jack-realtime``): random
   gates (Poisson) and CV moves (random walk) for ``--minutes``; counts the stream's underflows, the
   server's own xrun reports (its log), callbacks whose own CPU time exceeded a block, and measures
   trigger-to-sound latency (wait for the next callback + the stream's output latency). The machine's
   load average is recorded, since a busy machine can starve the JACK server itself.
3. The machine's own floor, during each performance: a probe process at real-time priority (SCHED_FIFO
   60, below JACK's 70) sleeps 1 ms at a time and counts its wake-ups late by more than 3 ms and by more
   than one audio block. Nothing in the guest outranks it but JACK, so a late wake-up is the virtual
   machine (or the kernel) stalling: any audio thread with the same deadline would miss it too.

    python bench/impact_realtime.py --minutes 10 --period 128 [--checkpoint pruned.pt --label pruned ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flowsynth.impact.engine import EngineConfig
from flowsynth.impact.generate import default_generator, generate, reference_curves
from flowsynth.impact.instrument import ImpactInstrument
from flowsynth.impact.train import load_generator

RATE = 22050


def real_time_factor(model, repeats: int) -> dict:
    curves = reference_curves("snare")
    seconds = (curves.shape[1] - 1) * 256 / RATE
    generate(model, curves)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        generate(model, curves, seed=i)
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "rtf": statistics.median(times) / seconds, "repeats": repeats}


def start_jack(period: int, realtime: bool, log: Path) -> subprocess.Popen:
    """A JACK server on the dummy driver; with ``realtime`` its threads (and its clients' process threads,
    where the audio callback runs) are scheduled SCHED_FIFO, as JACK is meant to run."""
    jackd = shutil.which("jackd")
    if jackd is None:
        raise SystemExit("jackd is not installed (Debian package jackd2)")
    name = f"flowsynth-bench-{os.getpid()}"
    scheduling = ["-R", "-P", "70"] if realtime else ["--no-realtime"]
    command = [jackd, *scheduling, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(period)]
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    time.sleep(1.0)
    if server.poll() is not None:
        raise SystemExit(f"jackd did not start ({' '.join(command)}): {log.read_text()[-500:]}")
    return server


def server_xruns(log: Path) -> list[str]:
    """The JACK server's log lines that report an xrun, so far."""
    return [line for line in log.read_text(errors="replace").splitlines() if "xrun" in line.lower()]


def jack_device() -> int:
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()
    for api in sounddevice.query_hostapis():
        if "JACK" in api["name"] and api["devices"]:
            return int(api["default_output_device"])
    raise SystemExit("sounddevice does not see the JACK server")


class Prerendered:
    """The baseline instrument: both gates' sounds rendered once; CV moves cost nothing (no model runs)."""

    def __init__(self, instrument: ImpactInstrument) -> None:
        self.sounds = {gate: instrument(gate, (0.5, 0.5, 0.5)) for gate in (1, 2)}
        self.num_samples = instrument.num_samples

    def __call__(self, gate: int, cvs: tuple[float, float, float]) -> np.ndarray:
        return self.sounds[gate]


def _probe_main(seconds: float, block_s: float, results) -> None:
    """Body of the stall probe (see the module docstring); puts its counts on ``results``."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(60))
        realtime = True
    except (PermissionError, AttributeError):
        realtime = False
    late, at = [], []
    end = time.monotonic() + seconds
    last = time.monotonic()
    while last < end:
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > 0.004:
            late.append(now - last - 0.001)
            at.append((last, now))
        last = now
    results.put({
        "realtime": realtime,
        "late_3ms": sum(x > 0.003 for x in late),
        "late_block": sum(x > block_s for x in late),
        "worst_ms": [round(x * 1000, 1) for x in sorted(late)[-5:]],
        "late_block_spans": [span for span, x in zip(at, late, strict=True) if x > block_s][:1000],
    })  # fmt: skip


def start_probe(seconds: float, block_s: float):
    """Starts the stall probe in a process of its own; returns ``(process, queue)``."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    probe = context.Process(target=_probe_main, args=(seconds, block_s, results), daemon=True)
    probe.start()
    return probe, results


def performance(model, minutes: float, seed: int, render_in: str, block: int, baseline: bool = False) -> dict:
    from flowsynth.impact.realtime import Player

    instrument = ImpactInstrument(model, reference_curves("tom"), reference_curves("crash"))
    if baseline:
        instrument = Prerendered(instrument)  # type: ignore[assignment]
    player = Player(instrument, EngineConfig(RATE, block, instrument.num_samples), jack_device(), render_in=render_in)
    rng = np.random.default_rng(seed)
    load = []
    moves = 0
    probe, probe_results = start_probe(minutes * 60.0, block / RATE)
    with player:
        started = time.monotonic()
        next_move = started
        while time.monotonic() - started < minutes * 60.0:
            time.sleep(float(rng.exponential(0.25)))  # about 4 gates per second
            player.trigger(int(rng.integers(1, 3)))
            if time.monotonic() >= next_move:
                for name in ("richness", "noisiness", "degree"):
                    value = float(np.clip(player.engine.cvs[("richness", "noisiness", "degree").index(name)]
                                          + rng.normal(0, 0.15), 0, 1))  # fmt: skip
                    player.set_cv(name, value)
                moves += 1
                next_move += 0.5
                load.append(os.getloadavg()[0])
    s = player.stats
    stalls = probe_results.get(timeout=60.0)
    probe.join(timeout=10.0)
    spans = stalls.pop("late_block_spans")
    # an underflow is flagged by the callback after the late one: look up to 3 blocks around the stall
    near = [any(a - 3 * block / RATE <= t <= b + 3 * block / RATE for a, b in spans) for t in s.underrun_times]
    stalls["underruns_at_a_stall"] = f"{sum(near)} of the first {len(near)}"
    latencies = np.array(s.latencies_s) * 1000.0
    return {
        "minutes": minutes,
        "render_in": render_in,
        "blocks": s.blocks,
        "underruns": s.underruns,
        "underrun_at_s": [round(b * block / RATE, 2) for b in s.underrun_blocks],
        "late_callbacks_wall": s.late_callbacks,
        "max_callback_ms": s.max_callback_s * 1000.0,
        "max_callback_cpu_ms": s.max_callback_cpu_s * 1000.0,
        "over_budget_callbacks": s.over_budget_callbacks,
        "block": block,
        "block_ms": block / RATE * 1000.0,
        "triggers": s.triggers,
        "cv_moves": moves,
        "renders": s.renders,
        "render_errors": s.render_errors,
        "output_latency_ms": player.output_latency_s * 1000.0,
        "latency_ms": {
            "median": float(np.median(latencies)),
            "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max()),
        },
        "load_average_mean": float(np.mean(load)) if load else float("nan"),
        "machine_stalls": stalls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], help="extra generators to compare")
    parser.add_argument("--label", action="append", default=[], help="a label per --checkpoint")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each simulated performance")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--render-in", default="process", choices=("process", "thread"))
    parser.add_argument("--period", type=int, default=128, help="JACK period = audio block, in frames")
    parser.add_argument("--no-jack-realtime", action="store_true", help="run jackd without real-time scheduling")
    parser.add_argument("--skip-performance", action="store_true")
    parser.add_argument(
        "--baseline-minutes",
        type=float,
        default=0.0,
        help="also play the same performance without model renders (the machine's own floor)",
    )
    parser.add_argument("--merge", action="store_true", help="add to the existing report instead of replacing it")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {"shipped": default_generator()}
    for i, path in enumerate(args.checkpoint):
        models[args.label[i] if i < len(args.label) else path.stem] = load_generator(path)[0]
    from flowsynth.impact.export import OnnxGenerator, export_onnx

    realtime = not args.no_jack_realtime
    report: dict = {"conditions": f"{RATE} Hz, 1 s impacts, torch threads 1, onnxruntime threads 1; JACK dummy "
                    f"driver, JACK period = audio block (column block), "
                    f"{'real-time (SCHED_FIFO 70)' if realtime else 'no real-time'} scheduling",
                    "cpu_count": os.cpu_count(), "speed": {}, "performance": {}}  # fmt: skip
    if args.merge and (args.out / "impact_realtime.json").is_file():
        report = json.loads((args.out / "impact_realtime.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        for label, model in ({} if args.skip_speed else models).items():
            onnx = OnnxGenerator(export_onnx(model, Path(folder) / f"{label}.onnx"))
            report["speed"][label] = {
                "parameters": model.num_parameters,
                "torch": real_time_factor(model, args.repeats),
                "onnx": real_time_factor(onnx, args.repeats),
                "load_average": os.getloadavg()[0],
            }
            print(label, json.dumps(report["speed"][label]))
    if "shipped" in report["speed"]:
        base = report["speed"]["shipped"]["torch"]["median_s"]
        for entry in report["speed"].values():
            entry["speedup_vs_shipped"] = base / entry["torch"]["median_s"]
    runs = [] if args.skip_performance else [(label, model, False) for label, model in models.items()]
    if args.baseline_minutes > 0:
        runs.append(("baseline: no model renders", models["shipped"], True))
    if runs:
        log = Path(tempfile.mkstemp(prefix="jackd-", suffix=".log")[1])
        server = start_jack(args.period, realtime, log)
        try:
            for label, model, baseline in runs:
                minutes = args.baseline_minutes if baseline else args.minutes
                before = len(server_xruns(log))
                entry = performance(model, minutes, 0, args.render_in, args.period, baseline)
                lines = server_xruns(log)[before:]
                entry.update(server_xruns=len(lines), server_xrun_lines=lines[:10], jack_realtime=realtime)
                key = f"{label}, {args.period}-frame blocks" + ("" if realtime else ", jackd --no-realtime")
                report["performance"][key] = entry
                print(key, json.dumps(entry))
        finally:
            import sounddevice

            sounddevice._terminate()
            server.terminate()
            server.wait(timeout=10)
            log.unlink(missing_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "impact_realtime.json").write_text(json.dumps(report, indent=1))
    (args.out / "impact_realtime.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = ["# Impact instrument: real-time measurements\n", report["conditions"] + "\n",
             "| generator | parameters | torch ms / 1 s | RTF torch | RTF ONNX | speed-up | load avg |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, s in report["speed"].items():
        lines.append(f"| {label} | {s['parameters']} | {s['torch']['median_s'] * 1000:.1f} | {s['torch']['rtf']:.3f} | "
                     f"{s['onnx']['rtf']:.3f} | {s['speedup_vs_shipped']:.2f}x | {s['load_average']:.1f} |")  # fmt: skip
    if report["performance"]:
        lines += ["\n| generator | block | JACK real-time | minutes | blocks | underruns | server xruns | callbacks > block (CPU) | "
                  "max callback CPU ms | triggers | renders | latency median / p99 / max ms | load avg | "
                  "probe stalls > 3 ms / > block (worst ms); underruns at a stall |",
                  "|---" * 14 + "|"]  # fmt: skip
        for label, p in report["performance"].items():
            over = p["over_budget_callbacks"]
            lat = p["latency_ms"]
            rt = {True: "yes", False: "no"}.get(p.get("jack_realtime"), "-")
            lines.append(f"| {label} | {p.get('block', 256)} | {rt} | {p['minutes']} | {p['blocks']} | {p['underruns']} | "
                         f"{p.get('server_xruns', '-')} | {over} | {p['max_callback_cpu_ms']:.2f} | {p['triggers']} | "
                         f"{p['renders']} | {lat['median']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} | "
                         f"{p['load_average_mean']:.1f} | {_stalls(p.get('machine_stalls'))} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _stalls(stalls: dict | None) -> str:
    if not stalls:
        return "-"
    worst = max(stalls["worst_ms"], default=0.0)
    text = f"{stalls['late_3ms']} / {stalls['late_block']} ({worst:.1f}); {stalls.get('underruns_at_a_stall', '-')}"
    return text + ("" if stalls["realtime"] else ", probe not real-time")


if __name__ == "__main__":
    main()
