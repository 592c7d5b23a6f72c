"""The preset map: every preset of a dataset or bank placed in 2-D from its latent, with descriptors.

Presets go to the latent space through the regression flow's parameters -> latent direction
(:meth:`SoundSpace.to_latent`, exact for ``flow_reg`` / ``flow_dis``, no rendering), then to 2-D by a
principal component analysis of those latents (axes signed so that each one's largest loading is
positive, so the same presets always give the same picture). Any latent (the current sound) can
be projected onto the same plane.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowsynth.control.descriptors import transform
from flowsynth.control.space import SoundSpace

__all__ = ["PresetBank", "PresetMap", "preset_map"]

_UNITS = {"centroid_hz": "log2 Hz", "loudness_db": "dB", "attack_s": "s", "effective_duration_s": "s"}


@dataclass
class PresetBank:
    """Named presets: parameters ``[n, num_params]`` with, optionally, descriptors ``{name: [n]}``."""

    names: list[str]
    params: Tensor
    descriptors: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        self.params = torch.as_tensor(self.params, dtype=torch.float32)
        if self.params.dim() != 2 or len(self.params) != len(self.names) or len(self.names) == 0:
            raise ValueError(
                f"a bank needs n >= 1 names and params [n, d]; got {len(self.names)} and {list(self.params.shape)}"
            )

    def __len__(self) -> int:
        return len(self.names)

    def find(self, key: str | int) -> int:
        """The row of a preset given by index (an int or digits) or by name (exact, then case-insensitive)."""
        if (isinstance(key, int) and not isinstance(key, bool)) or (isinstance(key, str) and key.strip().isdigit()):
            index = int(key)
            if not 0 <= index < len(self.names):
                raise ValueError(f"preset index {index} is out of range: the bank has {len(self.names)} presets")
            return index
        if not isinstance(key, str):
            raise ValueError(f"a preset is given by index or name, got {key!r}")
        if key in self.names:
            return self.names.index(key)
        lowered = [n.lower() for n in self.names]
        if key.lower() in lowered:
            return lowered.index(key.lower())
        raise ValueError(f"no preset named {key!r} in the bank ({len(self.names)} presets, e.g. {self.names[:3]})")

    @classmethod
    def from_dataset(
        cls, path: str | os.PathLike[str], split: str = "all", limit: int | None = None, seed: int = 0
    ) -> PresetBank:
        """The sounds of a dataset split (a seeded subset of ``limit`` rows when given) as a bank."""
        from flowsynth.data import DatasetFile

        dataset = DatasetFile(Path(path))
        rows = dataset.indices(split)
        pick = np.arange(len(rows))
        if limit is not None and limit < len(rows):
            pick = np.sort(torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:limit].numpy())
        try:
            names = dataset.strings("preset_names", split)
        except (KeyError, ValueError, OSError):
            names = [""] * len(rows)
        labels = [f"{names[i]} #{rows[i]}" if names[i] else f"#{rows[i]}" for i in pick]
        params = torch.from_numpy(dataset.read("params", split)[pick])
        descriptors = {
            n: torch.from_numpy(dataset.read(f"descriptors/{n}", split)[pick]) for n in dataset.descriptor_names()
        }
        return cls(labels, params, descriptors or None)

    @classmethod
    def from_presets(cls, space: SoundSpace, source: str) -> PresetBank:
        """A synth's factory presets (``"factory"``) or a JSON preset file, as a bank."""
        from flowsynth.synth.presets import load_presets

        presets = load_presets(space.synth, source)
        return cls([p.name or f"#{i}" for i, p in enumerate(presets)], torch.stack([p.vector for p in presets]))


