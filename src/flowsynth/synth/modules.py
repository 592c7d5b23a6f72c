"""Batched, differentiable synth modules in torch: oscillators, envelopes, LFO, filter."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "adsr",
    "block_linear",
    "block_phase",
    "control_points",
    "control_to_audio",
    "ladder_response",
    "lfo",
    "morph_wavetable",
    "noise",
    "overlap_add",
    "soft_clip",
    "spectral_filter_decimate",
    "wavetable_lookup",
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
    """Linearly interpolates control-rate signals ``[B, C]`` to ``[B, num_samples]``, ends aligned."""
    return F.interpolate(control[:, None, :], size=num_samples, mode="linear", align_corners=True)[:, 0]


def control_points(num_samples: int, hop: int, sample_rate: float) -> Tensor:
    """Times in seconds of the control points every ``hop`` samples, enough to cover ``num_samples``."""
    return torch.arange(-(-num_samples // hop) + 1) * (hop / sample_rate)


def block_linear(control: Tensor, hop: int, num_samples: int) -> Tensor:
    """Audio-rate ``[B, num_samples]`` from control points every ``hop`` samples ``[B, C]``, linearly.

    Example:
        >>> block_linear(torch.tensor([[0.0, 4.0, 0.0]]), hop=4, num_samples=7)
        tensor([[0., 1., 2., 3., 4., 3., 2.]])
    """
    ramp = torch.arange(hop, dtype=control.dtype, device=control.device) / hop
    start, rise = control[:, :-1, None], torch.diff(control, dim=1)[:, :, None]
    return torch.addcmul(start, rise, ramp).reshape(len(control), -1)[:, :num_samples]


def block_phase(increment: Tensor, hop: int) -> Tensor:
    """Running phase in cycles ``[B, (C - 1) * hop]`` of an increment given at control points ``[B, C]``.

    The increment per sample is linear between control points (as :func:`block_linear`),
    so the phase is summed in closed form: exactly, in double precision, from block
    to block, and in single precision within a block. The phase is 0 at sample 0.

    Example:
        >>> phase = block_phase(torch.tensor([[0.25, 0.25, 0.25]]), hop=4)
        >>> phase.tolist()
        [[0.0, 0.25, 0.5, 0.75, 0.0, 0.25, 0.5, 0.75]]
    """
    j = torch.arange(hop, dtype=increment.dtype, device=increment.device)
    start, rise = increment[:, :-1], torch.diff(increment, dim=1) / hop
    totals = hop * start.double() + rise.double() * (hop * (hop - 1) / 2)
    before = torch.cumsum(totals, dim=1) - totals
    phase = torch.addcmul(torch.frac(before).float()[:, :, None], start[:, :, None], j)
    phase = phase.addcmul_(rise[:, :, None], j * (j - 1) / 2)
    return torch.frac(phase).reshape(len(increment), -1)


#: Samples in one cycle of a wavetable (harmonics up to half of it can be stored).
TABLE_SIZE = 4096


def morph_wavetable(shape: Tensor, pulse_width: Tensor, max_harmonic: Tensor, size: int = TABLE_SIZE) -> Tensor:
    """One band-limited cycle of a waveform that morphs sine -> triangle -> saw -> pulse.

    Built from its Fourier series, so it holds exactly the harmonics ``1..max_harmonic``
    of the ideal waveform: a lookup at any pitch whose top harmonic stays below the
    Nyquist frequency does not alias. Differentiable in ``shape`` and ``pulse_width``.

    Arguments:
        shape: Waveform position in [0, 1] ``[B]`` (0 sine, 1/3 triangle, 2/3 saw, 1 pulse).
        pulse_width: Duty cycle of the pulse in (0, 1) ``[B]``.
        max_harmonic: Highest harmonic to keep ``[B]``.
        size: Samples per cycle.

    Returns:
        The cycle ``[B, size]``.

    Example:
        >>> saw = morph_wavetable(torch.tensor([2 / 3]), torch.tensor([0.5]), torch.tensor([400.0]), size=1024)
        >>> [round(saw[0, i].item(), 2) for i in (256, 512, 768)]
        [-0.5, 0.0, 0.5]
    """
    k = torch.arange(size // 2 + 1, dtype=torch.float32, device=shape.device)
    position = 3.0 * shape[:, None]
    sine, triangle, saw, pulse = ((1.0 - (position - i).abs()).clamp(min=0.0) for i in range(4))
    k1 = k.clamp(min=1.0)
    odd = torch.remainder(k, 2.0)
    # forward-normalized coefficients: x(p) = sum_k 2 Re(X_k exp(2j pi k p))
    real = -4.0 / (math.pi**2 * k1 * k1) * odd * triangle
    saw_imag = 1.0 / (math.pi * k1)
    turn = 2.0 * math.pi * k1 * pulse_width[:, None]
    real = real + saw_imag * torch.sin(turn) * pulse
    imag = saw_imag * (saw + pulse * (1.0 - torch.cos(turn)))
    imag = imag - 0.5 * sine * (k == 1.0)
    keep = (k >= 1.0) & (k <= max_harmonic[:, None])
    spectrum = torch.complex(real * keep, imag * keep)
    return torch.fft.irfft(spectrum, n=size, norm="forward")


def wavetable_lookup(table: Tensor, phase: Tensor) -> Tensor:
    """Reads cycles ``[B, size]`` at phases in cycles ``[B, N]`` in [-1, 2), linearly interpolated.

    Example:
        >>> ramp = torch.arange(4.0)[None]
        >>> wavetable_lookup(ramp, torch.tensor([[0.0, 0.125, -0.25, 1.5]]))
        tensor([[0.0000, 0.5000, 3.0000, 2.0000]])
    """
    size = table.shape[1]
    tiled = torch.cat([table, table, table, table[:, :2]], dim=1)
    pairs = torch.complex(tiled[:, :-1], tiled[:, 1:])  # each sample with the next, for one gather
    position = torch.addcmul(torch.tensor(float(size)), phase, torch.tensor(float(size)))
    index = position.floor()
    fraction = position - index
    both = torch.view_as_real(pairs.gather(1, index.long()))
    return torch.lerp(both[..., 0], both[..., 1], fraction)


def soft_clip(x: Tensor) -> Tensor:
    """``tanh`` saturation with first-order antiderivative anti-aliasing, along the last axis.

    Each output sample is the mean of ``tanh`` over the line from the previous input
    sample to this one, ``(F(x[n]) - F(x[n-1])) / (x[n] - x[n-1])`` with
    ``F = log cosh``: the harmonics the saturation makes above the Nyquist frequency
    fold back much weaker than with ``tanh`` alone. Delays by half a sample.

    Example:
        >>> slow = torch.linspace(-3.0, 3.0, 1000)[None]
        >>> bool((soft_clip(slow) - torch.tanh(slow)).abs().max() < 0.01)
        True
    """
    before = torch.cat([x[..., :1], x[..., :-1]], dim=-1)
    step = x - before
    close = step.abs() < 1e-3
    # log cosh(x) + log 2, whose differences are those of log cosh
    integral = x.abs()
    integral = integral + torch.log1p(torch.exp(-2.0 * integral))
    change = integral - torch.cat([integral[..., :1], integral[..., :-1]], dim=-1)
    averaged = change / torch.where(close, torch.ones_like(step), step)
    return torch.where(close, torch.tanh(0.5 * (x + before)), averaged)


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
    x = freq_hz[None, :, None] * (1.0 / cutoff_hz[:, None, :])
    k = 3.9 * resonance[:, None, None]
    # (1 + jx)^4 + k = (x^4 - 6x^2 + 1 + k) + j 4x (1 - x^2)
    u = x * x
    real = torch.addcmul(1.0 + k, u, u - 6.0)
    imag = 4.0 * x * (u - 1.0)
    gain = (1.0 + k) / torch.addcmul(real * real, imag, imag)
    return torch.complex(gain * real, gain * imag)


def spectral_filter_decimate(
    audio: Tensor, cutoff_hz: Tensor, resonance: Tensor, sample_rate: int, factor: int, n_fft: int, num_samples: int
) -> Tensor:
    """Filters frame-wise in the frequency domain, then decimates by ``factor``.

    The signal is cut into frames of ``n_fft`` samples overlapping by half, under a
    sine (square-root Hann) window, each frame's spectrum is multiplied by the ladder
    response at that frame's cut-off, and the frames are windowed again and added,
    which rebuilds the signal exactly where the filter is flat. Only the bins below
    the output Nyquist frequency are kept, so decimation is an ideal brick-wall
    low-pass: what aliased above it is dropped.

    Arguments:
        audio: Oversampled audio ``[B, N * factor]``.
        cutoff_hz: Cut-off per frame ``[B, frames]`` with ``frames = N * factor // (n_fft // 2) + 2``.
        resonance: Resonance in [0, 1] ``[B]``.
        sample_rate: Sample rate of ``audio``.
        factor: Decimation factor (1 keeps the rate).
        n_fft: Frame size at the oversampled rate.
        num_samples: Output length ``N``.
    """
    hop = n_fft // 2
    audio = F.pad(audio, (hop, 2 * hop))  # silence before the note, and frames to cover the end twice
    window = _sine_window(n_fft, audio.device)
    spectrum = torch.stft(audio, n_fft, hop, window=window, center=False, return_complex=True)
    out_fft = n_fft // factor
    kept = out_fft // 2 + 1
    freq_hz = torch.arange(kept, device=audio.device) * (sample_rate / n_fft)
    filtered = spectrum[:, :kept] * ladder_response(freq_hz, cutoff_hz, resonance)
    if factor > 1:
        filtered = filtered / factor
    return overlap_add(torch.fft.irfft(filtered, n=out_fft, dim=1), num_samples)


def overlap_add(frames: Tensor, num_samples: int) -> Tensor:
    """Inverse of a centred STFT with a sine window and hop ``n_fft / 2``, from time frames.

    Arguments:
        frames: Time-domain frames ``[B, n_fft, F]`` (the inverse FFT of each frame).
        num_samples: Output length.

    Samples after the centre of the last frame are rebuilt only if the STFT's input
    was padded by ``n_fft / 2``.

    Example:
        >>> x = torch.randn(1, 4000)
        >>> window = torch.hann_window(256).sqrt()
        >>> spectrum = torch.stft(F.pad(x, (0, 128)), 256, 128, window=window, return_complex=True)
        >>> y = overlap_add(torch.fft.irfft(spectrum, n=256, dim=1), 4000)
        >>> bool(torch.allclose(x, y, atol=1e-5))
        True
    """
    batch, n_fft, count = frames.shape
    hop = n_fft // 2
    pieces = (frames * _sine_window(n_fft, frames.device)[None, :, None]).transpose(1, 2)
    out = torch.zeros(batch, count + 1, hop, device=frames.device, dtype=frames.dtype)
    out[:, :count] = pieces[:, :, :hop]
    out[:, 1:] += pieces[:, :, hop:]
    return out.reshape(batch, -1)[:, hop : hop + num_samples]


@lru_cache(maxsize=8)
def _sine_window(n_fft: int, device: torch.device) -> Tensor:
    """The periodic sine window, whose squares overlapping by half add up to one."""
    return torch.hann_window(n_fft, device=device).sqrt()
