"""The model input: a 64 x 80 log-mel spectrogram of 4 s of audio, as FlowSynth defines it.

Definition (PROTOCOL.md, FlowSynth's ``librosa.feature.melspectrogram(...)[:64, :80]`` followed by
``log(x + 1e-3)``):

* STFT: n_fft 2048, hop 1024, periodic Hann window of 2048, frames centred on ``t * 1024`` with zero
  padding (librosa >= 0.10's ``pad_mode="constant"``).
* **Power** spectrum ``|STFT|^2`` (librosa's default ``power=2``, which FlowSynth used), projected on
  64 mel bands of ``librosa.filters.mel`` (Slaney scale and area normalization) from 30 to 11,000 Hz.
* ``log(mel + 1e-3)`` (natural log).
* Exactly 80 frames. Frame ``t`` sees samples ``[t * 1024 - 1024, t * 1024 + 1024)``, so the 80 frames
  see the first 79 * 1024 + 1024 = 81,920 samples (3.715 s at 22,050 Hz); the rest of a 4 s render
  is not seen, as in FlowSynth. Shorter audio is zero-padded at the end and longer audio is cut to
  those 81,920 samples, so any length gives 80 frames, identical to librosa's first 80 frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowsynth.features.spectral import as_batch, mel_filterbank, stft_power

__all__ = ["LOG_EPS", "N_FFT", "N_FRAMES", "N_MELS", "SAMPLE_RATE", "LogMel", "log_mel", "mel_spectrogram"]

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 1024
N_MELS = 64
FMIN_HZ = 30.0
FMAX_HZ = 11000.0
N_FRAMES = 80
#: Added to the mel power before the log.
LOG_EPS = 1e-3


class LogMel(nn.Module):
    """Log-mel spectrogram ``[..., N] -> [..., n_mels, n_frames]``: the model input (see the module docstring).

    The mel filterbank is built once and kept as a (non-persistent) buffer, so the module follows
    ``.to(device)``. Differentiable: usable inside a loss.

    Args:
        sample_rate: rate (Hz) of the audio; the filterbank is built for it.
        n_fft, hop_length, n_mels, fmin_hz, fmax_hz, n_frames, eps: the protocol's values by default.

    >>> LogMel()(torch.zeros(3, 4 * 22050)).shape
    torch.Size([3, 64, 80])
    """

    mel_basis: Tensor

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        n_mels: int = N_MELS,
        fmin_hz: float = FMIN_HZ,
        fmax_hz: float = FMAX_HZ,
        n_frames: int = N_FRAMES,
        eps: float = LOG_EPS,
    ) -> None:
        super().__init__()
        if n_frames < 1 or hop_length < 1 or n_fft < 2:
            raise ValueError(f"need n_frames >= 1, hop_length >= 1, n_fft >= 2; got {n_frames}, {hop_length}, {n_fft}")
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.n_mels, self.n_frames, self.eps = int(n_mels), int(n_frames), float(eps)
        self.fmin_hz, self.fmax_hz = float(fmin_hz), float(fmax_hz)
        basis = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin_hz, self.fmax_hz)
        self.register_buffer("mel_basis", basis, persistent=False)

    @property
    def num_samples(self) -> int:
        """Samples the ``n_frames`` frames see; audio is padded or cut to this length (81,920 by default)."""
        return (self.n_frames - 1) * self.hop_length + self.n_fft // 2

    def fit_length(self, audio: Tensor) -> Tensor:
        """Zero-pads (at the end) or cuts ``audio [..., N]`` to :attr:`num_samples`."""
        missing = self.num_samples - audio.shape[-1]
        return nn.functional.pad(audio, (0, missing)) if missing > 0 else audio[..., : self.num_samples]

    def mel(self, audio: Tensor) -> Tensor:
        """Linear mel power ``[..., n_mels, n_frames]`` (before the log), FlowSynth's mel-SC/MSE space."""
        batch, lead = as_batch(audio)
        power = stft_power(self.fit_length(batch), self.n_fft, self.hop_length)[..., : self.n_frames]
        mel = torch.matmul(self.mel_basis.to(power), power)
        return mel.reshape(*lead, self.n_mels, self.n_frames)

    def forward(self, audio: Tensor) -> Tensor:
        """Log-mel ``log(mel + eps)`` of ``audio [..., N]`` as ``[..., n_mels, n_frames]``."""
        return torch.log(self.mel(audio) + self.eps)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"n_mels={self.n_mels}, fmin_hz={self.fmin_hz:g}, fmax_hz={self.fmax_hz:g}, n_frames={self.n_frames}"
        )


_MODULES: dict[tuple[int, torch.device], LogMel] = {}


def _module(sample_rate: int, audio: Tensor) -> LogMel:
    as_batch(audio)  # type and shape errors before anything else
    key = (int(sample_rate), audio.device)
    if key not in _MODULES:
        _MODULES[key] = LogMel(sample_rate).to(audio.device)
    return _MODULES[key]


def log_mel(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """The model input of ``audio [..., N]``: log-mel ``[..., 64, 80]`` (a cached :class:`LogMel`).

    >>> log_mel(torch.zeros(4 * 22050)).shape
    torch.Size([64, 80])
    """
    return _module(sample_rate, audio)(audio)


def mel_spectrogram(audio: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Linear mel power ``[..., 64, 80]`` of ``audio [..., N]``: :func:`log_mel` before the log.

    >>> float(mel_spectrogram(torch.zeros(1000)).abs().max())
    0.0
    """
    return _module(sample_rate, audio).mel(audio)
