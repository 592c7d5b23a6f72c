"""Descriptors as a ruler for controls: transforms, normalization, words for directions, rank correlation.

Control measurements compare descriptors of different units (Hz, dB, seconds, ratios), so each is
put on one scale first: the spectral centroid in octaves (``log2`` of Hz, floored at 20 Hz), the
others as they are; then every descriptor is centred and divided by its standard deviation over a
reference set of sounds (:class:`DescriptorScale`). "One unit" is one reference standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from flowsynth.features import DESCRIPTORS

__all__ = ["DIRECTION_WORDS", "DescriptorScale", "describe_direction", "spearman", "transform"]

#: What turning a knob that raises (first) or lowers (second) each descriptor does to the sound.
DIRECTION_WORDS: dict[str, tuple[str, str]] = {
    "centroid_hz": ("brighter", "darker"),
    "flatness": ("noisier", "more tonal"),
    "loudness_db": ("louder", "quieter"),
    "flux": ("more motion", "more static"),
    "attack_s": ("slower attack", "sharper attack"),
    "effective_duration_s": ("longer", "shorter"),
    "percussiveness": ("more percussive", "more sustained"),
    "harmonicity": ("more harmonic", "less harmonic"),
}

_LOG_FLOOR_HZ = 20.0
_MIN_SCALE = 1e-6


def transform(name: str, values: Tensor) -> Tensor:
    """A descriptor on the scale controls compare it on: the centroid in octaves, the others unchanged.

    >>> transform("centroid_hz", torch.tensor([440.0, 880.0])).diff().item()
    1.0
    """
    values = values.double()
    if name == "centroid_hz":
        return torch.log2(values.clamp_min(_LOG_FLOOR_HZ))
    return values


@dataclass(frozen=True)
class DescriptorScale:
    """Centre and spread of each (transformed) descriptor over a reference set of sounds.

    Arguments:
        names: Descriptor names, in column order.
        center: Mean of each transformed descriptor.
        scale: Standard deviation of each (at least 1e-6).

    Example:
        >>> scale = DescriptorScale.fit({"loudness_db": torch.tensor([-20.0, -10.0, -30.0])})
        >>> scale.normalize({"loudness_db": torch.tensor([-10.0])}).tolist()
        [[1.0]]
    """

    names: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, values: Mapping[str, Tensor]) -> DescriptorScale:
        """Fits the scale on descriptor values ``{name: [n]}`` (NaN rows are left out)."""
        names = tuple(name for name in DESCRIPTORS if name in values) or tuple(values)
        centers, scales = [], []
        for name in names:
            column = transform(name, values[name].reshape(-1))
            column = column[torch.isfinite(column)]
            if len(column) < 2:
                raise ValueError(f"need at least 2 finite values of {name} to fit a descriptor scale")
            centers.append(float(column.mean()))
            scales.append(max(float(column.std()), _MIN_SCALE))
        return cls(names, tuple(centers), tuple(scales))

    def normalize(self, values: Mapping[str, Tensor]) -> Tensor:
        """Normalized descriptors ``[..., len(names)]`` (float64) of ``{name: [...]}``."""
        missing = [name for name in self.names if name not in values]
        if missing:
            raise ValueError(f"descriptor values lack {', '.join(missing)}")
        columns = [
            (transform(n, values[n]) - c) / s for n, c, s in zip(self.names, self.center, self.scale, strict=True)
        ]
        return torch.stack(columns, dim=-1)

    def to_dict(self) -> dict:
        """A JSON-ready form (:meth:`from_dict` reads it back)."""
        return {"names": list(self.names), "center": list(self.center), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: Mapping) -> DescriptorScale:
        return cls(tuple(data["names"]), tuple(map(float, data["center"])), tuple(map(float, data["scale"])))


def describe_direction(effects: Mapping[str, float], share: float = 0.5) -> tuple[str, str]:
    """A name ``"up / down"`` and a short label for a control from its signed effect on each descriptor.

    The name comes from the descriptor it moves most; the label adds the next ones whose effect is at
    least ``share`` of the largest.

    >>> describe_direction({"centroid_hz": -0.8, "loudness_db": 0.5, "flux": 0.1})
    ('darker / brighter', 'darker, louder')
    """
    ranked = sorted((name for name in effects if name in DIRECTION_WORDS), key=lambda n: -abs(effects[n]))
    if not ranked or not math.isfinite(effects[ranked[0]]) or effects[ranked[0]] == 0:
        return "no audible change", "no audible change"
    top = abs(effects[ranked[0]])
    words = [_word(name, effects[name]) for name in ranked if abs(effects[name]) >= share * top]
    up, down = DIRECTION_WORDS[ranked[0]]
    name = f"{up} / {down}" if effects[ranked[0]] > 0 else f"{down} / {up}"
    return name, ", ".join(words[:3])


def _word(name: str, effect: float) -> str:
    up, down = DIRECTION_WORDS[name]
    return up if effect > 0 else down


def spearman(x: Sequence[float] | Tensor, y: Sequence[float] | Tensor) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant.

    >>> spearman([1, 2, 3, 4], [10, 20, 15, 40])
    0.8
    """
    a, b = _ranks(torch.as_tensor(x, dtype=torch.float64)), _ranks(torch.as_tensor(y, dtype=torch.float64))
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"spearman needs two sequences of the same length >= 2, got {len(a)} and {len(b)}")
    a, b = a - a.mean(), b - b.mean()
    norm = float(a.norm() * b.norm())
    return round(float((a * b).sum()) / norm, 12) if norm > 0 else 0.0


def _ranks(values: Tensor) -> Tensor:
    order = torch.argsort(values, stable=True)
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(len(values), dtype=torch.float64)
    for value in torch.unique(values):
        tied = values == value
        if int(tied.sum()) > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks
