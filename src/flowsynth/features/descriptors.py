"""Per-sound scalar descriptors (brightness, noisiness, loudness, motion, attack, harmonicity) for statistics and tags.

All take audio ``[..., N]`` and return one value per sound ``[...]``. Spectral descriptors use a
periodic Hann STFT (n_fft 2048, hop 512, centred, zero padding); "energy-weighted mean over frames"
weighs each frame by its energy ``sum_f P``, so silent frames (tails, gaps) do not count. A silent
sound gives 0 for every descriptor but ``loudness_db`` (-120).

* ``centroid_hz``: spectral centroid, ``sum_{f,t} f S / sum_{f,t} S`` over the magnitude ``S = |STFT|``
  (brightness), as librosa weighs it; window leakage lifts it a few percent above a pure tone's frequency.
* ``flatness``: spectral flatness, geometric over arithmetic mean of ``max(P, 1e-10)`` per frame,
  energy-weighted mean over frames; 0 (pure tone) to 1 (white noise).
* ``loudness_db``: RMS level of the whole sound in dBFS, ``10 log10(mean(x^2) + 1e-12)``.
* ``flux``: spectral motion. Per frame the square roots of 40 mel band powers (Slaney mel, 0 Hz to
  Nyquist) scaled to unit L2 norm; flux is the energy-weighted mean over frame pairs of the L2
  distance between consecutive shapes, over sqrt(2), in [0, 1]. Level changes alone (a decay) do not
  count: a static timbre is near 0, speech or a sweep is higher.
* ``attack_s``: time for the RMS envelope (256-sample windows, hop 128) to rise from 10% to 90% of its peak.
* ``effective_duration_s``: time the RMS envelope spends at or above 40% of its peak (Peeters, 2004).
* ``percussiveness``: ``1 - min(effective_duration_s / 0.5 s, 1)``: 0 for a sound that stays near
  its peak for half a second or more (a held note, slow attack or not), near 1 for a short hit.
* ``harmonicity``: periodicity, Boersma's (1993) normalized autocorrelation: per frame (Hann 2048, hop 2048,
  zero-padded to 4096) the autocorrelation divided by the window's and by its value at lag 0; the
  maximum over lags of periods 1 ms to 20 ms (50 to 1000 Hz), past the first lag where it drops to 0,
  clipped to [0, 1]; energy-weighted mean over frames. Near 1 for a periodic tone, near 0 for noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from flowsynth.features.logmel import SAMPLE_RATE
from flowsynth.features.spectral import as_batch, mel_filterbank, power_of, stft

__all__ = [
    "DESCRIPTORS",
    "attack_time",
    "describe",
    "harmonicity",
    "effective_duration",
    "loudness_db",
    "percussiveness",
    "spectral_centroid",
    "spectral_flatness",
    "spectral_flux",
]

N_FFT, HOP_LENGTH = 2048, 512
HARMONICITY_HOP = 2048
ENVELOPE_WINDOW, ENVELOPE_HOP = 256, 128
FLUX_N_MELS = 40
EFFECTIVE_LEVEL = 0.4
SUSTAINED_S = 0.5
PERIOD_RANGE_S = (1e-3, 20e-3)
POWER_FLOOR, LOUDNESS_FLOOR = 1e-10, 1e-12
#: Names of the descriptors :func:`describe` returns, in order.
DESCRIPTORS = (
    "centroid_hz",
    "flatness",
    "loudness_db",
    "flux",
    "attack_s",
    "effective_duration_s",
    "percussiveness",
    "harmonicity",
)
_CHUNK = 8  # sounds per chunk in describe(): bounds memory, and small chunks stay in the CPU's caches


def _magnitude(batch: Tensor) -> Tensor:
    return power_of(stft(batch, N_FFT, HOP_LENGTH)).sqrt()


def _weighted_mean(values: Tensor, energy: Tensor) -> Tensor:
    """Mean of ``values [B, T]`` over frames weighted by ``energy [B, T]``; 0 where all energy is 0."""
    return (values * energy).sum(dim=-1) / energy.sum(dim=-1).clamp_min(1e-30)


def _centroid(magnitude: Tensor, sample_rate: int) -> Tensor:
    freqs = torch.linspace(0, sample_rate / 2, magnitude.shape[-2], dtype=magnitude.dtype, device=magnitude.device)
    return (freqs[:, None] * magnitude).sum(dim=(-2, -1)) / magnitude.sum(dim=(-2, -1)).clamp_min(1e-30)


def _flatness(power: Tensor) -> Tensor:
    floored = power.clamp_min(POWER_FLOOR)
    per_frame = floored.log().mean(dim=-2).exp() / floored.mean(dim=-2)
    return _weighted_mean(per_frame, power.sum(dim=-2))


def _flux(power: Tensor, sample_rate: int) -> Tensor:
    basis = mel_filterbank(sample_rate, N_FFT, FLUX_N_MELS, dtype=power.dtype, device=power.device)
    shape = torch.matmul(basis, power).sqrt()
    shape = shape / torch.linalg.vector_norm(shape, dim=-2, keepdim=True).clamp_min(1e-30)
    step = torch.linalg.vector_norm(shape[..., 1:] - shape[..., :-1], dim=-2) / math.sqrt(2.0)
    energy = power.sum(dim=-2)
    return _weighted_mean(step, (energy[..., 1:] * energy[..., :-1]).sqrt())


def _loudness(batch: Tensor) -> Tensor:
    return 10.0 * torch.log10(batch.square().mean(dim=-1) + LOUDNESS_FLOOR)


def _envelope(batch: Tensor) -> Tensor:
    """RMS envelope ``[B, frames]``: 256-sample windows every 128 samples."""
    missing = ENVELOPE_WINDOW - batch.shape[-1]
    if missing > 0:
        batch = torch.nn.functional.pad(batch, (0, missing))
    return batch.unfold(-1, ENVELOPE_WINDOW, ENVELOPE_HOP).square().mean(dim=-1).sqrt()


def _first_at_least(envelope: Tensor, level: Tensor) -> Tensor:
    """Index of the first frame where ``envelope >= level`` (per row)."""
    return (envelope >= level[:, None]).to(torch.uint8).argmax(dim=-1)


def _attack(envelope: Tensor, sample_rate: int) -> Tensor:
    peak = envelope.amax(dim=-1)
    frames = _first_at_least(envelope, 0.9 * peak) - _first_at_least(envelope, 0.1 * peak)
    return torch.where(peak > 0, frames.to(envelope.dtype) * ENVELOPE_HOP / sample_rate, 0.0)


def _effective_duration(envelope: Tensor, sample_rate: int) -> Tensor:
    peak = envelope.amax(dim=-1, keepdim=True)
    frames = ((envelope >= EFFECTIVE_LEVEL * peak) & (peak > 0)).sum(dim=-1)
    return frames.to(envelope.dtype) * ENVELOPE_HOP / sample_rate


def _percussiveness(effective_duration_s: Tensor, envelope: Tensor) -> Tensor:
    value = 1.0 - (effective_duration_s / SUSTAINED_S).clamp(max=1.0)
    return torch.where(envelope.amax(dim=-1) > 0, value, 0.0)


def _autocorrelation(batch: Tensor, max_lag: int) -> tuple[Tensor, Tensor]:
    """Per-frame autocorrelation ``[B, max_lag + 1, T]`` (Hann 2048 in 4096 zero-padded frames), divided by the window's.

    Frames hop by ``HARMONICITY_HOP`` (a whole window): an average over the sound needs no overlap,
    and this is the costliest descriptor. Also returns each frame's energy (the lag-0 value).
    """
    spectrum = stft(batch, 2 * N_FFT, HARMONICITY_HOP, win_length=N_FFT)
    lags = torch.fft.irfft(power_of(spectrum), n=2 * N_FFT, dim=-2)[:, : max_lag + 1]
    return lags / _window_lags(max_lag, batch.dtype, batch.device)[:, None], lags[:, 0]


@functools.lru_cache(maxsize=4)
def _window_lags(max_lag: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The analysis window's own autocorrelation, 1 at lag 0."""
    window = torch.hann_window(N_FFT, periodic=True, dtype=dtype, device=device)
    window_lags = torch.fft.irfft(torch.fft.rfft(window, n=2 * N_FFT).abs().square(), n=2 * N_FFT)[: max_lag + 1]
    return window_lags / window_lags[0]


