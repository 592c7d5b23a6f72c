"""Seeded sampling of parameter vectors: uniform, or around a bank of presets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowsynth.synth.presets import Preset

__all__ = ["SampledParams", "sample_params"]


@dataclass(frozen=True)
class SampledParams:
    """Parameter vectors ``[n, d]`` with, per row, the preset they come from (or ``""``)."""

    params: Tensor
    preset_names: list[str]
    tags: list[str]


def sample_params(
    n: int,
    dim: int,
    seed: int,
    presets: list[Preset] | None = None,
    spread: float = 0.1,
    random_fraction: float = 0.2,
) -> SampledParams:
    """Samples ``n`` normalized parameter vectors of size ``dim``.

    Without presets every vector is uniform in [0, 1]. With presets, each preset
    is included once as it is, the rest are Gaussian perturbations (standard
    deviation ``spread``, clipped to [0, 1]) of presets chosen in turn, and a
    ``random_fraction`` of the vectors stays uniform.

    Example:
        >>> sample_params(3, 2, seed=0).params.shape
        torch.Size([3, 2])
        >>> torch.equal(sample_params(5, 4, seed=1).params, sample_params(5, 4, seed=1).params)
        True
    """
    if n < 1 or dim < 1:
        raise ValueError(f"need n >= 1 and dim >= 1, got n={n}, dim={dim}")
    generator = torch.Generator().manual_seed(seed)
    params = torch.rand(n, dim, generator=generator)
    names, tags = [""] * n, [""] * n
    if not presets:
        return SampledParams(params, names, tags)
    if not 0.0 <= random_fraction < 1.0 or spread < 0:
        raise ValueError(f"need 0 <= random_fraction < 1 and spread >= 0, got {random_fraction}, {spread}")
    bank = torch.stack([p.vector for p in presets]).float()
    if bank.shape[1] != dim:
        raise ValueError(f"presets have {bank.shape[1]} parameters, the synth learns {dim}")
    num_around = n - round(n * random_fraction)
    which = torch.arange(num_around) % len(presets)
    noise = torch.randn(num_around, dim, generator=generator) * spread
    noise[: min(len(presets), num_around)] = 0.0
    params[:num_around] = (bank[which] + noise).clamp(0.0, 1.0)
    for row, index in enumerate(which.tolist()):
        names[row] = presets[index].name
        tags[row] = ",".join(presets[index].tags)
    return SampledParams(params, names, tags)
