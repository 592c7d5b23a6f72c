"""Evaluation metrics of PROTOCOL.md as batched torch functions: reference ``x``, estimate ``y`` -> one value per item.

Every audio metric takes ``x`` and ``y`` of the same shape ``[B, N]`` (or ``[N]``, or ``[..., N]``) and
returns ``[B]`` (the leading shape). ``S = |STFT|`` (periodic Hann window, n_fft 1024, hop 256, frames
centred with zero padding as librosa >= 0.10), ``P = S^2``:

* ``sc``: spectral convergence ``||S_x - S_y||_F / ||S_x||_F`` (a silent ``x`` divides by 1e-12).
* ``lsd``: log-spectral distance in dB, mean over frames of
  ``sqrt(mean over bins of (10 log10(P_x + 1e-8) - 10 log10(P_y + 1e-8))^2)``.
* ``mfcc_l1``: mean absolute difference of MFCCs 1..19 (c0 dropped), computed as
  ``librosa.feature.mfcc(n_mfcc=20, n_mels=40, n_fft=1024, hop_length=256)``: power mel (Slaney, 0 Hz to
  Nyquist), ``10 log10(max(mel, 1e-10))`` clipped at 80 dB under the sound's maximum, orthonormal DCT-II.
* ``mr_stft``: auraloss' ``MultiResolutionSTFTLoss`` with its defaults: FFT sizes (1024, 2048, 512),
  hops (120, 240, 50), Hann windows (600, 1200, 240) centred in the FFT frame, reflect padding;
  magnitude ``sqrt(max(P, 1e-8))``; per resolution, SC plus the mean of ``|ln S_y - ln S_x|`` (natural
  log); averaged over the three resolutions. Per item it equals auraloss on a batch of one (auraloss
  pools SC over a batch). Needs more than 1024 samples (reflect padding).
* ``mel_sc`` / ``mel_mse``: SC and mean squared error on the 64 x 80 **linear** mel power of the model
  input (:func:`~flowsynth.features.logmel.mel_spectrogram`): FlowSynth's table undid the
  normalization and the log (``exp(x) - 1e-3``) before computing them, so the values compare with it.

SC, LSD, MR-STFT and the mel metrics are differentiable (finite gradients, silence and identity included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from flowsynth.features.logmel import SAMPLE_RATE, mel_spectrogram
from flowsynth.features.spectral import as_batch, dct_matrix, mel_filterbank, power_of, stft, stft_power

__all__ = [
    "AUDIO_METRICS",
    "audio_metrics",
    "log_spectral_distance",
    "mean_ci",
    "mel_mse",
    "mel_sc",
    "mfcc",
    "mfcc_l1",
    "mr_stft",
    "param_mae",
    "param_mse",
    "spectral_convergence",
]

N_FFT, HOP_LENGTH = 1024, 256
LSD_EPS = 1e-8
N_MFCC, MFCC_N_MELS, MFCC_AMIN, MFCC_TOP_DB = 20, 40, 1e-10, 80.0
MR_FFT_SIZES, MR_HOP_SIZES, MR_WIN_LENGTHS = (1024, 2048, 512), (120, 240, 50), (600, 1200, 240)
MR_EPS = 1e-8
_NORM_FLOOR = 1e-12
#: Names of the metrics :func:`audio_metrics` returns, in order.
AUDIO_METRICS = ("sc", "lsd", "mfcc_l1", "mr_stft", "mel_sc", "mel_mse")


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    xb, lead = as_batch(x, "reference x")
    yb, _ = as_batch(y, "estimate y")
    if x.shape != y.shape:
        raise ValueError(
            f"reference x and estimate y must have the same shape, got {list(x.shape)} and {list(y.shape)}"
        )
    return xb, yb.to(xb.dtype), lead


def _sc(reference: Tensor, estimate: Tensor) -> Tensor:
    """Spectral convergence of ``[B, F, T]`` magnitudes, per item."""
    distance = torch.linalg.vector_norm(reference - estimate, dim=(-2, -1))
    return distance / torch.linalg.vector_norm(reference, dim=(-2, -1)).clamp_min(_NORM_FLOOR)


def _safe_sqrt(values: Tensor) -> Tensor:
    """``sqrt`` that is exactly 0 with a zero gradient at 0 (plain sqrt has an infinite one)."""
    positive = values > 0
    return torch.where(positive, torch.where(positive, values, 1.0).sqrt(), 0.0)


def _lsd(power_x: Tensor, power_y: Tensor) -> Tensor:
    diff_db = 10.0 * (torch.log10(power_x + LSD_EPS) - torch.log10(power_y + LSD_EPS))
    return _safe_sqrt(diff_db.square().mean(dim=-2)).mean(dim=-1)


def _mfcc_from_power(power: Tensor, sample_rate: int) -> Tensor:
    basis = mel_filterbank(sample_rate, N_FFT, MFCC_N_MELS, dtype=power.dtype, device=power.device)
    db = 10.0 * torch.log10(torch.matmul(basis, power).clamp_min(MFCC_AMIN))
    db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - MFCC_TOP_DB)
    return torch.matmul(dct_matrix(N_MFCC, MFCC_N_MELS, dtype=power.dtype, device=power.device), db)


def _mfcc_l1(power_x: Tensor, power_y: Tensor, sample_rate: int) -> Tensor:
    diff = _mfcc_from_power(power_x, sample_rate)[:, 1:] - _mfcc_from_power(power_y, sample_rate)[:, 1:]
    return diff.abs().mean(dim=(-2, -1))


def spectral_convergence(x: Tensor, y: Tensor) -> Tensor:
    """SC ``||S_x - S_y||_F / ||S_x||_F`` per item (see the module docstring).

    >>> x = torch.sin(torch.arange(4096) * 0.1).unsqueeze(0)
    >>> spectral_convergence(x, x), spectral_convergence(x, torch.zeros_like(x))
    (tensor([0.]), tensor([1.]))
    """
    xb, yb, lead = _pair(x, y)
    return _sc(stft(xb, N_FFT, HOP_LENGTH).abs(), stft(yb, N_FFT, HOP_LENGTH).abs()).reshape(lead)


def log_spectral_distance(x: Tensor, y: Tensor) -> Tensor:
    """LSD in dB per item (see the module docstring); doubling the amplitude gives about 6.02 dB.

    >>> x = torch.sin(torch.arange(4096) * 0.1).unsqueeze(0)
    >>> log_spectral_distance(x, x)
    tensor([0.])
    """
    xb, yb, lead = _pair(x, y)
    return _lsd(stft_power(xb, N_FFT, HOP_LENGTH), stft_power(yb, N_FFT, HOP_LENGTH)).reshape(lead)


def mfcc(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """MFCCs ``[..., 20, frames]`` of ``audio [..., N]``, equal to librosa's with n_mels 40, n_fft 1024, hop 256.

    >>> mfcc(torch.zeros(2, 2560)).shape
    torch.Size([2, 20, 11])
    """
    batch, lead = as_batch(audio)
    coefficients = _mfcc_from_power(stft_power(batch, N_FFT, HOP_LENGTH), int(sample_rate))
    return coefficients.reshape(*lead, *coefficients.shape[-2:])


def mfcc_l1(x: Tensor, y: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Mean absolute difference of MFCCs 1..19 (c0 dropped) per item.

    >>> x = torch.sin(torch.arange(4096) * 0.1).unsqueeze(0)
    >>> mfcc_l1(x, x)
    tensor([0.])
    """
    xb, yb, lead = _pair(x, y)
    power_x, power_y = stft_power(xb, N_FFT, HOP_LENGTH), stft_power(yb, N_FFT, HOP_LENGTH)
    return _mfcc_l1(power_x, power_y, int(sample_rate)).reshape(lead)


