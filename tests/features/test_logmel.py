"""Tests of the log-mel model input and its normalization, against librosa on real sounds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from flowsynth.audio import load_audio
from flowsynth.features import FeatureNorm, LogMel, log_mel, mel_spectrogram

FOUR_S = 4 * 22050


def librosa_log_mel(audio: np.ndarray) -> np.ndarray:
    """FlowSynth's recipe with librosa, on audio padded with zeros to 4 s."""
    padded = np.pad(audio, (0, max(0, FOUR_S - len(audio))))
    mel = librosa.feature.melspectrogram(
        y=padded.astype(np.float64), sr=22050, n_fft=2048, hop_length=1024, n_mels=64, fmin=30, fmax=11000
    )
    return np.log(mel[:, :80] + 1e-3)


@pytest.fixture(scope="module")
def piano(render_gm_note) -> torch.Tensor:
    return load_audio(render_gm_note(0, note_s=3.0))  # about 5 s: longer than the 4 s render


def test_shape_for_four_seconds(piano: torch.Tensor) -> None:
    assert log_mel(piano[:FOUR_S]).shape == (64, 80)
    assert log_mel(torch.stack([piano[:FOUR_S]] * 3)).shape == (3, 64, 80)
    assert LogMel()(piano[:FOUR_S].reshape(1, 1, -1)).shape == (1, 1, 64, 80)


@pytest.mark.parametrize("length", [FOUR_S, 81_920, 100_000])
def test_equals_librosa_on_a_real_note(piano: torch.Tensor, length: int) -> None:
    audio = piano[:length]
    expected = librosa_log_mel(audio.numpy())
    np.testing.assert_allclose(log_mel(audio).numpy(), expected, atol=2e-4, rtol=1e-4)


def test_short_sounds_are_zero_padded(drum_paths: dict[str, Path]) -> None:
    for path in drum_paths.values():
        audio = load_audio(path)
        assert len(audio) < FOUR_S
        np.testing.assert_allclose(log_mel(audio).numpy(), librosa_log_mel(audio.numpy()), atol=2e-4, rtol=1e-4)
        assert log_mel(audio)[:, -1].max() == pytest.approx(math.log(1e-3))  # frames after the hit: silence


def test_batch_equals_items(drum_paths: dict[str, Path]) -> None:
    sounds = [load_audio(path)[:12000] for path in drum_paths.values()]
    batch = log_mel(torch.stack(sounds))
    for row, sound in zip(batch, sounds, strict=True):
        torch.testing.assert_close(row, log_mel(sound), rtol=1e-5, atol=1e-5)


def test_linear_mel_is_the_log_undone(piano: torch.Tensor) -> None:
    torch.testing.assert_close(mel_spectrogram(piano), log_mel(piano).exp() - 1e-3, rtol=1e-4, atol=1e-6)


def test_gradients_flow(piano: torch.Tensor) -> None:
    audio = piano[:FOUR_S].clone().requires_grad_(True)
    target = log_mel(piano[:FOUR_S] * 0.5)
    (log_mel(audio) - target).square().mean().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all()
    assert audio.grad[:81_920].abs().sum() > 0 and audio.grad[81_920:].abs().sum() == 0  # unseen samples


def test_gradients_are_finite_on_silence() -> None:
    audio = torch.zeros(2, 30_000, requires_grad=True)
    log_mel(audio).sum().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all()


def test_gradcheck_small_config() -> None:
    module = LogMel(sample_rate=22050, n_fft=64, hop_length=32, n_mels=6, fmin_hz=30, fmax_hz=11000, n_frames=5)
    audio = torch.randn(2, 150, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(module, (audio.requires_grad_(True),), fast_mode=True)


def test_follows_dtype(piano: torch.Tensor) -> None:
    assert log_mel(piano.double()).dtype == torch.float64
    assert LogMel().double()(piano.double()).dtype == torch.float64


@pytest.mark.parametrize(
    ("audio", "error", "message"),
    [
        (torch.ones(100, dtype=torch.int32), TypeError, "float32 or float64"),
        (torch.zeros(3, 0), ValueError, "N > 0"),
        ([0.0, 1.0], TypeError, "torch.Tensor"),
    ],
)
def test_bad_input(audio: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        log_mel(audio)  # type: ignore[arg-type]


def test_fmax_above_nyquist() -> None:
    with pytest.raises(ValueError, match=r"above the Nyquist frequency 8000\.0 Hz"):
        LogMel(sample_rate=16000)


def test_feature_norm_fits_real_features(drum_paths: dict[str, Path]) -> None:
    features = log_mel(torch.stack([load_audio(path)[:12000] for path in drum_paths.values()]))
    norm = FeatureNorm().fit(features)
    assert norm.mean == pytest.approx(float(features.double().mean()))
    assert norm.std == pytest.approx(float(features.double().std(unbiased=False)))
    normalized = norm(features)
    assert float(normalized.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(normalized.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(norm.denormalize(normalized), features, rtol=1e-5, atol=1e-5)
    streamed = FeatureNorm().fit(iter([features[:1], features[1:3], features[3:]]))
    assert streamed.mean == pytest.approx(norm.mean, rel=1e-12)
    assert streamed.std == pytest.approx(norm.std, rel=1e-12)


def test_feature_norm_state_round_trip() -> None:
    norm = FeatureNorm(mean=-2.5, std=3.0)
    state = json.loads(json.dumps(norm.state_dict()))
    assert state == {"mean": -2.5, "std": 3.0}
    again = FeatureNorm.from_state_dict(state)
    x = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(again(x), (x + 2.5) / 3.0)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda: FeatureNorm().normalize(torch.ones(2)), "not fitted"),
        (lambda: FeatureNorm().state_dict(), "not fitted"),
        (lambda: FeatureNorm(mean=1.0), "both mean and std"),
        (lambda: FeatureNorm(mean=0.0, std=0.0), "std > 0"),
        (lambda: FeatureNorm().fit(torch.tensor([1.0, float("nan")])), "NaN or inf"),
        (lambda: FeatureNorm().fit(torch.full((4, 4), 2.0)), "all 16 feature values are equal"),
        (lambda: FeatureNorm().fit([]), "no values"),
        (lambda: FeatureNorm().load_state_dict({"mean": 1.0}), "lacks \\['std'\\]"),
    ],
)
def test_feature_norm_errors(action, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        action()
