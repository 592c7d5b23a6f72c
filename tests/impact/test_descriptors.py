"""Invariants of the seven impact descriptors on synthetic signals and real drum recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flowsynth.impact._io import load_mono
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, DescriptorConfig, describe, yin

SR = 22050
T = np.arange(SR) / SR
KITS = Path("/usr/share/hydrogen/data/drumkits")
row = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}


def sine(freq_hz: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq_hz * T)


def saw(freq_hz: float, num_harmonics: int = 10) -> np.ndarray:
    """A band-limited sawtooth with a fixed number of harmonics."""
    k = np.arange(1, num_harmonics + 1)[:, None]
    return 0.3 * (np.sin(2 * np.pi * freq_hz * k * T) / k).sum(axis=0)


def white(seed: int = 0) -> np.ndarray:
    return 0.3 * np.random.default_rng(seed).standard_normal(SR)


def mid(audio: np.ndarray, name: str) -> float:
    return float(np.median(describe(audio)[row[name], 10:-10]))


def test_shape_and_dtype() -> None:
    curves = describe(sine(440.0))
    assert curves.shape == (7, DescriptorConfig().num_frames(SR)) and curves.dtype == np.float32
    assert np.isfinite(curves).all()


def test_loudness_follows_level_and_a_weighting() -> None:
    assert mid(sine(1000.0, 0.5), "loudness") - mid(sine(1000.0, 0.25), "loudness") == pytest.approx(6.02, abs=0.1)
    assert mid(sine(1000.0), "loudness") == pytest.approx(-6.02, abs=0.3)
    assert mid(sine(1000.0), "loudness") - mid(sine(100.0), "loudness") == pytest.approx(19.1, abs=1.0)


def test_noisiness_and_tone_likeness_separate_noise_from_tone() -> None:
    assert mid(white(), "noisiness") > 0.85 and mid(sine(440.0), "noisiness") < 0.1
    assert mid(white(), "tone_likeness") < 0.3 and mid(saw(220.0), "tone_likeness") > 0.9


def test_pitch_of_tones() -> None:
    for freq_hz in (55.0, 220.0, 880.0):
        assert mid(saw(freq_hz), "pitch") == pytest.approx(freq_hz, rel=0.01)
    f0, periodicity = yin(sine(330.0))
    assert np.median(f0) == pytest.approx(330.0, rel=0.005) and np.median(periodicity) > 0.95


def test_brightness_is_the_centroid_and_richness_is_transposition_invariant() -> None:
    assert mid(sine(2000.0), "brightness") == pytest.approx(2000.0, rel=0.02)
    assert mid(saw(220.0), "brightness") == pytest.approx(2 * mid(saw(110.0), "brightness"), rel=0.05)
    assert mid(saw(220.0), "richness") == pytest.approx(mid(saw(110.0), "richness"), abs=0.05)
    assert mid(saw(110.0), "richness") > 5 * mid(sine(110.0), "richness")


def test_percussivity_separates_clicks_from_a_held_tone() -> None:
    clicks = np.zeros(SR)
    clicks[:: SR // 8] = 1.0
    curves = describe(clicks)
    assert curves[row["percussivity"]].max() > 0.8
    assert mid(sine(440.0), "percussivity") < 0.05


def test_silent_frames_hold_the_neighbouring_values() -> None:
    fade = np.clip((0.55 - T) / 0.05, 0.0, 1.0)
    audio = sine(440.0) * fade
    curves = describe(audio)
    tail = curves[:, -10:]
    assert (tail[row["loudness"]] == -100.0).all()
    assert tail[row["pitch"]] == pytest.approx(np.full(10, 440.0), rel=0.01)
    assert tail[row["brightness"]] == pytest.approx(np.full(10, 440.0), rel=0.05)


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.zeros(0), np.array([0.0, np.nan])])
def test_bad_input_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="describe needs"):
        describe(bad)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="yin_frame must hold two periods"):
        DescriptorConfig(fmin_hz=10.0)


@pytest.mark.skipif(not KITS.is_dir(), reason="Debian package hydrogen-drumkits is not installed")
def test_real_tom_is_darker_more_tonal_and_less_noisy_than_a_real_hihat() -> None:
    tom = describe(load_mono(KITS / "ColomboAcousticDrumkit" / "tom-low-1.flac", SR))
    hat = describe(load_mono(KITS / "ColomboAcousticDrumkit" / "hihat-open-1.flac", SR))

    def median(curves: np.ndarray, name: str) -> float:
        return float(np.median(curves[row[name], curves[row["loudness"]] > -40]))

    assert median(tom, "brightness") * 2 < median(hat, "brightness")
    assert median(tom, "noisiness") + 0.3 < median(hat, "noisiness")
    assert median(tom, "tone_likeness") > median(hat, "tone_likeness") + 0.2
    assert median(tom, "pitch") < 150.0
