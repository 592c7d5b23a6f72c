"""The audio engine offline (its callback body run block by block): notes, crossfades without clicks, release."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from flowsynth.control import Instrument
from flowsynth.serve.audio import AudioEngine

BLOCK = 256
MASTER = 0.5


@pytest.fixture
def engine(instrument: Instrument) -> Iterator[AudioEngine]:
    engine = AudioEngine(instrument, crossfade_s=0.03, release_s=0.05).start()
    try:
        yield engine
    finally:
        engine.stop()


def _blocks(engine: AudioEngine, count: int) -> np.ndarray:
    out = np.zeros(count * BLOCK, dtype=np.float32)
    for i in range(count):
        engine.process(out[i * BLOCK : (i + 1) * BLOCK])
    return out


def _wait(condition, timeout_s: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.005)


def _render(instrument: Instrument, note: int) -> np.ndarray:
    return instrument.space.render(instrument.params[None], note=note)[0].numpy()


def test_a_note_plays_the_rendered_sound(engine: AudioEngine, instrument: Instrument) -> None:
    instrument.load_preset(4)
    engine.note_on(64, velocity=100)
    _wait(lambda: engine._events)
    played = _blocks(engine, 8)
    expected = MASTER * _render(instrument, 64)[: len(played)]
    assert np.allclose(played, np.clip(expected, -1, 1), atol=1e-6)
    assert engine.playing == (64,) and engine.stats.triggers == 1 and np.abs(played).max() > 1e-3


def test_a_knob_move_crossfades_to_the_new_rendering_without_a_click(
    engine: AudioEngine, instrument: Instrument
) -> None:
    instrument.load_preset(2)
    old = MASTER * _render(instrument, 60)
    engine.note_on(60)
    _wait(lambda: engine._events)
    before = _blocks(engine, 10)
    instrument.set_macro(0, 1.0 if instrument.state()["macros"][0]["value"] < 0 else -1.0)
    new = MASTER * _render(instrument, 60)
    _wait(lambda: engine._events)
    after = _blocks(engine, 20)
    assert engine.stats.swaps == 1
    start, fade = len(before), engine.crossfade
    played = np.concatenate([before, after])
    assert np.allclose(played[:start], old[:start], atol=1e-6)
    assert np.allclose(played[start + fade :], new[start + fade : len(played)], atol=1e-6)
    # During the crossfade a step can only be as large as the two renderings' own steps plus their gap / fade length.
    region = slice(start - 1, start + fade + 1)
    steps = np.abs(np.diff(played[region]))
    own = np.maximum(np.abs(np.diff(old[region])), np.abs(np.diff(new[region])))
    gap = np.abs(new[region] - old[region]).max()
    assert steps.max() <= own.max() + gap / fade + 1e-6
    assert not np.allclose(old[start:], new[start:], atol=1e-3), "the knob move must change the sound"


def test_note_off_fades_out_and_ends_the_voice(engine: AudioEngine) -> None:
    engine.note_on(60)
    _wait(lambda: engine._events)
    _blocks(engine, 4)
    engine.note_off(60)
    tail = _blocks(engine, 8)
    release = engine.release
    assert np.abs(tail[release:]).max() == 0.0 and engine.playing == ()
    envelope = np.abs(tail[:release])
    assert envelope[-BLOCK:].max() < envelope[:BLOCK].max() + 1e-9


def test_the_next_note_is_rendered_ahead(engine: AudioEngine, instrument: Instrument) -> None:
    instrument.set_macro(1, 0.3)
    assert engine.wait_ready(20.0)
    engine.note_on(60)
    assert len(engine._events) == 1  # started at once, no render in between
    with pytest.raises(ValueError, match=r"note must be in \[0, 127\]"):
        engine.note_on(200)


def test_voices_are_limited(instrument: Instrument) -> None:
    engine = AudioEngine(instrument, max_voices=2).start()
    try:
        for note in (60, 62, 64):
            engine.note_on(note)
        _wait(lambda: len(engine._events) == 3)
        _blocks(engine, 1)
        assert engine.playing == (62, 64)
    finally:
        engine.stop()
    assert torch.isfinite(instrument.params).all()


def test_a_note_waiting_while_the_sound_changes_starts_with_the_new_sound(instrument: Instrument) -> None:
    instrument.load_preset(4)
    engine = AudioEngine(instrument, crossfade_s=0.03, release_s=0.05)
    render = engine._render
    changed = []

    def render_then_change(params, note):
        audio = render(params, note)
        if not changed:  # the sound changes while the first rendering is under way
            changed.append(True)
            instrument.load_preset(2)
        return audio

    engine._render = render_then_change
    engine.note_on(60)  # waits: nothing is rendered yet
    engine._render_needed()  # renders preset 4, which is no longer the sound: the note keeps waiting
    assert not engine._events and 60 in engine._pending
    engine._render_needed()
    assert [e[0] for e in engine._events] == ["start"]
    expected = _render(instrument, 60)
    assert np.allclose(engine._events[0][3], expected, atol=1e-6), "the note starts with the current sound"
