"""Round-trip latency of the instrument's controls: OSC or MIDI knob message -> new parameters -> new audio.

Every figure is measured in the same run as its baseline:

* **direct call**: ``Instrument.set_macro`` in the same thread (the floor: model and bookkeeping only);
* **semantic knob**: ``Instrument.set_semantic`` in the same thread, turned (steps of 0.02) and jumping
  (random values): a steered knob's Newton steps grow with the distance it travels;
* **UDP echo**: a bare UDP echo thread (what any OSC round trip costs here without the instrument);
* **OSC knob**: ``/flowsynth/v1/macro i v`` sent, ``/flowsynth/v1/params`` received (the goal: median
  under 5 ms, p99 under 20 ms);
* **JACK MIDI echo** / **MIDI knob**: a CC sent on a JACK MIDI port until it is received, then until
  the instrument has the new parameters (JACK delivers MIDI once per period: the period is reported);
* **knob -> new audio**: from a knob move until the audio callback (JACK dummy driver) starts the
  crossfade to the new rendering, and **note -> sound** for a note rendered ahead.

Prints a table and writes ``control_latency.json`` (milliseconds: median, p90, p99, max).

Usage: ``python bench/control_latency.py --model runs/b32-flow_reg/model.pt --out bench/reports``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from flowsynth.control import AnalysisConfig, ControlSetup, Instrument, build_instrument
from flowsynth.serve.midi import MidiInput

PERIOD = 128
RATE = 22050


def summary(seconds: list[float]) -> dict[str, float]:
    """Milliseconds: n, median, p90, p99, max."""
    ms = np.asarray(seconds) * 1e3
    return {
        "n": len(ms),
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def knob_values(count: int, seed: int) -> list[float]:
    return torch.empty(count).uniform_(-1, 1, generator=torch.Generator().manual_seed(seed)).tolist()


def time_direct(instrument: Instrument, count: int) -> list[float]:
    times = []
    for value in knob_values(count, 1):
        start = time.perf_counter()
        instrument.set_macro(0, value)
        times.append(time.perf_counter() - start)
    return times


def time_semantic(instrument: Instrument, index: int, count: int, turned: bool) -> list[float]:
    """``Instrument.set_semantic`` on knob ``index``: random jumps, or a knob turned in steps of 0.02 (a sweep)."""
    if turned:
        sweep = torch.linspace(-1, 1, 101).tolist()
        values = [(sweep + sweep[::-1])[i % 202] for i in range(count)]
    else:
        values = knob_values(count, 2)
    instrument.load_preset(0)
    times = []
    for value in values:
        start = time.perf_counter()
        instrument.set_semantic({index: value})
        times.append(time.perf_counter() - start)
    return times


def _udp_client() -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(2.0)
    return client


def time_udp_echo(count: int) -> list[float]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                data, sender = server.recvfrom(65536)
            except TimeoutError:
                continue
            server.sendto(data, sender)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    client, times = _udp_client(), []
    message = b"/flowsynth/v1/macro\x00,if\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    for _ in range(count):
        start = time.perf_counter()
        client.sendto(message, server.getsockname())
        client.recvfrom(65536)
        times.append(time.perf_counter() - start)
    stop.set()
    thread.join()
    server.close()
    client.close()
    return times


def time_osc(instrument: Instrument, count: int) -> list[float]:
    from pythonosc.osc_message_builder import OscMessageBuilder

    from flowsynth.serve.osc import OscServer

    client, times = _udp_client(), []
    with OscServer(instrument, port=0) as server:
        for value in knob_values(count, 2):
            builder = OscMessageBuilder("/flowsynth/v1/macro")
            builder.add_arg(1)
            builder.add_arg(float(value))
            data = builder.build().dgram
            start = time.perf_counter()
            client.sendto(data, ("127.0.0.1", server.port))
            client.recvfrom(65536)  # /params (the /knobs reply follows)
            times.append(time.perf_counter() - start)
            client.recvfrom(65536)
    client.close()
    return times


class Jack:
    """A JACK server with the dummy driver, for the MIDI and audio figures."""

    def __init__(self, period: int) -> None:
        self.name = f"flowsynth-bench-{os.getpid()}"
        self.log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
        command = ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(RATE), "-p", str(period)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log)
        os.environ.update(JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        for _ in range(100):
            ports = subprocess.run(["jack_lsp", "-s", self.name], capture_output=True, text=True, check=False)
            if "system:playback_1" in ports.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError(f"jackd did not start: {Path(self.log.name).read_text()[-500:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        Path(self.log.name).unlink(missing_ok=True)


def _midi_pair(handler: Callable) -> tuple:
    import mido

    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    name = f"bench-in-{len(backend.get_output_names())}"
    port = MidiInput(lambda cb: backend.open_input(name, virtual=True, callback=cb), handler)
    sender = backend.open_output(next(n for n in backend.get_output_names() if name in n))
    time.sleep(1.0)  # the graph settles after a client joins
    return port, sender


def time_midi_echo(count: int) -> list[float]:
    import mido

    received = threading.Event()
    port, sender = _midi_pair(lambda message: received.set())
    times = []
    for i in range(count):
        received.clear()
        start = time.perf_counter()
        sender.send(mido.Message("control_change", control=21, value=i % 128))
        if received.wait(2.0):
            times.append(time.perf_counter() - start)
    sender.close()
    port.close()
    return times


def time_midi_knob(instrument: Instrument, count: int) -> list[float]:
    import mido

    from flowsynth.serve.midi import MidiControl

    midi, changed = MidiControl(instrument), threading.Event()
    instrument.subscribe(lambda version: changed.set())
    port, sender = _midi_pair(midi.handle)
    times = []
    for i in range(count):
        changed.clear()
        start = time.perf_counter()
        sender.send(mido.Message("control_change", control=22, value=(37 * i) % 128))
        if changed.wait(2.0):
            times.append(time.perf_counter() - start)
    sender.close()
    port.close()
    return times


def time_audio(instrument: Instrument, count: int, period: int) -> dict[str, list[float]]:
    import sounddevice

    from flowsynth.serve.audio import AudioEngine, AudioOutput

    sounddevice._terminate()
    sounddevice._initialize()
    api = next(a for a in sounddevice.query_hostapis() if "JACK" in a["name"])
    engine = AudioEngine(instrument, sample_rate=RATE)
    with AudioOutput(engine, api["default_output_device"], block_size=period) as output:
        assert engine.wait_ready(60.0)
        engine.note_on(60)
        time.sleep(0.5)
        for value in knob_values(count, 3):
            swaps = engine.stats.swaps
            instrument.set_macro(0, value)
            deadline = time.perf_counter() + 5.0
            while engine.stats.swaps == swaps and time.perf_counter() < deadline:
                time.sleep(0.001)
        engine.note_off(60)
        triggers = []
        for _ in range(min(count, 20)):
            engine.wait_ready(10.0)
            engine.note_on(60)
            time.sleep(0.1)
            engine.note_off(60)
            time.sleep(0.1)
        underruns, blocks = output.underruns, output.blocks
    sounddevice._terminate()
    triggers = list(engine.stats.trigger_latencies_s)[1:]
    print(f"audio: {blocks} blocks, {underruns} underruns, renders {engine.stats.renders}")
    return {"change": list(engine.stats.change_latencies_s), "trigger": triggers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="latent model checkpoint")
    parser.add_argument("--data", type=Path, help="dataset for the preset bank (optional)")
    parser.add_argument("--count", type=int, default=500, help="messages per measurement")
    parser.add_argument("--out", type=Path, default=Path("bench/reports"))
    parser.add_argument(
        "--jack-period", type=int, default=PERIOD, help="JACK period in frames (MIDI is delivered once per period)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = ControlSetup(data=str(args.data) if args.data else None, analysis=AnalysisConfig(anchors=4, steps=5))
    instrument = build_instrument(args.model, setup, log=print)
    instrument.torch_threads = 1  # in every thread that moves it, as `flowsynth serve` does
    for _ in range(20):  # warm-up
        instrument.set_macro(0, 0.1)
    results: dict[str, dict] = {
        "direct call (floor)": summary(time_direct(instrument, args.count)),
        "UDP echo (baseline)": summary(time_udp_echo(args.count)),
        "OSC knob -> /params": summary(time_osc(instrument, args.count)),
    }
    kinds = [knob.kind for knob in instrument.semantic.knobs]
    for kind in dict.fromkeys(kinds):  # the first knob of each kind (validated knobs mix them)
        index = kinds.index(kind)
        for turned, how in ((True, "turned"), (False, "jumps")):
            row = f"semantic knob {index} ({kind}), {how}"
            results[row] = summary(time_semantic(instrument, index, args.count, turned=turned))
    if shutil.which("jackd"):
        jack = Jack(args.jack_period)
        try:
            results["JACK MIDI echo (baseline)"] = summary(time_midi_echo(min(args.count, 200)))
            results["MIDI knob -> params"] = summary(time_midi_knob(instrument, min(args.count, 200)))
            audio = time_audio(instrument, min(args.count, 50), args.jack_period)
            results["knob -> new audio"] = summary(audio["change"])
            results["note -> sound (rendered ahead)"] = summary(audio["trigger"])
        finally:
            jack.stop()
    report = {
        "model": str(args.model),
        "model_name": instrument.space.model.name,
        "synth": instrument.space.synth.name,
        "num_params": instrument.space.num_params,
        "render_s": instrument.space.config.render_s,
        "jack_period_frames": args.jack_period,
        "jack_period_ms": round(1e3 * args.jack_period / RATE, 3),
        "sample_rate": RATE,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread",
        "load_average": os.getloadavg(),
        "results": results,
        "osc_over_udp_echo_median": round(
            results["OSC knob -> /params"]["median_ms"] / results["UDP echo (baseline)"]["median_ms"], 2
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "control_latency.json" if args.jack_period == PERIOD else f"control_latency_p{args.jack_period}.json"
    (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'measurement':<34} {'n':>5} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9}  (ms)")
    for name, row in results.items():
        print(
            f"{name:<34} {row['n']:>5} {row['median_ms']:>9.3f} {row['p90_ms']:>9.3f} {row['p99_ms']:>9.3f} {row['max_ms']:>9.3f}"
        )
    print(f"JACK period {report['jack_period_ms']} ms; load average {report['load_average']}")


if __name__ == "__main__":
    main()
