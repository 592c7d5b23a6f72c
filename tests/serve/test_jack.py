"""``Server`` against a real JACK server (dummy driver): audio out, MIDI in over JACK MIDI, OSC on the side."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import mido
import numpy as np
import pytest

from flowsynth.control import Instrument
from flowsynth.serve import ServeConfig, Server

PERIOD_S = 256 / 22050


@pytest.fixture(scope="module")
def jack_device(jack_server: str) -> Iterator[int]:
    """sounddevice's index of the JACK server's output device (PortAudio re-initialized to see it)."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()
    try:
        apis = [api for api in sounddevice.query_hostapis() if "JACK" in api["name"] and api["devices"]]
        if not apis:
            pytest.fail("PortAudio does not see the JACK server (is libportaudio2 built with JACK?)")
        yield int(apis[0]["default_output_device"])
    finally:
        sounddevice._terminate()  # before the server goes; jack_server re-initializes PortAudio after


def _wait(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _connections(server_name: str) -> str:
    return subprocess.run(["jack_lsp", "-c", "-s", server_name], capture_output=True, text=True, env=os.environ).stdout


def test_notes_and_knobs_over_jack_midi_play_on_jack_audio(
    jack_server: str, jack_device: int, instrument: Instrument
) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    config = ServeConfig(
        osc_port=0, http_port=None, midi=True, midi_api="jack", audio=True, audio_device=jack_device,
        block_size=256, record_s=5.0,
    )  # fmt: skip
    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    with Server(instrument, config) as server:
        engine, output = server.engine, server.output
        assert engine.wait_ready(30.0), "the first note was not rendered ahead"
        links = _connections(jack_server)
        name = next(n for n in backend.get_output_names() if "flowsynth" in n)
        with backend.open_output(name) as keyboard:  # a new JACK client: the graph may pause while it joins
            first_blocks, first_underruns, started = output.blocks, output.underruns, time.perf_counter()
            keyboard.send(mido.Message("note_on", note=60, velocity=110))
            _wait(lambda: engine.stats.triggers == 1, "the note to start")
            time.sleep(0.2)
            keyboard.send(mido.Message("control_change", control=21, value=127))
            _wait(lambda: engine.stats.swaps >= 1, "the first knob move to be heard")
            SimpleUDPClient("127.0.0.1", server.osc.port).send_message("/flowsynth/v1/macro", [1, -0.5])
            _wait(lambda: engine.stats.swaps >= 2, "the OSC knob move to be heard")
            time.sleep(0.2)
            keyboard.send(mido.Message("note_off", note=60))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        recorded = output.recorded
        blocks, underruns = output.blocks, output.underruns
    state = instrument.state()
    assert state["macros"][0]["value"] == pytest.approx(1.0, abs=1e-4)
    assert state["macros"][1]["value"] == pytest.approx(-0.5, abs=1e-4)
    assert "PortAudio" in links and "system:playback_1" in links, links
    rate = (blocks - first_blocks) / elapsed
    assert rate > 0.5 / PERIOD_S, f"the JACK callback ran {rate:.1f} times a second, not {1 / PERIOD_S:.1f}"
    # The callback's own work (its thread's CPU time: a stall of the virtual machine inside it is not its
    # work) stays under a period. How many blocks a shared, loaded machine delivers late is the machine's
    # (bench/ measures underruns); an engine that starves the stream misses most of them.
    cpu_ms = output.max_callback_cpu_s * 1e3
    assert output.max_callback_cpu_s < PERIOD_S, f"the callback worked up to {cpu_ms:.2f} ms"
    missed = underruns - first_underruns
    assert missed <= 0.5 * (blocks - first_blocks), f"{missed} underruns in {blocks - first_blocks} blocks"
    assert np.abs(recorded).max() > 1e-3, "nothing was heard"
    assert not engine.stats.render_errors and engine.playing == ()
    assert server.osc is None and server.midi is None  # stopped
    latency = engine.stats.trigger_latencies_s[0]
    assert latency < 0.5, f"trigger to sound took {latency:.3f} s"