def _mr_magnitude(audio: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    return power_of(stft(audio, n_fft, hop, win, pad_mode="reflect")).clamp_min(MR_EPS).sqrt()


def mr_stft(x: Tensor, y: Tensor) -> Tensor:
    """Multi-resolution STFT distance per item, auraloss' ``MultiResolutionSTFTLoss`` definition (module docstring).

    >>> x = torch.sin(torch.arange(4096) * 0.1).unsqueeze(0)
    >>> mr_stft(x, x)
    tensor([0.])
    """
    xb, yb, lead = _pair(x, y)
    if xb.shape[-1] <= max(MR_FFT_SIZES) // 2:
        raise ValueError(f"mr_stft needs more than {max(MR_FFT_SIZES) // 2} samples, got {xb.shape[-1]}")
    total = xb.new_zeros(xb.shape[0])
    for n_fft, hop, win in zip(MR_FFT_SIZES, MR_HOP_SIZES, MR_WIN_LENGTHS, strict=True):
        mag_x, mag_y = _mr_magnitude(xb, n_fft, hop, win), _mr_magnitude(yb, n_fft, hop, win)
        total = total + _sc(mag_x, mag_y) + (mag_y.log() - mag_x.log()).abs().mean(dim=(-2, -1))
    return (total / len(MR_FFT_SIZES)).reshape(lead)


def _mel_pair(x: Tensor, y: Tensor, sample_rate: int) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    xb, yb, lead = _pair(x, y)
    return mel_spectrogram(xb, sample_rate), mel_spectrogram(yb, sample_rate), lead


def mel_sc(x: Tensor, y: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Spectral convergence on the 64 x 80 linear mel power of the model input, per item."""
    mel_x, mel_y, lead = _mel_pair(x, y, sample_rate)
    return _sc(mel_x, mel_y).reshape(lead)


def mel_mse(x: Tensor, y: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Mean squared error on the 64 x 80 linear mel power of the model input, per item."""
    mel_x, mel_y, lead = _mel_pair(x, y, sample_rate)
    return (mel_x - mel_y).square().mean(dim=(-2, -1)).reshape(lead)


def _param_pair(x: Tensor, y: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("parameters must be torch.Tensors [B, n_params]")
    if x.shape != y.shape or x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"parameters must have the same shape [B, n_params > 0], got {list(x.shape)} and {list(y.shape)}"
        )
    return y.to(x.dtype) - x


def param_mae(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error over normalized parameters ``[B, P] -> [B]``.

    >>> param_mae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]))
    tensor([0.5000])
    """
    return _param_pair(x, y).abs().mean(dim=-1)


def param_mse(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error over normalized parameters ``[B, P] -> [B]``.

    >>> param_mse(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]))
    tensor([0.2500])
    """
    return _param_pair(x, y).square().mean(dim=-1)