@dataclass
class PresetMap:
    """Presets in 2-D: their latents ``[n, L]``, positions ``xy [n, 2]`` and the projection."""

    bank: PresetBank
    latents: Tensor
    xy: Tensor
    mean: Tensor
    axes: Tensor
    explained: tuple[float, float]

    def project(self, z: Tensor) -> Tensor:
        """Positions ``[B, 2]`` of latents ``[B, L]`` on the map."""
        return (z.reshape(-1, self.mean.shape[0]).float() - self.mean) @ self.axes.T

    def to_json(self) -> dict:
        """Points with names and descriptors, for the web page and files."""
        names = list(self.bank.descriptors or {})
        points = []
        for i, name in enumerate(self.bank.names):
            point = {"i": i, "name": name, "x": round(float(self.xy[i, 0]), 5), "y": round(float(self.xy[i, 1]), 5)}
            for key in names:
                point[key] = round(float(self.bank.descriptors[key][i]), 6)  # type: ignore[index]
            points.append(point)
        return {"points": points, "explained": list(self.explained), "descriptors": names}

    def save_png(
        self, path: str | os.PathLike[str], color_by: str = "centroid_hz", labels: int = 12, title: str = ""
    ) -> Path:
        """Writes the map as a PNG: one dot per preset, coloured by a descriptor, a few names written."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from flowsynth.plots import save_figure

        figure, ax = plt.subplots(figsize=(8, 6.5))
        xy = self.xy.numpy()
        colours = self._colours(color_by)
        cmap = "viridis" if colours is not None else None
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=colours, cmap=cmap, s=14, alpha=0.85, linewidths=0)
        if colours is not None:
            figure.colorbar(scatter, ax=ax, label=f"{color_by} ({_UNITS.get(color_by, 'value')})")
        for i in _label_rows(xy, labels):
            ax.annotate(self.bank.names[i], xy[i], fontsize=7, alpha=0.8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"latent PC 1 ({100 * self.explained[0]:.0f}% of the variance)")
        ax.set_ylabel(f"latent PC 2 ({100 * self.explained[1]:.0f}% of the variance)")
        ax.set_title(title or f"{len(self.bank)} presets")
        figure.tight_layout()
        return save_figure(figure, path, dpi=110)

    def _colours(self, color_by: str) -> np.ndarray | None:
        if not self.bank.descriptors:
            return None
        if color_by not in self.bank.descriptors:
            raise ValueError(f"no descriptor {color_by!r} to colour by; known: {', '.join(self.bank.descriptors)}")
        return transform(color_by, self.bank.descriptors[color_by]).numpy()


def _label_rows(xy: np.ndarray, count: int) -> list[int]:
    """Rows spread over the map (farthest-point order from the centre), for name labels."""
    if count <= 0 or len(xy) == 0:
        return []
    chosen = [int(np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1)))]
    distance = np.linalg.norm(xy - xy[chosen[0]], axis=1)
    while len(chosen) < min(count, len(xy)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(xy - xy[chosen[-1]], axis=1))
    return chosen


def preset_map(space: SoundSpace, bank: PresetBank, latents: Tensor | None = None) -> PresetMap:
    """Places every preset of ``bank`` on a 2-D map of ``space``'s latent space (see the module docstring).

    Arguments:
        space: The model.
        bank: The presets.
        latents: Their latents ``[n, latent_size]`` when already known (else :meth:`SoundSpace.to_latent`).
    """
    if latents is None:
        latents = torch.cat([space.to_latent(bank.params[i : i + 512]) for i in range(0, len(bank), 512)])
    elif latents.shape != (len(bank), space.latent_size):
        raise ValueError(f"latents must be [{len(bank)}, {space.latent_size}], got {list(latents.shape)}")
    mean = latents.mean(0)
    centred = latents - mean
    if len(latents) < 2:
        axes = torch.eye(2, latents.shape[1])
        explained = (1.0, 0.0)
    else:
        _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
        axes = vh[:2]
        signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
        axes = axes * signs
        variance = singular.square()
        explained = tuple(float(v) for v in (variance[:2] / variance.sum().clamp_min(1e-12)))  # type: ignore[assignment]
    return PresetMap(bank, latents, centred @ axes.T, mean, axes, explained)  # type: ignore[arg-type]
