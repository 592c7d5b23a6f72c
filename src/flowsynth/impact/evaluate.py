"""Measures of the generator: descriptor error (requested vs measured) and spectral distance to real impacts.

Descriptor error (PROTOCOL.md, impact generation) is ``|requested - measured|`` per descriptor, averaged over
the frames where the requested loudness is above -60 dB, in each descriptor's unit, except brightness (in
octaves, ``|log2(measured / requested)|``) and pitch (in semitones, only on frames whose requested
tone-likeness is at least 0.8, i.e. YIN's d' under 0.2: a pitch is defined only for periodic frames). Spectral distances are the protocol's SC, LSD, MFCC-L1 and MR-STFT
(:mod:`flowsynth.features.metrics`) between a real held-out impact and the sound generated from its curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from flowsynth.impact.dataset import ImpactDataset
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, DescriptorConfig, describe
from flowsynth.impact.model import normalize_curves

__all__ = [
    "ERROR_UNITS",
    "SPECTRAL_METRICS",
    "descriptor_errors",
    "error_table",
    "evaluate_requests",
    "nearest_neighbour",
    "spectral_distances",
    "summarize",
]

#: Unit of each descriptor's error.
ERROR_UNITS = {
    "loudness": "dB",
    "percussivity": "ratio",
    "noisiness": "ratio",
    "tone_likeness": "ratio",
    "richness": "octaves",
    "brightness": "octaves",
    "pitch": "semitones",
}
#: Spectral distances computed by :func:`spectral_distances`.
SPECTRAL_METRICS = ("sc", "lsd", "mfcc_l1", "mr_stft")
_ROW = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}
#: Tone-likeness from which a frame's pitch is scored (YIN's d' under 0.2: clearly periodic).
_TONAL = 0.8


def descriptor_errors(requested: np.ndarray, audio: np.ndarray, config: DescriptorConfig) -> dict[str, float]:
    """Per-descriptor error of a generated sound against the curves it was asked for (NaN: no frame counted).

    >>> config = DescriptorConfig()
    >>> tone = 0.5 * np.sin(2 * np.pi * 220.0 * np.arange(22050) / 22050)
    >>> errors = descriptor_errors(describe(tone, config), tone, config)
    >>> max(errors.values())
    0.0
    """
    measured = describe(audio, config)
    frames = min(measured.shape[1], requested.shape[1])
    req, got = requested[:, :frames].astype(np.float64), measured[:, :frames].astype(np.float64)
    active = req[_ROW["loudness"]] > -60.0
    tonal = active & (req[_ROW["tone_likeness"]] >= _TONAL)
    diff = np.abs(got - req)
    diff[_ROW["brightness"]] = np.abs(np.log2(got[_ROW["brightness"]] / req[_ROW["brightness"]]))
    diff[_ROW["pitch"]] = 12.0 * np.abs(np.log2(got[_ROW["pitch"]] / req[_ROW["pitch"]]))
    errors = {}
    for name, i in _ROW.items():
        mask = tonal if name == "pitch" else active
        errors[name] = float(diff[i, mask].mean()) if mask.any() else float("nan")
    return errors


def spectral_distances(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """The protocol's spectral distances per item between two batches [B, N] (``reference`` is real)."""
    from flowsynth.features import metrics

    x, y = torch.from_numpy(np.asarray(reference, np.float32)), torch.from_numpy(np.asarray(estimate, np.float32))
    return {
        "sc": metrics.spectral_convergence(x, y).numpy(),
        "lsd": metrics.log_spectral_distance(x, y).numpy(),
        "mfcc_l1": metrics.mfcc_l1(x, y, sample_rate).numpy(),
        "mr_stft": metrics.mr_stft(x, y).numpy(),
    }


def nearest_neighbour(train: ImpactDataset, curves: np.ndarray) -> int:
    """Index of the training clip whose normalized curves are closest (L2) to ``curves`` [7, T]."""
    bank = normalize_curves(torch.from_numpy(train.curves)).numpy()
    query = normalize_curves(torch.from_numpy(curves[None].astype(np.float32))).numpy()
    frames = min(bank.shape[-1], query.shape[-1])
    return int(np.argmin(((bank[..., :frames] - query[..., :frames]) ** 2).sum(axis=(1, 2))))


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and 95% confidence interval of finite values (NaNs dropped), with the count."""
    from flowsynth.features.metrics import mean_ci

    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    mean, low, high = mean_ci(data)
    return {"mean": mean, "low": low, "high": high, "n": int(data.size)}


def error_table(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Summaries per descriptor of a list of :func:`descriptor_errors` results."""
    return {name: summarize([row[name] for row in rows]) for name in DESCRIPTOR_NAMES}


def evaluate_requests(
    generate: Callable[[np.ndarray], np.ndarray], requests: Sequence[np.ndarray], config: DescriptorConfig
) -> dict[str, dict[str, float]]:
    """Descriptor error of ``generate`` over requested curves."""
    return error_table([descriptor_errors(curves, generate(curves), config) for curves in requests])
