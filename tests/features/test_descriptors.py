"""Tests of the sound descriptors on real drums, instrument notes and speech, plus known answers."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from flowsynth.audio import load_audio
from flowsynth.features import descriptors as module
from flowsynth.features.descriptors import DESCRIPTORS, describe


@pytest.fixture(scope="module")
def sounds(drum_paths: dict[str, Path], render_gm_note, speech_path: Path) -> dict[str, torch.Tensor]:
    """Real sounds by name: drum hits, GM piano (0), organ (16) and string ensemble (48) notes, speech."""
    loaded = {name: load_audio(path) for name, path in drum_paths.items()}
    for name, program in {"piano": 0, "organ": 16, "strings": 48}.items():
        loaded[name] = load_audio(render_gm_note(program, note_s=1.0))
    loaded["speech"] = load_audio(speech_path)
    return loaded


@pytest.fixture(scope="module")
def described(sounds: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    return {name: {key: float(value) for key, value in describe(audio).items()} for name, audio in sounds.items()}


def test_every_descriptor_is_returned_and_finite(described: dict[str, dict[str, float]]) -> None:
    assert DESCRIPTORS
    for values in described.values():
        assert tuple(values) == DESCRIPTORS
        assert all(math.isfinite(value) for value in values.values())


def test_hihat_is_brighter_and_noisier_than_bass_drum(described: dict[str, dict[str, float]]) -> None:
    kick, snare, hihat = described["kick"], described["snare"], described["hihat"]
    assert hihat["centroid_hz"] > snare["centroid_hz"] > kick["centroid_hz"]
    assert hihat["flatness"] > 5 * kick["flatness"]
    assert hihat["flatness"] > 100 * described["organ"]["flatness"]


def test_notes_are_harmonic_and_cymbals_are_not(described: dict[str, dict[str, float]]) -> None:
    for note in ("piano", "organ", "strings"):
        assert described[note]["harmonicity"] > 0.9
    for noisy in ("hihat", "hihat_open"):
        assert described[noisy]["harmonicity"] < 0.4


def test_hits_are_percussive_and_held_notes_are_not(described: dict[str, dict[str, float]]) -> None:
    for hit in ("kick", "snare", "hihat"):
        assert described[hit]["percussiveness"] > 0.8
        assert described[hit]["effective_duration_s"] < 0.1
        assert described[hit]["attack_s"] < 0.02
    for held in ("organ", "strings"):
        assert described[held]["percussiveness"] == 0.0
        assert described[held]["effective_duration_s"] > 0.8
    assert described["strings"]["attack_s"] > 10 * described["organ"]["attack_s"]


def test_speech_moves_more_than_an_organ_note(described: dict[str, dict[str, float]]) -> None:
    assert described["speech"]["flux"] > 10 * described["organ"]["flux"]
    assert described["speech"]["flux"] > 2 * described["piano"]["flux"]


def test_loudness_and_centroid_against_numpy(sounds: dict[str, torch.Tensor]) -> None:
    snare = sounds["snare"]
    expected_db = 10 * np.log10(np.mean(snare.double().numpy() ** 2))
    assert float(module.loudness_db(snare)) == pytest.approx(expected_db, abs=1e-3)
    assert float(module.loudness_db(0.1 * snare)) == pytest.approx(expected_db - 20, abs=1e-3)
    magnitude = np.abs(librosa.stft(snare.double().numpy(), n_fft=2048, hop_length=512))
    freqs = librosa.fft_frequencies(sr=22050, n_fft=2048)
    expected_hz = (freqs[:, None] * magnitude).sum() / magnitude.sum()
    assert float(module.spectral_centroid(snare)) == pytest.approx(expected_hz, rel=1e-4)


def test_flatness_against_librosa(sounds: dict[str, torch.Tensor]) -> None:
    hihat = sounds["hihat"].double().numpy()
    per_frame = librosa.feature.spectral_flatness(y=hihat, n_fft=2048, hop_length=512)[0]
    energy = (np.abs(librosa.stft(hihat, n_fft=2048, hop_length=512)) ** 2).sum(axis=0)
    expected = (per_frame * energy).sum() / energy.sum()
    assert float(module.spectral_flatness(sounds["hihat"])) == pytest.approx(expected, rel=1e-3)


def test_known_answers_on_a_tone() -> None:
    time_s = torch.arange(22050, dtype=torch.float64) / 22050
    tone = torch.sin(2 * math.pi * 440.0 * time_s)
    values = describe(tone)
    assert float(values["centroid_hz"]) == pytest.approx(440.0, rel=0.06)  # Hann leakage lifts it, as librosa's
    assert float(module.spectral_centroid(tone * 0.5)) == pytest.approx(float(values["centroid_hz"]))
    assert float(values["harmonicity"]) > 0.99
    assert float(values["flux"]) < 0.01  # only the half-padded first and last frames differ
    assert float(values["loudness_db"]) == pytest.approx(-3.01, abs=0.01)
    ramp = tone * (time_s / 0.5).clamp(max=1.0)  # linear fade-in over 0.5 s: 10% -> 90% takes 0.4 s
    assert float(module.attack_time(ramp)) == pytest.approx(0.4, abs=0.02)


def test_batch_equals_items(sounds: dict[str, torch.Tensor]) -> None:
    names = ["kick", "hihat", "piano", "speech"]
    batch = torch.stack([torch.nn.functional.pad(sounds[n], (0, 40000))[:40000] for n in names])
    together = describe(batch)
    for index in range(len(names)):
        alone = describe(batch[index])
        for name in DESCRIPTORS:
            assert float(together[name][index]) == pytest.approx(float(alone[name]), rel=1e-4, abs=1e-6)


def test_single_functions_agree_with_descriptors(sounds: dict[str, torch.Tensor]) -> None:
    audio = sounds["snare"]
    values = describe(audio)
    singles = {
        "centroid_hz": module.spectral_centroid,
        "flatness": lambda a: module.spectral_flatness(a),
        "loudness_db": lambda a: module.loudness_db(a),
        "flux": module.spectral_flux,
        "attack_s": module.attack_time,
        "effective_duration_s": module.effective_duration,
        "percussiveness": module.percussiveness,
        "harmonicity": module.harmonicity,
    }
    assert set(singles) == set(DESCRIPTORS)
    for name, function in singles.items():
        assert float(function(audio)) == pytest.approx(float(values[name]), rel=1e-6, abs=1e-9)


def test_silence_and_short_input() -> None:
    values = describe(torch.zeros(2, 1000))
    assert float(values["loudness_db"][0]) == pytest.approx(-120.0)
    for name in DESCRIPTORS:
        if name != "loudness_db":
            assert torch.equal(values[name], torch.zeros(2)), name
    assert describe(torch.ones(100) * 0.5)["centroid_hz"].shape == ()
