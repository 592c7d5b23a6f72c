"""Target preparation on real recordings: trimming, level, pitch, note choice, and clear errors for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from flowsynth.audio import AudioError, load_audio
from flowsynth.matching.analysis import detect_pitch, detect_vibrato, fit_envelope
from flowsynth.matching.target import MAX_SOURCE_S, TARGET_PEAK_DB, prepare_target
from flowsynth.synth import RenderConfig

CONFIG = RenderConfig()


@pytest.mark.parametrize(("program", "note"), [(0, 67), (73, 72), (81, 45)])
def test_instrument_notes_are_played_at_their_pitch(render_gm_note, program: int, note: int) -> None:
    target = prepare_target(render_gm_note(program, note), CONFIG)
    assert target.pitch.pitched
    assert target.config.note == note
    assert abs(target.pitch.midi - note) < 0.5
    assert target.audio.shape == (CONFIG.num_samples,)
    assert math.isclose(20 * math.log10(float(target.audio.abs().max())), TARGET_PEAK_DB, abs_tol=0.01)
    assert target.config.render_s == CONFIG.render_s
    assert 0.3 < target.config.note_s < 2.5  # "auto": the note is held about 1 s, then rings
    assert prepare_target(render_gm_note(program, note), CONFIG, hold="model").config.note_s == CONFIG.note_s


def test_drum_hits_are_unpitched_and_played_at_the_reference_note(drum_paths: dict[str, Path]) -> None:
    for name in ("kick", "hihat"):
        target = prepare_target(drum_paths[name], CONFIG)
        assert not target.pitch.pitched, name
        assert target.config.note == CONFIG.note
        assert any("unpitched" in remark for remark in target.remarks)


def test_leading_silence_is_trimmed(render_gm_note, tmp_path: Path) -> None:
    audio, rate = soundfile.read(render_gm_note(0, 60))
    padded = tmp_path / "late.wav"
    soundfile.write(padded, np.concatenate([np.zeros((rate // 2, audio.shape[1])), audio]), rate)
    late, early = prepare_target(padded, CONFIG), prepare_target(render_gm_note(0, 60), CONFIG)
    assert early.onset_s < 0.01 and late.onset_s == pytest.approx(0.5, abs=0.01)
    # the sound starts within the first 30 ms of the analysed target, as a synth note does
    first = int(torch.nonzero(late.audio.abs() > 0.01 * late.audio.abs().max())[0])
    assert first < 0.03 * CONFIG.sample_rate


def test_long_sounds_are_cropped_and_said_so(speech_path: Path) -> None:
    config = RenderConfig(note_s=0.5, render_s=1.0)
    target = prepare_target(speech_path, config)
    assert target.audio.shape == (config.num_samples,)
    assert any("first 1 s are matched" in remark for remark in target.remarks)


def test_samples_in_memory_at_another_rate(render_gm_note) -> None:
    audio = load_audio(render_gm_note(73, 72), 44100)
    target = prepare_target(audio, CONFIG, source_rate=44100)
    assert target.config.note == 72 and target.source == "<samples>"


def test_forced_note_and_hold(render_gm_note) -> None:
    target = prepare_target(render_gm_note(73, 72), CONFIG, note=60, hold=1.5)
    assert target.config.note == 60 and target.config.note_s == 1.5
    assert 0.8 < prepare_target(render_gm_note(73, 72), CONFIG).config.note_s < 1.3  # the flute is held 1 s
    with pytest.raises(ValueError, match="hold must be"):
        prepare_target(render_gm_note(73, 72), CONFIG, hold="sometimes")


def _write(path: Path, samples: np.ndarray, rate: int = 22050, subtype: str = "PCM_16") -> Path:
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: _write(d / "silence.wav", np.zeros(22050)), "has no sound"),
        (lambda d: _write(d / "nan.wav", np.full(22050, np.nan), subtype="FLOAT"), "NaN"),
        (lambda d: _write(d / "click.wav", np.r_[np.zeros(4000), 0.5 * np.ones(200), np.zeros(4000)]), "too short"),
        (lambda d: _write(d / "long.wav", 0.1 * np.ones(int(8000 * (MAX_SOURCE_S + 1))), rate=8000), "too long"),
        (lambda d: (d / "text.wav").write_text("this is not a sound") and d / "text.wav", "cannot read"),
        (lambda d: d / "missing.wav", "not found"),
    ],
    ids=["silence", "nan", "too-short", "too-long", "not-audio", "missing"],
)
def test_unusable_input_gives_a_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        prepare_target(make(tmp_path), CONFIG)


def test_nan_samples_in_memory_are_refused() -> None:
    audio = torch.ones(22050)
    audio[100] = torch.nan
    with pytest.raises(AudioError, match="NaN"):
        prepare_target(audio, CONFIG, source_rate=22050)


def test_vibrato_of_a_voice_is_found(voice_paths: dict[str, Path]) -> None:
    audio = load_audio(voice_paths["ooo_vibrato"])
    vibrato = detect_vibrato(detect_pitch(audio, 22050), 22050)
    assert vibrato is not None
    assert 4.0 < vibrato.rate_hz < 6.0  # sox bends: +-60 cents every 0.1 s, a 5 Hz cycle
    assert 0.3 < vibrato.depth_semitones < 1.0


def test_envelope_fit_follows_a_held_and_a_struck_note(render_gm_note, kick_path: Path) -> None:
    organ = prepare_target(render_gm_note(16, 60, note_s=1.0), CONFIG).envelope
    kick = prepare_target(kick_path, CONFIG).envelope
    assert organ.sustain > 0.5 and 0.8 < organ.note_s < 1.3  # held for 1 s at a steady level
    assert kick.sustain < 0.2 and kick.attack_s < 0.05  # a hit: fast attack (46 ms frames), decays to nothing
    assert organ.error_db < 6 and kick.error_db < 6


def test_envelope_fit_of_a_synthetic_adsr() -> None:
    t = torch.arange(3 * 22050) / 22050
    level = torch.where(t < 0.1, t / 0.1, 0.5 + 0.5 * torch.exp(-4.6 * (t - 0.1) / 0.4))
    level = torch.where(t < 2.0, level, 0.5 * torch.exp(-4.6 * (t - 2.0) / 0.5))
    fit = fit_envelope(torch.sin(2 * torch.pi * 330 * t) * level, 22050)
    assert fit.note_s == pytest.approx(2.0, abs=0.1)
    assert fit.sustain == pytest.approx(0.5, abs=0.1)
    assert fit.attack_s == pytest.approx(0.1, rel=0.5)
