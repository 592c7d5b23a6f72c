"""The generator's synthesis: the fast harmonic bank, upsampling, noise bands and the impulse response."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from flowsynth.impact.model import ImpactGenerator, band_matrix, upsample


def direct_upsample(frames: torch.Tensor, num_samples: int, hop: int) -> torch.Tensor:
    """The definition: linear interpolation with frame t at sample t * hop, the last value held."""
    span = (frames.shape[-1] - 1) * hop + 1
    out = F.interpolate(frames, size=span, mode="linear", align_corners=True)
    return F.pad(out, (0, max(0, num_samples - span)), mode="replicate")[..., :num_samples]


def direct_harmonic(model: ImpactGenerator, weights: torch.Tensor, pitch_hz: torch.Tensor, n: int) -> torch.Tensor:
    """The definition: every partial's sine at every sample, times its upsampled weight, summed."""
    f0 = direct_upsample(pitch_hz[:, None], n, model.hop_length)[:, 0]
    phase = torch.remainder(torch.cumsum(2.0 * math.pi * f0.double() / model.sample_rate, dim=1), 2.0 * math.pi)
    numbers = torch.arange(1, weights.shape[1] + 1, dtype=torch.float32)
    sines = torch.sin(numbers[None, :, None] * phase.float()[:, None, :])
    return (direct_upsample(weights, n, model.hop_length) * sines).sum(dim=1)


@pytest.fixture(scope="module")
def model() -> ImpactGenerator:
    return ImpactGenerator(hidden_size=16, num_harmonics=12, noise_fft=64, ir_length=128).eval()


@pytest.mark.parametrize("num_samples", [9 * 256, 9 * 256 - 100, 12 * 256 + 7])
def test_upsample_is_linear_interpolation(num_samples: int) -> None:
    frames = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(upsample(frames, num_samples, 256), direct_upsample(frames, num_samples, 256), atol=1e-6)


@pytest.mark.parametrize("num_samples", [9 * 256, 9 * 256 - 100, 12 * 256 + 7])
def test_harmonic_bank_matches_its_definition(model: ImpactGenerator, num_samples: int) -> None:
    generator = torch.Generator().manual_seed(1)
    amplitude, mix = torch.rand(2, 1, 10, generator=generator), torch.rand(2, 12, 10, generator=generator)
    mix[:, 9:] = 0.0  # partials with no weight anywhere are skipped
    pitch = 100.0 + 900.0 * torch.rand(2, 10, generator=generator)
    expected = direct_harmonic(model, amplitude * mix, pitch, num_samples)
    with torch.no_grad():
        fast = model.harmonic(amplitude, mix, pitch, num_samples)
    assert fast.shape == (2, num_samples)
    assert torch.allclose(fast, expected, atol=1e-4)  # float32 rounding of sums of ~3.5
    assert torch.allclose(model.harmonic(amplitude, mix, pitch, num_samples), fast, atol=1e-6)  # gradient path
    silent = model.harmonic(torch.zeros_like(amplitude), mix, pitch, num_samples)
    assert silent.shape == (2, num_samples) and not silent.any()


def test_band_matrix_interpolates_and_refuses_bad_sizes() -> None:
    matrix = band_matrix(5, 17)
    assert torch.allclose(matrix.sum(dim=1), torch.ones(17)) and torch.equal(matrix[::4], torch.eye(5))
    assert torch.equal(band_matrix(4, 4), torch.eye(4))
    with pytest.raises(ValueError, match="noise bands must be between 2 and the 17 FFT bins"):
        band_matrix(18, 17)


def test_noise_bands_shrink_the_head_and_keep_the_output_shape(model: ImpactGenerator) -> None:
    banded = ImpactGenerator(**{**model.kwargs, "noise_bands": 9}).eval()
    assert banded.noise_head.out_features == 9 and banded.kwargs["noise_bands"] == 9
    assert "noise_bands" not in ImpactGenerator(**{**model.kwargs, "noise_bands": 33}).kwargs  # 33 = every bin
    curves = torch.tensor([[-20.0, 0.2, 0.3, 0.8, 1.0, 800.0, 220.0]]).repeat(10, 1).T[None]
    with torch.no_grad():
        assert banded.controls(curves)[2].shape == model.controls(curves)[2].shape == (1, 33, 10)


def test_kept_impulse_response_spectrum_follows_weight_changes(model: ImpactGenerator) -> None:
    audio = torch.randn(1, 2000, generator=torch.Generator().manual_seed(2))
    assert model.ir is not None
    with torch.no_grad():
        first = model.reverb(audio)
        model.ir.add_(0.01)
        second = model.reverb(audio)
        model.ir.sub_(0.01)
    assert not torch.allclose(first, second)
    expected = audio + F.conv1d(F.pad(audio[None], (127, 0)), model.ir.flip(0)[None, None] + 0.01)[0]
    assert torch.allclose(second, expected, atol=1e-5)


@pytest.mark.parametrize("overlap", [4, 2])
def test_noise_inverse_stft_matches_torch(overlap: int) -> None:
    model = ImpactGenerator(hidden_size=16, num_harmonics=4, noise_fft=64, ir_length=0, noise_overlap=overlap)
    hop = 64 // overlap
    spectrum = torch.randn(2, 33, 40, dtype=torch.complex64, generator=torch.Generator().manual_seed(3))
    for length in (39 * hop, 39 * hop - 5):
        expected = torch.istft(spectrum, 64, hop, window=model.window, center=True, length=length)
        assert torch.allclose(model._istft(spectrum, length), expected, atol=1e-5)


def test_half_overlap_noise_is_stationary() -> None:
    model = ImpactGenerator(hidden_size=16, num_harmonics=4, noise_fft=64, ir_length=0, noise_overlap=2)
    noise = model.noise(torch.ones(64, 33, 50), 49 * 32, seed=0)  # flat magnitude, 64 draws
    power = (noise[:, 64:-64] ** 2).mean(dim=0).reshape(-1, 32).mean(dim=0)  # power along the hop
    assert float(power.max() / power.min()) < 1.3  # a Hann window at 50 % would swing by 2x
    with pytest.raises(ValueError, match="noise_overlap must be 2 or 4"):
        ImpactGenerator(noise_overlap=3)