def _harmonicity(batch: Tensor, sample_rate: int) -> Tensor:
    low, high = (min(N_FFT - 1, round(period * sample_rate)) for period in PERIOD_RANGE_S)
    lags, energy = _autocorrelation(batch, high)
    normalized = lags / lags[:, :1].clamp_min(1e-30)
    past_first_zero = torch.cumsum(normalized <= 0, dim=-2) > 0
    candidates = torch.where(past_first_zero, normalized, 0.0)[:, low : high + 1]
    return _weighted_mean(candidates.amax(dim=-2).clamp(0.0, 1.0), energy)


def _describe(batch: Tensor, sample_rate: int) -> dict[str, Tensor]:
    magnitude = _magnitude(batch)
    power = magnitude.square()
    envelope = _envelope(batch)
    duration_s = _effective_duration(envelope, sample_rate)
    return {
        "centroid_hz": _centroid(magnitude, sample_rate),
        "flatness": _flatness(power),
        "loudness_db": _loudness(batch),
        "flux": _flux(power, sample_rate),
        "attack_s": _attack(envelope, sample_rate),
        "effective_duration_s": duration_s,
        "percussiveness": _percussiveness(duration_s, envelope),
        "harmonicity": _harmonicity(batch, sample_rate),
    }


def describe(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> dict[str, Tensor]:
    """Every descriptor of :data:`DESCRIPTORS` for ``audio [..., N]``, each ``[...]`` (module docstring).

    >>> tone = torch.sin(2 * math.pi * 1000.0 * torch.arange(22050) / 22050)
    >>> values = describe(tone)
    >>> round(float(values["centroid_hz"]), -2), round(float(values["loudness_db"]), 1)
    (1000.0, -3.0)
    """
    batch, lead = as_batch(audio)
    with torch.no_grad():
        chunks = [_describe(batch[start : start + _CHUNK], int(sample_rate)) for start in range(0, len(batch), _CHUNK)]
    return {name: torch.cat([chunk[name] for chunk in chunks]).reshape(lead) for name in DESCRIPTORS}


def _one(audio: Tensor, compute: Callable[..., Tensor], *args: int) -> Tensor:
    batch, lead = as_batch(audio)
    with torch.no_grad():
        return compute(batch, *args).reshape(lead)


def spectral_centroid(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Spectral centroid in Hz per sound (brightness)."""
    return _one(audio, lambda b, sr: _centroid(_magnitude(b), sr), int(sample_rate))


def spectral_flatness(audio: Tensor) -> Tensor:
    """Spectral flatness in [0, 1] per sound (noisiness)."""
    return _one(audio, lambda b: _flatness(_magnitude(b).square()))


def loudness_db(audio: Tensor) -> Tensor:
    """RMS level in dBFS per sound (-120 for silence).

    >>> loudness_db(torch.full((2, 100), 0.1))
    tensor([-20., -20.])
    """
    return _one(audio, _loudness)


def spectral_flux(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Spectral motion in [0, 1] per sound (change of spectral shape, not of level)."""
    return _one(audio, lambda b, sr: _flux(_magnitude(b).square(), sr), int(sample_rate))


def attack_time(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """10%-to-90% rise time of the RMS envelope in seconds per sound."""
    return _one(audio, lambda b, sr: _attack(_envelope(b), sr), int(sample_rate))


def effective_duration(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Time in seconds the RMS envelope spends at or above 40% of its peak, per sound."""
    return _one(audio, lambda b, sr: _effective_duration(_envelope(b), sr), int(sample_rate))


def percussiveness(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """``1 - min(effective duration / 0.5 s, 1)`` per sound: 0 for held notes, near 1 for short hits."""

    def compute(batch: Tensor, rate: int) -> Tensor:
        envelope = _envelope(batch)
        return _percussiveness(_effective_duration(envelope, rate), envelope)

    return _one(audio, compute, int(sample_rate))


def harmonicity(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Periodicity in [0, 1] per sound (normalized autocorrelation, 50 to 1000 Hz)."""
    return _one(audio, _harmonicity, int(sample_rate))
