"""Audio distance from many candidate renders to one target, with the target's spectra computed once.

The distances are PROTOCOL.md's MR-STFT and MFCC-L1 (equal to :func:`flowsynth.features.metrics.mr_stft`
and :func:`~flowsynth.features.metrics.mfcc_l1`), measured after **level matching**: each candidate is
scaled to the target's RMS level (by at most :data:`MAX_GAIN_DB`), because the target was normalized
and a synth's output level is a volume knob, not part of the sound. MR-STFT is differentiable, so it
is also the loss of gradient refinement (optionally plus the L1 distance of the log-mel model input).
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowsynth.features.logmel import log_mel
from flowsynth.features.metrics import MR_EPS, MR_FFT_SIZES, MR_HOP_SIZES, MR_WIN_LENGTHS, mfcc
from flowsynth.features.spectral import power_of, stft

__all__ = ["MATCH_METRICS", "MAX_GAIN_DB", "TargetDistance"]

#: Distances a match can be ranked by.
MATCH_METRICS = ("mr_stft", "mfcc_l1")
#: Largest gain applied to a candidate to reach the target's level, in dB.
MAX_GAIN_DB = 60.0
#: Candidates compared at once (bounds the memory of the finest STFT).
CHUNK = 8


def _magnitude(audio: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    return power_of(stft(audio, n_fft, hop, win, pad_mode="reflect")).clamp_min(MR_EPS).sqrt()


def _sc(reference: Tensor, estimate: Tensor) -> Tensor:
    distance = torch.linalg.vector_norm(reference - estimate, dim=(-2, -1))
    return distance / torch.linalg.vector_norm(reference, dim=(-2, -1)).clamp_min(1e-12)


class TargetDistance:
    """Distances of candidate renders ``[B, N]`` to one target ``[N]``.

    Arguments:
        target: The target's samples ``[N]``.
        sample_rate: Their rate, in Hz.
        metric: The ranking distance, ``"mr_stft"`` or ``"mfcc_l1"``.
        match_level: Scale each candidate to the target's RMS level before comparing.

    Example:
        >>> t = torch.arange(8192) / 22050
        >>> distance = TargetDistance(torch.sin(2 * torch.pi * 440 * t), 22050)
        >>> d = distance(torch.stack([0.1 * torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 660 * t)]))
        >>> bool(d[0] < 0.01 < d[1])
        True
    """

    def __init__(self, target: Tensor, sample_rate: int, metric: str = "mr_stft", match_level: bool = True) -> None:
        if metric not in MATCH_METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(MATCH_METRICS)}")
        if target.dim() != 1 or len(target) <= max(MR_FFT_SIZES) // 2:
            raise ValueError(f"target must be mono samples [N] with N > {max(MR_FFT_SIZES) // 2}")
        self.target = target.detach().float()
        self.sample_rate, self.metric, self.match_level = int(sample_rate), metric, match_level
        self._rms = self.target.square().mean().sqrt()
        self._magnitudes: list[Tensor] | None = None
        self._mfcc: Tensor | None = None
        self._log_mel: Tensor | None = None

    def gain(self, audio: Tensor) -> Tensor:
        """Gain ``[B]`` that brings each candidate to the target's RMS level (1 when level matching is off)."""
        if not self.match_level:
            return audio.new_ones(audio.shape[0])
        floor = self._rms * 10.0 ** (-MAX_GAIN_DB / 20.0)
        return self._rms / audio.square().mean(dim=-1).sqrt().clamp_min(float(floor))

    def matched(self, audio: Tensor) -> Tensor:
        """Candidates ``[B, N]`` at the target's level."""
        return audio * self.gain(audio)[:, None]

    def mr_stft(self, audio: Tensor) -> Tensor:
        """MR-STFT ``[B]`` of level-matched candidates to the target (differentiable)."""
        if self._magnitudes is None:
            self._magnitudes = [_magnitude(self.target[None], *r) for r in self._resolutions()]
        estimate = self.matched(audio)
        total = estimate.new_zeros(estimate.shape[0])
        for reference, resolution in zip(self._magnitudes, self._resolutions(), strict=True):
            magnitude = _magnitude(estimate, *resolution)
            total = total + _sc(reference, magnitude) + (magnitude.log() - reference.log()).abs().mean(dim=(-2, -1))
        return total / len(MR_FFT_SIZES)

    @staticmethod
    def _resolutions() -> list[tuple[int, int, int]]:
        return list(zip(MR_FFT_SIZES, MR_HOP_SIZES, MR_WIN_LENGTHS, strict=True))

    def mfcc_l1(self, audio: Tensor) -> Tensor:
        """MFCC-L1 ``[B]`` (c0 dropped) of level-matched candidates to the target."""
        if self._mfcc is None:
            self._mfcc = mfcc(self.target[None], self.sample_rate)[:, 1:]
        return (mfcc(self.matched(audio), self.sample_rate)[:, 1:] - self._mfcc).abs().mean(dim=(-2, -1))

    def log_mel_l1(self, audio: Tensor) -> Tensor:
        """Mean absolute difference ``[B]`` of the log-mel model input of level-matched candidates and target."""
        if self._log_mel is None:
            self._log_mel = log_mel(self.target[None], self.sample_rate)
        return (log_mel(self.matched(audio), self.sample_rate) - self._log_mel).abs().mean(dim=(-2, -1))

    def loss(self, audio: Tensor, mel_weight: float = 0.0) -> Tensor:
        """Refinement loss ``[B]``: MR-STFT plus ``mel_weight`` times the log-mel L1 (differentiable)."""
        loss = self.mr_stft(audio)
        return loss + mel_weight * self.log_mel_l1(audio) if mel_weight else loss

    def __call__(self, audio: Tensor) -> Tensor:
        """The ranking distance ``[B]`` of candidates, without gradients; a failed (NaN) render gets +inf."""
        audio = audio.detach()
        ok = torch.isfinite(audio).all(dim=-1)
        out = torch.full((audio.shape[0],), float("inf"))
        compute = self.mr_stft if self.metric == "mr_stft" else self.mfcc_l1
        with torch.no_grad():
            for first in range(0, audio.shape[0], CHUNK):
                rows = torch.arange(first, min(first + CHUNK, audio.shape[0]))
                rows = rows[ok[rows]]
                if len(rows):
                    out[rows] = compute(audio[rows].float()).float()
        return torch.where(torch.isnan(out), float("inf"), out)