def audio_metrics(x: Tensor, y: Tensor, sample_rate: int = SAMPLE_RATE) -> dict[str, Tensor]:
    """Every audio metric, by name (:data:`AUDIO_METRICS`), per item; the shared STFT is computed once."""
    xb, yb, lead = _pair(x, y)
    spec_x, spec_y = stft(xb, N_FFT, HOP_LENGTH).abs(), stft(yb, N_FFT, HOP_LENGTH).abs()
    power_x, power_y = spec_x.square(), spec_y.square()
    mel_x, mel_y = mel_spectrogram(xb, sample_rate), mel_spectrogram(yb, sample_rate)
    values = {
        "sc": _sc(spec_x, spec_y),
        "lsd": _lsd(power_x, power_y),
        "mfcc_l1": _mfcc_l1(power_x, power_y, int(sample_rate)),
        "mr_stft": mr_stft(xb, yb),
        "mel_sc": _sc(mel_x, mel_y),
        "mel_mse": (mel_x - mel_y).square().mean(dim=(-2, -1)),
    }
    return {name: value.reshape(lead) for name, value in values.items()}


def mean_ci(values: Tensor | np.ndarray | Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval ``(mean, low, high)`` of independent values.

    With a single value the interval is undefined: ``low`` and ``high`` are NaN.

    Raises:
        ValueError: no values, NaN/inf values (drop failed items first), confidence outside (0, 1).

    >>> [round(v, 3) for v in mean_ci([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    data = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, dtype=float)
    data = data.reshape(-1)
    if data.size == 0:
        raise ValueError("mean_ci needs at least one value")
    if not np.isfinite(data).all():
        raise ValueError(f"mean_ci got {int((~np.isfinite(data)).sum())} NaN/inf values; drop failed items first")
    mean = float(data.mean())
    if data.size == 1:
        return mean, math.nan, math.nan
    from scipy import stats  # lazy: slow to import

    half = float(stats.t.ppf(0.5 + confidence / 2.0, data.size - 1)) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return mean, mean - half, mean + half
