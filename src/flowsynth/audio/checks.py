"""Checks that in-memory audio is usable: a float tensor of finite, non-silent samples."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from flowsynth.errors import AudioError

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "SILENCE_PEAK",
    "SILENCE_PEAK_DB",
    "check_audio",
    "check_sample_rate",
]

#: Peak level (dBFS) under which a sound counts as silent: -80 dBFS, a peak of 1e-4, about three
#: steps of 16-bit PCM, so digital silence and dither-only files are refused.
SILENCE_PEAK_DB = -80.0
#: :data:`SILENCE_PEAK_DB` as a linear peak amplitude.
SILENCE_PEAK = 10.0 ** (SILENCE_PEAK_DB / 20.0)
#: Lowest sample rate (Hz) accepted for audio files and resampling targets.
MIN_SAMPLE_RATE = 1_000
#: Highest sample rate (Hz) accepted for audio files and resampling targets.
MAX_SAMPLE_RATE = 768_000


def check_sample_rate(sample_rate: float, what: str = "sample rate") -> int:
    """Returns ``sample_rate`` as an int, or raises if it is not a plausible audio rate.

    Args:
        sample_rate: rate in Hz.
        what: how the rate is named in the error message.

    Raises:
        AudioError: the rate is not a whole number in [1000, 768000] Hz.

    >>> check_sample_rate(22050.0)
    22050
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise AudioError(f"{what} must be a number of Hz, got {sample_rate!r}")
    if not math.isfinite(float(sample_rate)) or sample_rate != int(sample_rate):
        raise AudioError(f"{what} must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{what} of {int(sample_rate)} Hz is outside the accepted range [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )
    return int(sample_rate)


def check_audio(audio: Tensor, *, allow_silent: bool = False, name: str = "audio") -> Tensor:
    """Returns ``audio`` unchanged if it is usable, else raises an :class:`AudioError` saying why.

    Usable audio is a floating-point tensor ``[N]`` (one sound) or ``[B, N]`` (one sound per row)
    with at least one sample, only finite values and, unless ``allow_silent``, a peak of at least
    :data:`SILENCE_PEAK` (-80 dBFS) in every row.

    Args:
        audio: samples, nominally in [-1, 1].
        allow_silent: accept sounds whose peak is under the silence threshold.
        name: how the audio is named in error messages (a file name, for example).

    Raises:
        AudioError: wrong type or shape, no samples, NaN/inf samples, or a silent sound.

    >>> check_audio(torch.tensor([0.0, 0.5, -0.25])).shape
    torch.Size([3])
    >>> check_audio(torch.zeros(4))
    Traceback (most recent call last):
    ...
    flowsynth.errors.AudioError: audio is silent (peak -inf dBFS, under the -80 dBFS threshold); \
pass allow_silent=True to accept silent sounds
    """
    if not isinstance(audio, Tensor):
        raise AudioError(f"{name} must be a torch.Tensor, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise AudioError(f"{name} must hold floating-point samples in [-1, 1], got dtype {audio.dtype}")
    if audio.dim() not in (1, 2):
        raise AudioError(f"{name} must have shape [N] or [B, N], got {list(audio.shape)}")
    if audio.shape[-1] == 0 or audio.numel() == 0:
        raise AudioError(f"{name} is empty (shape {list(audio.shape)}): it has no samples")
    rows = audio.detach().reshape(-1, audio.shape[-1])
    _check_finite(rows, name)
    if not allow_silent:
        _check_not_silent(rows, name)
    return audio


def _row_label(name: str, rows: Tensor, index: int) -> str:
    return name if rows.shape[0] == 1 else f"{name} row {index}"


def _check_finite(rows: Tensor, name: str) -> None:
    bad = ~torch.isfinite(rows)
    if bad.any():
        index = int(bad.any(dim=1).nonzero()[0, 0])
        count = int(bad[index].sum())
        raise AudioError(f"{_row_label(name, rows, index)} has {count} NaN or infinite samples")


def _check_not_silent(rows: Tensor, name: str) -> None:
    peaks = rows.abs().amax(dim=1)
    silent = peaks < SILENCE_PEAK
    if silent.any():
        index = int(silent.nonzero()[0, 0])
        peak_db = 20.0 * math.log10(float(peaks[index])) if float(peaks[index]) > 0 else -math.inf
        raise AudioError(
            f"{_row_label(name, rows, index)} is silent (peak {peak_db:.1f} dBFS, under the "
            f"{SILENCE_PEAK_DB:.0f} dBFS threshold); pass allow_silent=True to accept silent sounds"
        )
