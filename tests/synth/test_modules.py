"""The built-in synth's modules against independent numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowsynth.synth.modules import (
    block_linear,
    block_phase,
    ladder_response,
    morph_wavetable,
    overlap_add,
    soft_clip,
    spectral_filter_decimate,
    wavetable_lookup,
)


def fourier(phase: np.ndarray, shape: str, harmonics: int, pulse_width: float = 0.3) -> np.ndarray:
    k = np.arange(1, harmonics + 1)[:, None]
    if shape == "sine":
        return np.sin(2 * np.pi * phase)
    if shape == "triangle":
        odd = k % 2
        return -(8 / np.pi**2 * odd / k**2 * np.cos(2 * np.pi * k * phase)).sum(0)
    saw = -(2 / np.pi / k * np.sin(2 * np.pi * k * phase)).sum(0)
    if shape == "saw":
        return saw
    shifted = -(2 / np.pi / k * np.sin(2 * np.pi * k * (phase + pulse_width))).sum(0)
    return saw - shifted


@pytest.mark.parametrize("shape", ["sine", "triangle", "saw", "pulse"])
def test_wavetable_is_the_fourier_series(shape: str) -> None:
    position = {"sine": 0.0, "triangle": 1 / 3, "saw": 2 / 3, "pulse": 1.0}[shape]
    table = morph_wavetable(torch.tensor([position]), torch.tensor([0.3]), torch.tensor([37.0]), size=1024)
    expected = fourier(np.arange(1024) / 1024, shape, 37)
    np.testing.assert_allclose(table[0].numpy(), expected, atol=1e-5)


def test_wavetable_follows_the_ideal_waveform() -> None:
    saw = morph_wavetable(torch.tensor([2 / 3]), torch.tensor([0.5]), torch.tensor([2047.0]))[0].numpy()
    ideal = 2 * np.arange(4096) / 4096 - 1
    assert np.abs(saw - ideal)[200:-200].max() < 0.01


def test_wavetable_lookup_interpolates_linearly() -> None:
    table = torch.randn(2, 64)
    phase = torch.rand(2, 500) * 2.9 - 0.95
    out = wavetable_lookup(table, phase)
    for row in range(2):
        periodic = np.concatenate([table[row].numpy(), table[row, :1].numpy()])
        expected = np.interp(np.mod(phase[row].numpy(), 1.0) * 64, np.arange(65), periodic)
        np.testing.assert_allclose(out[row].numpy(), expected, atol=1e-4)


def test_block_phase_is_the_running_sum_of_the_increment() -> None:
    increment = torch.rand(3, 40) * 0.4 + 0.01
    phase = block_phase(increment, hop=16)
    per_sample = block_linear(increment.double(), 16, 39 * 16).numpy()
    expected = np.concatenate([np.zeros((3, 1)), np.cumsum(per_sample, axis=1)[:, :-1]], axis=1) % 1.0
    error = np.abs(phase.numpy() - expected)
    np.testing.assert_array_less(np.minimum(error, 1 - error), 1e-4)


def test_block_phase_stays_precise_over_long_sounds() -> None:
    increment = torch.full((1, 20001), 0.4999)
    phase = block_phase(increment, hop=64)[0, -1].item()
    expected = (float(np.float32(0.4999)) * (20000 * 64 - 1)) % 1.0
    assert phase == pytest.approx(expected, abs=1e-5)


def test_ladder_response_matches_its_transfer_function() -> None:
    freq_hz = torch.linspace(0, 11025, 257)
    cutoff_hz = torch.tensor([[200.0, 1000.0, 8000.0]])
    response = ladder_response(freq_hz, cutoff_hz, torch.tensor([0.7])).numpy()
    s = 1j * freq_hz.numpy()[:, None] / cutoff_hz.numpy()
    k = 3.9 * 0.7
    np.testing.assert_allclose(response[0], (1 + k) / ((1 + s) ** 4 + k), rtol=1e-4, atol=1e-7)


def test_open_filter_passes_the_signal() -> None:
    audio = torch.randn(2, 5000) * torch.linspace(0, 1, 5000)
    cutoff = torch.full((2, 5000 // 512 + 2), 1e9)
    out = spectral_filter_decimate(audio, cutoff, torch.zeros(2), 22050, 1, 1024, 5000)
    np.testing.assert_allclose(out.numpy(), audio.numpy(), atol=1e-4)


def test_overlap_add_needs_a_padded_end() -> None:
    x = torch.randn(1, 3000)
    window = torch.hann_window(512).sqrt()
    spectrum = torch.stft(x, 512, 256, window=window, return_complex=True)
    y = overlap_add(torch.fft.irfft(spectrum, n=512, dim=1), 3000)
    last_centre = (3000 // 256) * 256
    np.testing.assert_allclose(y[0, :last_centre].numpy(), x[0, :last_centre].numpy(), atol=1e-5)


def alias_db(audio: np.ndarray, f0_hz: float) -> float:
    power = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freq = np.fft.rfftfreq(len(audio), 1 / 22050)
    harmonic = np.abs(freq - np.round(freq / f0_hz) * f0_hz) < 25
    return float(10 * np.log10(power[~harmonic & (freq > 50)].sum() / power[harmonic].sum()))


def test_soft_clip_aliases_less_than_tanh() -> None:
    f0_hz = 1318.5
    table = morph_wavetable(torch.tensor([2 / 3]), torch.tensor([0.5]), torch.tensor([float(11025 // f0_hz)]))
    saw = wavetable_lookup(table, (torch.arange(16384.0) * (f0_hz / 22050))[None] % 1.0)
    clipped, plain = soft_clip(1.4 * saw)[0].numpy(), torch.tanh(1.4 * saw)[0].numpy()
    assert alias_db(clipped, f0_hz) < alias_db(plain, f0_hz) - 10.0


def test_soft_clip_has_gradients_everywhere() -> None:
    x = torch.tensor([[0.0, 0.0, 0.5, 0.5005, -2.0, 3.0]], requires_grad=True)
    soft_clip(x).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs() > 0).all()
