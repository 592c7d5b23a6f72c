"""Spectral building blocks shared by features, metrics and descriptors: STFT power, mel filterbank, DCT."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_batch", "dct_matrix", "mel_filterbank", "power_of", "stft", "stft_power"]


def as_batch(audio: Tensor, name: str = "audio") -> tuple[Tensor, tuple[int, ...]]:
    """Returns ``audio [..., N]`` as ``[B, N]`` and its leading shape, refusing what is not float audio.

    >>> batch, lead = as_batch(torch.zeros(2, 3, 10))
    >>> batch.shape, lead
    (torch.Size([6, 10]), (2, 3))
    """
    if not isinstance(audio, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of samples, got {type(audio).__name__}")
    if not audio.is_floating_point() or audio.dtype in (torch.float16, torch.bfloat16):
        raise TypeError(f"{name} must be float32 or float64 samples, got {audio.dtype}")
    if audio.dim() == 0 or audio.shape[-1] == 0:
        raise ValueError(f"{name} must have shape [N] or [B, N] with N > 0 samples, got {list(audio.shape)}")
    return audio.reshape(-1, audio.shape[-1]), tuple(audio.shape[:-1])


def stft(
    audio: Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    pad_mode: str = "constant",
) -> Tensor:
    """Complex STFT of ``audio [B, N]`` as ``[B, n_fft // 2 + 1, frames]``.

    Periodic Hann window of ``win_length`` (default ``n_fft``) centred in the frame; frames are
    centred on ``t * hop_length`` (the signal is padded by ``n_fft // 2`` on both sides with
    ``pad_mode``: ``"constant"`` zeros like librosa >= 0.10, ``"reflect"`` like torch's default),
    so there are ``1 + N // hop_length`` frames. ``.abs()`` of it has a zero (not NaN) gradient at 0.

    >>> stft(torch.zeros(2, 4096), n_fft=1024, hop_length=256).shape
    torch.Size([2, 513, 17])
    """
    window = torch.hann_window(win_length or n_fft, periodic=True, dtype=audio.dtype, device=audio.device)
    # padding here, not with center=True, is several times faster on CPU and gives the same frames
    padded = torch.nn.functional.pad(audio, (n_fft // 2, n_fft // 2), mode=pad_mode)
    return torch.stft(
        padded,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length or n_fft,
        window=window,
        center=False,
        return_complex=True,
    )


def stft_power(audio: Tensor, n_fft: int, hop_length: int, win_length: int | None = None) -> Tensor:
    """Power spectrogram ``|STFT|^2`` of ``audio [B, N]`` (zero padding, see :func:`stft`); smooth gradient.

    >>> stft_power(torch.ones(1, 2048), n_fft=1024, hop_length=256).shape
    torch.Size([1, 513, 9])
    """
    return power_of(stft(audio, n_fft, hop_length, win_length))


def power_of(spectrum: Tensor) -> Tensor:
    """``|spectrum|^2`` of a complex tensor as ``re^2 + im^2``: smooth gradient, faster than ``abs().square()``.

    >>> power_of(torch.tensor([3 + 4j]))
    tensor([25.])
    """
    return spectrum.real.square() + spectrum.imag.square()


@functools.lru_cache(maxsize=32)
def _mel_filterbank_np(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float | None) -> np.ndarray:
    import librosa  # lazy: slow to import

    if fmax_hz is not None and fmax_hz > sample_rate / 2:
        raise ValueError(f"fmax_hz={fmax_hz} is above the Nyquist frequency {sample_rate / 2} Hz of {sample_rate} Hz")
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin_hz, fmax=fmax_hz)
    basis.setflags(write=False)
    return basis


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The mel filterbank ``[n_mels, n_fft // 2 + 1]`` of ``librosa.filters.mel`` (Slaney scale and area norm).

    Built once per setting (cached) and returned as a new tensor.

    >>> mel_filterbank(22050, 2048, 64, 30.0, 11000.0).shape
    torch.Size([64, 1025])
    """
    basis = _mel_filterbank_np(int(sample_rate), int(n_fft), int(n_mels), float(fmin_hz), fmax_hz)
    return torch.tensor(basis, dtype=dtype, device=device)


@functools.lru_cache(maxsize=8)
def _dct_matrix_np(n_out: int, n_in: int) -> np.ndarray:
    import scipy.fft

    matrix = scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]
    matrix.setflags(write=False)
    return matrix


def dct_matrix(
    n_out: int, n_in: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Orthonormal DCT-II matrix ``[n_out, n_in]`` (first ``n_out`` coefficients), as librosa's MFCC uses.

    >>> m = dct_matrix(4, 4, dtype=torch.float64)
    >>> torch.allclose(m @ m.T, torch.eye(4, dtype=torch.float64))
    True
    """
    return torch.tensor(_dct_matrix_np(int(n_out), int(n_in)), dtype=dtype, device=device)
