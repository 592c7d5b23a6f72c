"""Batched, differentiable synth modules in torch: oscillators, envelopes, LFO, filter."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "adsr",
    "control_to_audio",
    "ladder_response",
    "lfo",
    "morph_oscillator",
    "noise",
    "polyblep",
    "spectral_filter_decimate",
]


def adsr(t: Tensor, attack_s: Tensor, decay_s: Tensor, sustain: Tensor, release_s: Tensor, note_s: float) -> Tensor:
    """An ADSR envelope: linear attack, exponential decay and release.

    Decay and release reach 1% of their way in ``decay_s`` and ``release_s``.

    Arguments:
        t: Times in seconds ``[T]``.
        attack_s, decay_s, sustain, release_s: Envelope settings ``[B]``.
        note_s: Time of the note-off, in seconds.

    Returns:
        The envelope ``[B, T]`` in [0, 1].

    Example:
        >>> one = torch.ones(1)
        >>> env = adsr(torch.tensor([0.0, 0.5, 1.0, 3.0]), 0.5 * one, one, 0.5 * one, one, note_s=2.0)
        >>> [round(v, 2) for v in env[0].tolist()]
        [0.0, 1.0, 0.55, 0.01]
    """
    a, d, s, r = (v[:, None] for v in (attack_s, decay_s, sustain, release_s))
    held = _held(t[None, :], a, d, s)
    at_release = _held(torch.tensor([[note_s]], dtype=t.dtype), a, d, s)
    released = at_release * torch.exp(-4.6 * (t - note_s).clamp(min=0.0) / r)
    return torch.where(t < note_s, held, released)


def _held(t: Tensor, a: Tensor, d: Tensor, s: Tensor) -> Tensor:
    rise = (t / a).clamp(max=1.0)
    fall = s + (1.0 - s) * torch.exp(-4.6 * (t - a).clamp(min=0.0) / d)
    return torch.where(t < a, rise, fall)


def lfo(t: Tensor, rate_hz: Tensor) -> Tensor:
    """A sine LFO ``[B, T]`` starting at phase 0, for times ``t`` ``[T]`` and rates ``[B]``."""
    return torch.sin(2 * math.pi * rate_hz[:, None] * t[None, :])


def control_to_audio(control: Tensor, num_samples: int) -> Tensor:
    """Linearly interpolates control-rate signals ``[B, C]`` to ``[B, num_samples]``."""
    return F.interpolate(control[:, None, :], size=num_samples, mode="linear", align_corners=True)[:, 0]


def polyblep(phase: Tensor, dt: Tensor) -> Tensor:
    """The polynomial band-limited step residual at phase wrap points.

    Written without branches: ``-(t - 1)**2`` just after a wrap (``t = phase / dt < 1``)
    and ``(e + 1)**2`` just before one (``e = (phase - 1) / dt > -1``), zero elsewhere.

    Arguments:
        phase: Phase in cycles, in [0, 1).
        dt: Phase increment per sample (the normalized frequency), below 0.5.
    """
    after = (phase / dt - 1.0).clamp(max=0.0)
    before = ((phase - 1.0) / dt + 1.0).clamp(min=0.0)
    return before * before - after * after


def _saw(phase: Tensor, dt: Tensor) -> Tensor:
    return 2.0 * phase - 1.0 - polyblep(phase, dt)


def morph_oscillator(phase: Tensor, dt: Tensor, shape: Tensor, pulse_width: Tensor) -> Tensor:
    """A waveform that morphs sine -> triangle -> saw -> pulse as ``shape`` goes 0 -> 1.

    Saw and pulse are PolyBLEP band-limited; the triangle's harmonics fall as
    ``1 / k**2`` and need no correction once oversampled.

    Arguments:
        phase: Running phase in cycles ``[B, N]`` (any real value).
        dt: Phase increment per sample ``[B, N]``.
        shape: Waveform position in [0, 1] ``[B]``.
        pulse_width: Duty cycle of the pulse in (0, 1) ``[B]``.
    """
    position = 3.0 * shape[:, None]
    weights = [(1.0 - (position - k).abs()).clamp(min=0.0) for k in range(4)]
    wrapped = phase - torch.floor(phase)
    dt = dt.clamp(1e-6, 0.5)
    out = torch.zeros_like(wrapped)
    if weights[0].any():
        out = out + weights[0] * torch.sin(2 * math.pi * wrapped)
    if weights[1].any():
        out = out + weights[1] * (1.0 - 4.0 * (wrapped - 0.5).abs())
    if weights[2].any() or weights[3].any():
        saw = _saw(wrapped, dt)
        out = out + weights[2] * saw
    if weights[3].any():
        shifted = wrapped + pulse_width[:, None]
        shifted = shifted - torch.floor(shifted)
        out = out + weights[3] * (saw - _saw(shifted, dt))
    return out


@lru_cache(maxsize=8)
def _noise(seed: int, num_samples: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_samples, generator=generator) * 2.0 - 1.0


def noise(seed: int, num_samples: int) -> Tensor:
    """Uniform white noise ``[num_samples]`` in [-1, 1], the same for a seed whatever the batch."""
    return _noise(seed, num_samples)


def ladder_response(freq_hz: Tensor, cutoff_hz: Tensor, resonance: Tensor) -> Tensor:
    r"""Complex response of a 4-pole (24 dB/octave) resonant ladder low-pass filter.

    :math:`H(s) = (1 + k) / ((1 + s)^4 + k)` with :math:`s = j f / f_c` and
    :math:`k = 3.9 \cdot resonance` (4 would self-oscillate); unit gain at DC.

    Arguments:
        freq_hz: Frequencies ``[K]``.
        cutoff_hz: Cut-off frequencies ``[B, F]`` (one per frame).
        resonance: Resonance in [0, 1] ``[B]``.

    Returns:
        The response ``[B, K, F]``.
    """
    x = freq_hz[None, :, None] / cutoff_hz[:, None, :]
    k = 3.9 * resonance[:, None, None]
    r4 = (1.0 + x * x) ** 2
    theta4 = 4.0 * torch.atan(x)
    return torch.complex(1.0 + k, torch.zeros_like(k)) / torch.complex(
        r4 * torch.cos(theta4) + k, r4 * torch.sin(theta4)
    )


def spectral_filter_decimate(
    audio: Tensor, cutoff_hz: Tensor, resonance: Tensor, sample_rate: int, factor: int, n_fft: int, num_samples: int
) -> Tensor:
    """Filters frame-wise in the frequency domain, then decimates by ``factor``.

    The signal is cut into Hann-windowed frames (hop ``n_fft / 4``), each frame's
    spectrum is multiplied by the ladder response at that frame's cut-off, and
    only the bins below the output Nyquist frequency are kept, so decimation is
    an ideal brick-wall low-pass: what aliased above it is dropped.

    Arguments:
        audio: Oversampled audio ``[B, N * factor]``.
        cutoff_hz: Cut-off per frame ``[B, frames]`` with ``frames = N * factor // hop + 1``.
        resonance: Resonance in [0, 1] ``[B]``.
        sample_rate: Sample rate of ``audio``.
        factor: Decimation factor (1 keeps the rate).
        n_fft: Frame size at the oversampled rate.
        num_samples: Output length ``N``.
    """
    hop = n_fft // 4
    window = torch.hann_window(n_fft, device=audio.device)
    spectrum = torch.stft(audio, n_fft, hop, window=window, return_complex=True)
    out_fft = n_fft // factor
    kept = out_fft // 2 + 1
    freq_hz = torch.arange(kept, device=audio.device) * (sample_rate / n_fft)
    filtered = spectrum[:, :kept] * ladder_response(freq_hz, cutoff_hz, resonance) / factor
    out_window = torch.hann_window(out_fft, device=audio.device)
    return torch.istft(filtered, out_fft, hop // factor, window=out_window, length=num_samples)
