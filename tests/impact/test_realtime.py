"""Real-time play against a real JACK server (dummy driver), plus the MIDI, OSC and CV-input control paths."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import mido
import numpy as np
import pytest

from flowsynth.impact.engine import EngineConfig, ImpactEngine
from flowsynth.impact.generate import default_generator, reference_curves
from flowsynth.impact.instrument import ImpactInstrument
from flowsynth.impact.realtime import SWITCH_INTERVAL_S, CvInput, MidiMap, Player, osc_dispatcher

RATE, BLOCK = 22050, 256


@pytest.fixture(scope="module")
def jack_device() -> Iterator[int]:
    """Starts ``jackd -d dummy`` under its own server name and yields sounddevice's index of its device."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd is not installed (Debian package jackd2)")
    try:
        import sounddevice
    except OSError as error:  # sounddevice's wheel on Linux needs the system's PortAudio
        pytest.fail(f"{error}: install Debian's libportaudio2 (with JACK support)")
    name = f"flowsynth-impact-{os.getpid()}"
    command = [jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(BLOCK)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        device = _wait_for_jack(sounddevice, server)
        yield device
    finally:
        sounddevice._terminate()
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        sounddevice._initialize()


def _wait_for_jack(sounddevice, server: subprocess.Popen) -> int:
    for _ in range(50):
        time.sleep(0.1)
        sounddevice._terminate()
        sounddevice._initialize()
        for api in sounddevice.query_hostapis():
            if "JACK" in api["name"] and api["devices"]:
                return int(api["default_output_device"])
        if server.poll() is not None:
            raise RuntimeError(f"jackd exited: {server.stderr.read().decode() if server.stderr else ''}")
    raise AssertionError("sounddevice does not see the JACK server's device")


@pytest.fixture(scope="module")
def instrument() -> ImpactInstrument:
    return ImpactInstrument(default_generator(), reference_curves("tom"), reference_curves("crash"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_play_on_jack_with_osc_controls(jack_device: int, instrument: ImpactInstrument) -> None:
    from pythonosc.osc_server import ThreadingOSCUDPServer
    from pythonosc.udp_client import SimpleUDPClient

    player = Player(instrument, EngineConfig(RATE, BLOCK, instrument.num_samples), jack_device, record_s=3.0)
    engine = player.engine
    port = _free_port()
    switch_interval = sys.getswitchinterval()
    with player:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S  # control threads hand the lock over sooner
        server = ThreadingOSCUDPServer(("127.0.0.1", port), osc_dispatcher(engine, player.wake))
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = SimpleUDPClient("127.0.0.1", port)
        time.sleep(0.2)
        player.trigger(1)
        time.sleep(0.5)
        client.send_message("/cv/richness", 0.9)
        client.send_message("/cv/degree", 0.7)
        deadline = time.monotonic() + 60.0  # the render process runs at a lower priority: a busy machine delays it
        while engine.renders < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.send_message("/gate", 2)
        time.sleep(1.0)
        server.shutdown()
        server.server_close()
    assert sys.getswitchinterval() == switch_interval
    stats = player.stats
    period = BLOCK / RATE
    assert stats.blocks > 0.5 * 2.0 / period, "the JACK callback did not run at the audio rate"
    assert stats.triggers == 2 and stats.renders >= 2 and not stats.render_errors
    assert engine.cvs[0] == pytest.approx(0.9) and engine.cvs[2] == pytest.approx(0.7)
    print(f"underruns on this machine: {stats.underruns} in {stats.blocks} blocks, slowest callback "
          f"{stats.max_callback_cpu_s * 1000:.2f} ms of CPU (bench/impact_realtime.py measures these)")  # fmt: skip
    assert np.abs(player.recording).max() > 0.05
    waits = [lat - player.output_latency_s for lat in stats.latencies_s]
    assert len(waits) == 1 and 0 <= waits[0] < 1.0, waits  # it sounded (how soon: bench/impact_realtime.py)


def test_midi_notes_are_gates_and_ccs_are_cvs() -> None:
    engine = ImpactEngine(
        lambda gate, cvs: np.full(512, gate, np.float32), EngineConfig(block_size=64, impact_samples=512)
    )
    engine.render_pending()
    midi = MidiMap()
    for message in (
        mido.Message("note_on", note=38, velocity=100),
        mido.Message("note_on", note=36, velocity=0),  # a note-off in disguise
        mido.Message("note_on", note=60, velocity=100),  # not a gate
        mido.Message("control_change", control=2, value=127),
        mido.Message("control_change", control=3, value=0),
    ):
        midi.handle(engine, message)
    out = np.zeros((64, 1), np.float32)
    engine.process(out)
    assert engine.triggers_played == 1 and out[0, 0] == pytest.approx(2 * engine.config.gain)
    assert engine.cvs == pytest.approx((0.5, 1.0, 0.0))


def test_cv_input_gates_fire_on_rising_edges_only() -> None:
    engine = ImpactEngine(lambda gate, cvs: np.ones(512, np.float32), EngineConfig(block_size=64, impact_samples=512))
    engine.render_pending()
    cv = CvInput()
    block = np.zeros((64, 5), np.float32)
    block[20:, 0] = 1.0  # gate 1 rises at sample 20 and stays high
    block[:, 3] = 0.25  # CV noisiness
    for _ in range(3):
        cv.process(block, engine)
        block[:20, 0] = 1.0
    out = np.zeros((64, 1), np.float32)
    engine.process(out)
    assert engine.triggers_played == 1 and out[19, 0] == 0 and out[20, 0] > 0
    assert engine.cvs[1] == pytest.approx(0.25)


def test_play_command_on_jack(jack_device: int, impact_cli: Callable, capsys: pytest.CaptureFixture) -> None:
    args = ["play", "--impact", "kick", "--second", "snare", "--device", str(jack_device), "--duration-s", "1.0"]
    assert impact_cli([*args, "--osc-port", str(_free_port())]) == 0
    out = capsys.readouterr().out
    assert "playing kick (gate 1) and its merge with snare (gate 2)" in out and " underruns" in out
