"""What a target sound is made of: its level envelope, onset, pitch (YIN), vibrato and an ADSR fit.

The envelope is the RMS of 1024-sample frames every :data:`ENV_HOP` samples. Pitch is YIN's
(:func:`yin`, 40 Hz to 2 kHz, frames of 2048 samples every 512; a frame is voiced when its
aperiodicity is under :data:`VOICED_APERIODICITY`), summarised as the median frequency of the voiced
frames among the *active* frames (RMS within :data:`ACTIVE_DB` of the peak); a sound is pitched when
at least :data:`PITCHED_FRACTION` of its active frames are voiced. Vibrato is the strongest 3-9 Hz
oscillation of the voiced pitch track around its 0.25 s moving average. The ADSR fit finds the
attack, decay, sustain, release and note-off time of the synth's own envelope shape
(:func:`flowsynth.synth.modules.adsr`: linear attack, exponential decay and release) closest to the
target's envelope in dB.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from flowsynth.matching.optim import Adam, single_thread

__all__ = [
    "ACTIVE_DB",
    "ENV_HOP",
    "PITCHED_FRACTION",
    "EnvelopeFit",
    "Pitch",
    "Vibrato",
    "envelope",
    "fit_envelope",
    "yin",
    "detect_onset",
    "detect_pitch",
    "detect_vibrato",
]

#: Hop (samples) of the RMS envelope.
ENV_HOP = 256
ENV_FRAME = 1024
#: Frames within this many dB of the loudest frame are "active" (part of the sound).
ACTIVE_DB = -30.0
#: Level (dB under the loudest frame) that marks the onset and the end of the sound.
ONSET_DB = -40.0
#: Share of the active frames that must be voiced for a sound to count as pitched.
PITCHED_FRACTION = 0.4
PITCH_FMIN_HZ, PITCH_FMAX_HZ = 40.0, 2000.0
PITCH_FRAME, PITCH_HOP = 2048, 512
#: Frames whose YIN aperiodicity is under this are voiced.
VOICED_APERIODICITY = 0.25
_DB_FLOOR = -60.0


def envelope(audio: Tensor) -> Tensor:
    """RMS envelope ``[frames]`` of mono ``audio [N]`` (frames of 1024 samples every :data:`ENV_HOP`, centred).

    >>> envelope(torch.ones(4096)).shape
    torch.Size([17])
    """
    padded = torch.nn.functional.pad(audio.reshape(1, 1, -1), (ENV_FRAME // 2, ENV_FRAME // 2)).reshape(-1)
    frames = padded.unfold(0, ENV_FRAME, ENV_HOP)
    return frames.square().mean(dim=-1).sqrt()


def _level_db(env: Tensor) -> Tensor:
    return 20.0 * torch.log10(env / env.max().clamp_min(1e-12) + 1e-12)


def detect_onset(audio: Tensor, sample_rate: int, threshold_db: float = ONSET_DB) -> tuple[float, float]:
    """Start and end (seconds) of the sound, where its level is within ``threshold_db`` of its peak.

    The first and last envelope frames over the threshold (so that isolated clicks do not count)
    are searched for the first and last sample over it; the start then moves 5 ms earlier (not
    before 0) so that the attack is kept whole.

    >>> audio = torch.cat([torch.zeros(22050), torch.ones(11025), torch.zeros(11025)])
    >>> [round(t, 3) for t in detect_onset(audio, 22050)]
    [0.995, 1.5]
    """
    level = _level_db(envelope(audio))
    active = torch.nonzero(level >= threshold_db).flatten()
    threshold = float(audio.abs().max()) * 10.0 ** (threshold_db / 20.0)
    first = _span(int(active[0]), len(audio))
    last = _span(int(active[-1]), len(audio))
    loud_first = torch.nonzero(audio[first].abs() >= threshold).flatten()
    loud_last = torch.nonzero(audio[last].abs() >= threshold).flatten()
    start = first.start + (int(loud_first[0]) if len(loud_first) else 0)
    end = last.start + (int(loud_last[-1]) + 1 if len(loud_last) else last.stop - last.start)
    return max(0.0, start / sample_rate - 0.005), end / sample_rate


def _span(frame: int, length: int) -> slice:
    """The samples an envelope frame covers."""
    return slice(max(0, frame * ENV_HOP - ENV_FRAME // 2), min(length, frame * ENV_HOP + ENV_FRAME // 2))


@dataclass(frozen=True)
class Pitch:
    """The pitch of a sound.

    Arguments:
        pitched: Whether at least :data:`PITCHED_FRACTION` of the active frames are voiced.
        frequency_hz: Median frequency of the voiced active frames (None when none is voiced).
        voiced_fraction: Share of the active frames that are voiced.
        track_hz: Frequency of every frame (NaN where unvoiced or not active), ``PITCH_HOP`` samples apart.
    """

    pitched: bool
    frequency_hz: float | None
    voiced_fraction: float
    track_hz: np.ndarray

    @property
    def midi(self) -> float | None:
        """The frequency as a (fractional) MIDI note number."""
        return None if self.frequency_hz is None else 69.0 + 12.0 * math.log2(self.frequency_hz / 440.0)


def detect_pitch(audio: Tensor, sample_rate: int) -> Pitch:
    """Pitch of mono ``audio [N]`` with YIN (see the module docstring).

    >>> t = torch.arange(22050) / 22050
    >>> pitch = detect_pitch(torch.sin(2 * torch.pi * 220 * t), 22050)
    >>> pitch.pitched, round(pitch.frequency_hz)
    (True, 220)
    """
    frames = _frames(audio.detach().float(), PITCH_FRAME, PITCH_HOP)
    f0, aperiodicity = yin(frames, sample_rate)
    rms = frames.square().mean(dim=1).sqrt()
    active = rms >= rms.max() * 10.0 ** (ACTIVE_DB / 20.0)
    voiced = aperiodicity < VOICED_APERIODICITY
    fraction = float(voiced[active].float().mean()) if bool(active.any()) else 0.0
    chosen = voiced & active
    frequency = float(f0[chosen].median()) if bool(chosen.any()) else None
    track = torch.where(chosen, f0, torch.nan).double().numpy()
    return Pitch(fraction >= PITCHED_FRACTION and frequency is not None, frequency, fraction, track)


def _frames(audio: Tensor, length: int, hop: int) -> Tensor:
    """Centred frames ``[F, length]`` of ``audio [N]`` (zero padding)."""
    padded = torch.nn.functional.pad(audio.reshape(1, 1, -1), (length // 2, length // 2)).reshape(-1)
    return padded.unfold(0, length, hop)


def yin(frames: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """YIN (de Cheveigne and Kawahara, 2002) on frames ``[F, W]``: frequency (Hz) and aperiodicity per frame.

    The difference function compares the first ``W // 2`` samples of a frame with their copies
    ``tau`` later, for periods of :data:`PITCH_FMAX_HZ` down to :data:`PITCH_FMIN_HZ`; the period is
    the first trough of the cumulative-mean-normalized difference under 0.1 (else its minimum),
    refined by parabolic interpolation. The aperiodicity is that normalized difference (0: periodic).
    """
    min_lag = max(2, int(sample_rate / PITCH_FMAX_HZ))
    max_lag = min(frames.shape[1] // 2 - 1, math.ceil(sample_rate / PITCH_FMIN_HZ))
    cmnd = _cumulative_mean_normalized_difference(frames.double(), max_lag)
    period = _first_trough(cmnd[:, min_lag:], threshold=0.1) + min_lag
    rows = torch.arange(len(frames))
    left, mid = cmnd[rows, (period - 1).clamp_min(0)], cmnd[rows, period]
    right = cmnd[rows, (period + 1).clamp_max(max_lag)]
    curvature = left - 2.0 * mid + right
    shift = torch.where(curvature > 0, 0.5 * (left - right) / curvature.clamp_min(1e-12), 0.0).clamp(-1.0, 1.0)
    return (sample_rate / (period + shift)).float(), mid.float()


def _cumulative_mean_normalized_difference(frames: Tensor, max_lag: int) -> Tensor:
    """YIN's d'(tau) ``[F, max_lag + 1]``: the first half of each frame against itself ``tau`` later."""
    width = frames.shape[1] // 2
    size = 1 << (frames.shape[1] + width - 1).bit_length()
    spectrum = torch.fft.rfft(frames, n=size)
    head = torch.fft.rfft(frames[:, :width], n=size)
    correlation = torch.fft.irfft(head.conj() * spectrum, n=size)[:, : max_lag + 1]
    energy = torch.nn.functional.pad(frames.square().cumsum(dim=1), (1, 0))
    lags = torch.arange(max_lag + 1)
    windowed = energy[:, lags + width] - energy[:, lags]
    difference = (windowed[:, :1] + windowed - 2.0 * correlation).clamp_min(0.0)
    cumulative = difference[:, 1:].cumsum(dim=1) / torch.arange(1, max_lag + 1)
    normalized = difference[:, 1:] / cumulative.clamp_min(1e-12)
    return torch.cat([torch.ones_like(difference[:, :1]), normalized], dim=1)


def _first_trough(values: Tensor, threshold: float) -> Tensor:
    """Per row, the first local minimum under ``threshold``, else the global minimum (its index)."""
    trough = torch.zeros_like(values, dtype=torch.bool)
    trough[:, 1:-1] = (values[:, 1:-1] <= values[:, :-2]) & (values[:, 1:-1] <= values[:, 2:])
    below = trough & (values < threshold)
    return torch.where(below.any(dim=1), below.float().argmax(dim=1), values.argmin(dim=1))


@dataclass(frozen=True)
class Vibrato:
    """A periodic pitch modulation: ``rate_hz`` and peak deviation ``depth_semitones`` (0 when none)."""

    rate_hz: float
    depth_semitones: float


def detect_vibrato(pitch: Pitch, sample_rate: int, min_depth_semitones: float = 0.1) -> Vibrato | None:
    """The vibrato of a pitch track, or None when it has no clear 3-9 Hz modulation deeper than ``min_depth_semitones``.

    Uses the longest run of consecutive voiced frames within 1.5 semitones of the median pitch
    (octave errors and glides break runs), which must last 0.5 s; the modulation is clear when the
    3-9 Hz band holds at least half of the deviation's energy (above 1 Hz).
    """
    if pitch.frequency_hz is None:
        return None
    track = pitch.track_hz.copy()
    with np.errstate(invalid="ignore"):
        track[~(np.abs(12.0 * np.log2(track / pitch.frequency_hz)) <= 1.5)] = np.nan
    run = _longest_voiced_run(track)
    frame_rate = sample_rate / PITCH_HOP
    if len(run) < 0.5 * frame_rate:
        return None
    cents = 1200.0 * np.log2(run / np.median(run))
    width = max(3, round(0.25 * frame_rate) | 1)
    trend = np.convolve(np.pad(cents, width // 2, mode="edge"), np.ones(width) / width, mode="valid")
    wiggle = cents - trend
    size = max(256, len(wiggle))
    power = np.abs(np.fft.rfft(wiggle * np.hanning(len(wiggle)), n=size)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / frame_rate)
    band, above = (freqs >= 3.0) & (freqs <= 9.0), freqs >= 1.0
    if not band.any() or power[band].sum() < 0.5 * power[above].sum():
        return None
    peak = int(np.flatnonzero(band)[np.argmax(power[band])])
    depth = float(np.sqrt(2.0) * np.std(wiggle) / 100.0)
    return Vibrato(float(freqs[peak]), depth) if depth >= min_depth_semitones else None


def _longest_voiced_run(track: np.ndarray) -> np.ndarray:
    best, start = (0, 0), None
    for i, value in enumerate([*track, np.nan]):
        if np.isfinite(value) and start is None:
            start = i
        elif not np.isfinite(value) and start is not None:
            best = max(best, (i - start, start))
            start = None
    length, first = best
    return track[first : first + length]


@dataclass(frozen=True)
class EnvelopeFit:
    """ADSR settings (seconds, sustain as a linear level in [0, 1]) and note-off time that fit an envelope.

    ``error_db`` is the RMS difference in dB (floored at -60 dB) between the fitted and the measured envelope.
    """

    attack_s: float
    decay_s: float
    sustain: float
    release_s: float
    note_s: float
    error_db: float

    def describe(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


#: Ranges of the fitted values, as the built-in synth's envelope parameters (seconds).
_FIT_RANGES = {"attack_s": (0.001, 2.0), "decay_s": (0.01, 3.0), "release_s": (0.01, 2.0)}


def fit_envelope(audio: Tensor, sample_rate: int, steps: int = 150, seed: int = 0) -> EnvelopeFit:
    """Fits the synth's ADSR shape to the level envelope of ``audio [N]`` (onset at 0), in dB.

    Several starts (note-off times across the sound, low and high sustain) are fitted at once by
    Adam on unconstrained values; the best fit is returned.

    >>> t = torch.arange(2 * 22050) / 22050
    >>> tone = torch.sin(2 * torch.pi * 220 * t) * torch.where(t < 1.0, 1.0, torch.exp(-4.6 * (t - 1.0) / 0.3))
    >>> fit = fit_envelope(tone, 22050)
    >>> abs(fit.note_s - 1.0) < 0.1, fit.sustain > 0.8
    (True, True)
    """
    with single_thread():
        return _fit_envelope(audio, sample_rate, steps, seed)


def _fit_envelope(audio: Tensor, sample_rate: int, steps: int, seed: int) -> EnvelopeFit:
    env = envelope(audio.detach().float())
    target_db = _level_db(env).clamp_min(_DB_FLOOR)
    times = torch.arange(len(env), dtype=torch.float32) * (ENV_HOP / sample_rate)
    duration_s = float(times[-1])
    starts = _fit_starts(duration_s, seed)
    raw = starts.clone().requires_grad_(True)
    optimizer = Adam(raw, lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        error = (_fit_db(raw, times, duration_s) - target_db).square().mean(dim=1)
        error.sum().backward()
        optimizer.step()
    with torch.no_grad():
        error = (_fit_db(raw, times, duration_s) - target_db).square().mean(dim=1)
        best = int(torch.argmin(error))
        values = _fit_values(raw[best : best + 1], duration_s)
    return EnvelopeFit(**{k: float(v[0]) for k, v in values.items()}, error_db=float(error[best].sqrt()))


def _fit_starts(duration_s: float, seed: int) -> Tensor:
    """Unconstrained starting points ``[S, 5]``: note-off at 8 times across the sound, sustain low and high."""
    generator = torch.Generator().manual_seed(seed)
    offs = torch.linspace(0.1, 0.95, 8)
    rows = [torch.tensor([-2.0, 0.0, sustain, 0.0, _logit(float(off))]) for off in offs for sustain in (-2.0, 2.0)]
    return torch.stack(rows) + 0.1 * torch.randn(len(rows), 5, generator=generator)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _fit_values(raw: Tensor, duration_s: float) -> dict[str, Tensor]:
    """Maps unconstrained ``[S, 5]`` values to attack, decay, sustain, release (log ranges) and note-off."""
    unit = torch.sigmoid(raw)
    out = {}
    for i, (name, (low, high)) in zip((0, 1, 3), _FIT_RANGES.items(), strict=True):
        out[name] = low * (high / low) ** unit[:, i]
    out["sustain"] = unit[:, 2]
    out["note_s"] = 0.02 + (duration_s - 0.02) * unit[:, 4]
    return out


def _fit_db(raw: Tensor, times: Tensor, duration_s: float) -> Tensor:
    """The ADSR envelope (as :func:`flowsynth.synth.modules.adsr`, per-row note-off) in dB, ``[S, T]``."""
    v = _fit_values(raw, duration_s)
    a, d, s, r, off = (v[k][:, None] for k in ("attack_s", "decay_s", "sustain", "release_s", "note_s"))

    def held(t: Tensor) -> Tensor:
        rise = (t / a).clamp(max=1.0)
        fall = s + (1.0 - s) * torch.exp(-4.6 * (t - a).clamp(min=0.0) / d)
        return torch.where(t < a, rise, fall)

    t = times[None, :]
    released = held(off) * torch.exp(-4.6 * (t - off).clamp(min=0.0) / r)
    level = torch.where(t < off, held(t), released)
    return (20.0 * torch.log10(level + 1e-6)).clamp_min(_DB_FLOOR)
