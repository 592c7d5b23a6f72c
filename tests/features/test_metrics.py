"""Tests of the evaluation metrics against independent numpy/librosa/auraloss computations on real sounds."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch

from flowsynth.audio import load_audio
from flowsynth.features import metrics
from flowsynth.features.metrics import AUDIO_METRICS, audio_metrics, mean_ci

SR = 22050
LENGTH = 33_075  # 1.5 s


def fit(audio: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(audio, (0, max(0, LENGTH - len(audio))))[:LENGTH]


@pytest.fixture(scope="module")
def pairs(render_gm_note, drum_paths: dict[str, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """References and estimates [3, N]: a piano note vs a low-passed copy, vs a semitone up; snare vs kick."""
    piano = fit(load_audio(render_gm_note(0, note_s=1.0)))
    lowpass = scipy.signal.butter(4, 2000, fs=SR, output="sos")
    filtered = torch.from_numpy(scipy.signal.sosfilt(lowpass, piano.numpy()).astype(np.float32))
    shifted = torch.from_numpy(librosa.effects.pitch_shift(piano.numpy(), sr=SR, n_steps=1.0))
    snare, kick = fit(load_audio(drum_paths["snare"])), fit(load_audio(drum_paths["kick"]))
    return torch.stack([piano, piano, snare]), torch.stack([filtered, fit(shifted), kick])


def np_magnitude(audio: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(audio.astype(np.float64), n_fft=1024, hop_length=256))


def np_sc(x: np.ndarray, y: np.ndarray) -> float:
    sx, sy = np_magnitude(x), np_magnitude(y)
    return float(np.linalg.norm(sx - sy) / np.linalg.norm(sx))


def np_lsd(x: np.ndarray, y: np.ndarray) -> float:
    px, py = np_magnitude(x) ** 2, np_magnitude(y) ** 2
    diff = 10 * np.log10(px + 1e-8) - 10 * np.log10(py + 1e-8)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def np_mfcc_l1(x: np.ndarray, y: np.ndarray) -> float:
    def coefficients(audio: np.ndarray) -> np.ndarray:
        options = {"sr": SR, "n_mfcc": 20, "n_mels": 40, "n_fft": 1024, "hop_length": 256}
        return librosa.feature.mfcc(y=audio.astype(np.float64), **options)[1:]

    return float(np.mean(np.abs(coefficients(x) - coefficients(y))))


def np_mel(audio: np.ndarray) -> np.ndarray:
    options = {"sr": SR, "n_fft": 2048, "hop_length": 1024, "n_mels": 64, "fmin": 30, "fmax": 11000}
    padded = np.pad(audio.astype(np.float64), (0, 4 * SR - len(audio)))
    return librosa.feature.melspectrogram(y=padded, **options)[:, :80]


def auraloss_mr_stft(x: np.ndarray, y: np.ndarray) -> float:
    auraloss = pytest.importorskip("auraloss")
    loss = auraloss.freq.MultiResolutionSTFTLoss()  # its defaults are the protocol's resolutions
    as_input = lambda a: torch.from_numpy(a).double().reshape(1, 1, -1)  # noqa: E731
    return float(loss(as_input(y), as_input(x)))  # (input = estimate, target = reference)


REFERENCES = {
    "sc": np_sc,
    "lsd": np_lsd,
    "mfcc_l1": np_mfcc_l1,
    "mr_stft": auraloss_mr_stft,
    "mel_sc": lambda x, y: float(np.linalg.norm(np_mel(x) - np_mel(y)) / np.linalg.norm(np_mel(x))),
    "mel_mse": lambda x, y: float(np.mean((np_mel(x) - np_mel(y)) ** 2)),
}
FUNCTIONS = {
    "sc": metrics.spectral_convergence,
    "lsd": metrics.log_spectral_distance,
    "mfcc_l1": metrics.mfcc_l1,
    "mr_stft": metrics.mr_stft,
    "mel_sc": metrics.mel_sc,
    "mel_mse": metrics.mel_mse,
}


def test_registry_covers_every_metric() -> None:
    assert set(FUNCTIONS) == set(REFERENCES) == set(AUDIO_METRICS)


@pytest.mark.parametrize("name", AUDIO_METRICS)
def test_matches_independent_computation(name: str, pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = pairs
    values = FUNCTIONS[name](x, y)
    assert values.shape == (3,)
    expected = [REFERENCES[name](xi.numpy(), yi.numpy()) for xi, yi in zip(x, y, strict=True)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-4, atol=1e-7)
    assert (values > 0).all()


@pytest.mark.parametrize("name", AUDIO_METRICS)
def test_identity_is_zero(name: str, pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = pairs
    assert torch.equal(FUNCTIONS[name](x, x.clone()), torch.zeros(3))


def test_audio_metrics_is_every_metric(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = pairs
    values = audio_metrics(x, y)
    assert tuple(values) == AUDIO_METRICS
    for name, value in values.items():
        torch.testing.assert_close(value, FUNCTIONS[name](x, y), rtol=1e-5, atol=1e-7)
    assert audio_metrics(x[0], y[0])["sc"].shape == ()


def test_batch_equals_items(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = pairs
    batch = audio_metrics(x, y)
    for index in range(len(x)):
        single = audio_metrics(x[index : index + 1], y[index : index + 1])
        for name in AUDIO_METRICS:
            torch.testing.assert_close(single[name][0], batch[name][index], rtol=1e-5, atol=1e-7)


def test_known_properties(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = pairs
    torch.testing.assert_close(metrics.spectral_convergence(x, 2 * x), torch.ones(3))
    torch.testing.assert_close(metrics.spectral_convergence(x, torch.zeros_like(x)), torch.ones(3))
    torch.testing.assert_close(metrics.mel_sc(x, 3 * x), torch.full((3,), 8.0), rtol=1e-5, atol=0)  # power: 3^2 - 1
    loud = 1e4 * x[:, 2048:6144]  # every bin (even near Nyquist) far above the 1e-8 floor: 2x is +6.02 dB
    lsd = metrics.log_spectral_distance(loud, 2 * loud)
    torch.testing.assert_close(lsd, torch.full((3,), 20 * np.log10(2)), rtol=0, atol=0.01)
    low, high = metrics.mr_stft(x, 1.1 * x), metrics.mr_stft(x, 2.0 * x)
    assert (low < high).all()


@pytest.mark.parametrize("name", AUDIO_METRICS)
def test_gradients(name: str, pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = pairs
    for estimate in (y.clone(), x.clone()):  # away from and at the reference
        estimate.requires_grad_(True)
        FUNCTIONS[name](x, estimate).sum().backward()
        assert estimate.grad is not None and torch.isfinite(estimate.grad).all()


def test_gradient_descends_mr_stft(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = pairs
    estimate = y.clone().requires_grad_(True)
    loss = metrics.mr_stft(x, estimate).sum()
    loss.backward()
    assert estimate.grad is not None and estimate.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = estimate - 1e-3 * estimate.grad / estimate.grad.norm()  # a small step down the gradient
    assert metrics.mr_stft(x, stepped).sum() < loss


def test_mfcc_equals_librosa(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = pairs
    options = {"sr": SR, "n_mfcc": 20, "n_mels": 40, "n_fft": 1024, "hop_length": 256}
    expected = librosa.feature.mfcc(y=x[2].double().numpy(), **options)
    np.testing.assert_allclose(metrics.mfcc(x)[2].numpy(), expected, rtol=1e-3, atol=2e-3)


def test_param_errors() -> None:
    rng = np.random.default_rng(0)
    true, predicted = rng.random((5, 8)), rng.random((5, 8))
    as_tensor = torch.from_numpy
    np.testing.assert_allclose(
        metrics.param_mae(as_tensor(true), as_tensor(predicted)), np.abs(true - predicted).mean(1)
    )
    np.testing.assert_allclose(
        metrics.param_mse(as_tensor(true), as_tensor(predicted)), ((true - predicted) ** 2).mean(1)
    )
    with pytest.raises(ValueError, match="same shape"):
        metrics.param_mae(torch.zeros(5, 8), torch.zeros(5, 7))


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="same shape, got \\[2, 3000\\] and \\[2, 2999\\]"):
        metrics.spectral_convergence(torch.zeros(2, 3000), torch.zeros(2, 2999))
    with pytest.raises(ValueError, match="mr_stft needs more than 1024 samples, got 1000"):
        metrics.mr_stft(torch.ones(1000), torch.ones(1000))


def test_mean_ci_is_the_t_interval(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    values = audio_metrics(*pairs)["lsd"]
    mean, low, high = mean_ci(values)
    data = values.double().numpy()
    expected = scipy.stats.t.interval(0.95, len(data) - 1, loc=data.mean(), scale=scipy.stats.sem(data))
    assert mean == pytest.approx(data.mean())
    assert (low, high) == pytest.approx(expected)
    narrow = mean_ci(values, confidence=0.5)
    assert low < narrow[1] < mean < narrow[2] < high


def test_mean_ci_edges() -> None:
    mean, low, high = mean_ci([0.25])
    assert mean == 0.25 and np.isnan(low) and np.isnan(high)
    assert mean_ci(np.full(4, 2.0)) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="1 NaN/inf values; drop failed items first"):
        mean_ci(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="confidence must be in"):
        mean_ci([1.0, 2.0], confidence=95)
