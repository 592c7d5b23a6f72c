"""MIDI messages -> knobs and notes: the default map, learn mode, channels, mistakes."""

from __future__ import annotations

import threading

import mido
import pytest

from flowsynth.control import Instrument
from flowsynth.serve.audio import AudioEngine
from flowsynth.serve.midi import DEFAULT_CC_MAP, MidiControl, MidiInput, cc_to_knob


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=channel)


def test_default_map_turns_macro_and_semantic_knobs(instrument: Instrument) -> None:
    midi = MidiControl(instrument)
    midi.handle(cc(21, 127))
    midi.handle(cc(23, 0))
    state = instrument.state()
    assert state["macros"][0]["value"] == pytest.approx(1.0, abs=1e-5)
    assert state["macros"][2]["value"] == pytest.approx(-1.0, abs=1e-5)
    midi.handle(cc(42, 96))  # a semantic knob moves the whole latent: the macro knobs read the new place
    assert instrument.state()["semantic"][1]["value"] == pytest.approx(cc_to_knob(96), abs=1e-4)
    assert midi.handled == 3 and not midi.errors
    assert DEFAULT_CC_MAP[1] == ("morph", 0)


def test_learn_maps_the_next_cc(instrument: Instrument) -> None:
    midi = MidiControl(instrument)
    midi.learn("macro", 4)
    midi.handle(cc(74, 127))
    assert midi.cc_map[74] == ("macro", 4) and 25 not in midi.cc_map and midi.learning is None
    assert instrument.state()["macros"][4]["value"] == pytest.approx(1.0, abs=1e-5)
    assert midi.describe()["cc_map"]["74"] == ["macro", 4]
    with pytest.raises(ValueError, match="learn takes one of macro, semantic, morph"):
        midi.learn("volume", 0)


def test_mod_wheel_morphs_along_the_path(instrument: Instrument) -> None:
    midi = MidiControl(instrument)
    midi.handle(cc(1, 64))
    assert midi.errors == ["no interpolation path yet: define one between two presets first"]
    path = instrument.set_path(0, 1, steps=3)
    midi.handle(cc(1, 127))
    assert instrument.params.tolist() == pytest.approx(path.params[-1].tolist(), abs=1e-5)


def test_channel_filter_and_unmapped_ccs(instrument: Instrument) -> None:
    midi = MidiControl(instrument, channel=2)
    version = instrument.version
    midi.handle(cc(21, 127, channel=0))
    midi.handle(cc(100, 127, channel=2))
    assert instrument.version == version
    midi.handle(cc(21, 0, channel=2))
    assert instrument.version == version + 1


def test_notes_start_and_release_voices(instrument: Instrument) -> None:
    engine = AudioEngine(instrument)  # not started: notes wait for a render
    midi = MidiControl(instrument, engine)
    midi.handle(mido.Message("note_on", note=67, velocity=90))
    assert 67 in engine._pending
    midi.handle(mido.Message("note_on", note=67, velocity=0))  # a note-off in disguise
    assert 67 not in engine._pending


def test_bad_maps_are_refused(instrument: Instrument) -> None:
    with pytest.raises(ValueError, match="CC numbers are 0-127"):
        MidiControl(instrument, cc_map={200: ("macro", 0)})
    with pytest.raises(ValueError, match="a CC drives one of macro, semantic, morph"):
        MidiControl(instrument, cc_map={3: ("pan", 0)})
    midi = MidiControl(instrument, cc_map={3: ("macro", 99)})
    midi.handle(cc(3, 10))
    assert midi.errors and "macro index must be an integer" in midi.errors[0]


def test_close_waits_for_the_message_being_applied_and_drops_later_ones(instrument: Instrument) -> None:
    """Closing a port while its callback runs could abort the process: close() waits for that message."""
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    notes: list[int] = []

    class SlowPlayer:
        def note_on(self, note: int, velocity: int = 100) -> None:
            entered.set()
            assert release.wait(10.0)
            notes.append(note)

        def note_off(self, note: int) -> None: ...

    class Port:
        def close(self) -> None:
            assert notes == [60], "the port closed while a message was being applied"
            closed.set()

    midi = MidiControl(instrument, player=SlowPlayer())
    midi._port = MidiInput(lambda callback: Port(), midi.handle)
    receive = midi._port._receive  # what rtmidi calls on its thread
    receiving = threading.Thread(target=receive, args=(mido.Message("note_on", note=60, velocity=90),))
    receiving.start()
    assert entered.wait(10.0)
    closing = threading.Thread(target=midi.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive() and not closed.is_set(), "close() must wait for the message in flight"
    release.set()
    closing.join(10.0)
    receiving.join(10.0)
    assert closed.is_set()
    receive(mido.Message("note_on", note=62, velocity=90))
    assert notes == [60], "messages after close() are dropped"
