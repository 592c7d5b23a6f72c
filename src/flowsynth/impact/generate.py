"""Generation: reference curves, curves edited by scalar controls, merges of two impacts, and the shipped model.

Controls are in [-1, 1] with 0 leaving the curve unchanged:

* ``richness``: spread in octaves times ``2 ** richness`` (half to double);
* ``noisiness``: moves toward 1 (``c > 0``: ``n + c (1 - n)``) or toward 0 (``c < 0``: ``n (1 + c)``), and
  tone-likeness the opposite way by the same rule: the two correlate at -0.75 over the training frames, so
  moving noisiness alone asks for sounds the data never had (and the generator barely responds);
* ``brightness``: centroid times ``2 ** (2 * brightness)`` (two octaves down to two up);
* ``pitch_semitones``: pitch times ``2 ** (semitones / 12)`` (any real number).

A merge interpolates two impacts' curves frame by frame: loudness in dB, ratios and richness linearly,
brightness and pitch on a log-frequency axis.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from flowsynth.impact._io import load_mono
from flowsynth.impact.dataset import DatasetSpec, cut_one_shot
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, DescriptorConfig, describe
from flowsynth.impact.model import ImpactGenerator

__all__ = [
    "Generator",
    "curves_of_audio",
    "default_generator",
    "edit_curves",
    "generate",
    "merge_curves",
    "reference_curves",
    "reference_names",
]

_ROW = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}
_ASSETS = ("assets", "impact")


class Generator(Protocol):
    """What generation needs of a generator: :class:`ImpactGenerator` or an exported one."""

    sample_rate: int
    hop_length: int

    def __call__(self, curves: Any, num_samples: int | None = None, seed: int = 0) -> Any: ...


def _check_control(name: str, value: float) -> float:
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [-1, 1] (0 leaves the sound unchanged), got {value}")
    return float(value)


def _toward(values: np.ndarray, control: float) -> np.ndarray:
    """Moves ratios toward 1 (``control > 0``) or toward 0 (``control < 0``) by the fraction ``|control|``."""
    return values + control * (1.0 - values) if control > 0 else values * (1.0 + control)


def edit_curves(
    curves: np.ndarray,
    richness: float = 0.0,
    noisiness: float = 0.0,
    brightness: float = 0.0,
    pitch_semitones: float = 0.0,
    sample_rate: int = 22050,
) -> np.ndarray:
    """Curves [7, T] changed by the scalar controls (see the module docstring); the input is not modified.

    >>> c = np.tile(np.array([[-20.0], [0.3], [0.5], [0.5], [1.0], [1000.0], [200.0]]), (1, 3))
    >>> e = edit_curves(c, richness=1.0, noisiness=0.5, brightness=-0.5, pitch_semitones=12.0)
    >>> [round(float(v), 2) for v in e[:, 0]]
    [-20.0, 0.3, 0.75, 0.25, 2.0, 500.0, 400.0]
    """
    out = np.array(curves, dtype=np.float32, copy=True)
    r, n, b = (
        _check_control(k, v) for k, v in (("richness", richness), ("noisiness", noisiness), ("brightness", brightness))
    )
    out[_ROW["richness"]] *= 2.0**r
    out[_ROW["noisiness"]] = _toward(out[_ROW["noisiness"]], n)
    out[_ROW["tone_likeness"]] = _toward(out[_ROW["tone_likeness"]], -n)
    out[_ROW["brightness"]] = np.clip(out[_ROW["brightness"]] * 2.0 ** (2.0 * b), 20.0, sample_rate / 2)
    out[_ROW["pitch"]] = np.clip(out[_ROW["pitch"]] * 2.0 ** (pitch_semitones / 12.0), 20.0, sample_rate / 2)
    return out


def merge_curves(a: np.ndarray, b: np.ndarray, degree: float) -> np.ndarray:
    """Interpolation of two impacts' curves [7, T]: ``degree`` 0 gives ``a``, 1 gives ``b``.

    The shorter curve is extended by repeating its last frame.

    >>> a = np.tile(np.array([[-40.0], [0.0], [0.0], [1.0], [1.0], [100.0], [100.0]]), (1, 2))
    >>> b = np.tile(np.array([[-20.0], [1.0], [1.0], [0.0], [2.0], [400.0], [400.0]]), (1, 2))
    >>> merge_curves(a, b, 0.5)[:, 0].round(2).tolist()
    [-30.0, 0.5, 0.5, 0.5, 1.5, 200.0, 200.0]
    """
    if not 0.0 <= degree <= 1.0:
        raise ValueError(f"degree must be in [0, 1] (0: first impact, 1: second), got {degree}")
    frames = max(a.shape[1], b.shape[1])
    a, b = (np.pad(c, ((0, 0), (0, frames - c.shape[1])), mode="edge") for c in (a, b))
    out = (1.0 - degree) * a + degree * b
    for name in ("brightness", "pitch"):
        i = _ROW[name]
        out[i] = 2.0 ** ((1.0 - degree) * np.log2(a[i]) + degree * np.log2(b[i]))
    return out.astype(np.float32)


@torch.no_grad()
def generate(model: Generator, curves: np.ndarray, num_samples: int | None = None, seed: int = 0) -> np.ndarray:
    """Audio [N] (float32) of one set of curves [7, T]; ``seed`` fixes the noise."""
    curves = np.asarray(curves, dtype=np.float32)
    if curves.ndim != 2 or curves.shape[0] != len(DESCRIPTOR_NAMES):
        raise ValueError(f"curves must have shape [{len(DESCRIPTOR_NAMES)}, frames], got {curves.shape}")
    audio = model(torch.from_numpy(curves)[None], num_samples, seed=seed)[0]
    return np.asarray(audio.numpy() if isinstance(audio, torch.Tensor) else audio, dtype=np.float32)


def curves_of_audio(audio: np.ndarray, spec: DatasetSpec | None = None) -> np.ndarray:
    """Curves of a recorded impact, cut and normalized exactly like the training clips."""
    spec = spec or DatasetSpec()
    clip = cut_one_shot(audio, spec)
    if clip is None:
        raise ValueError("the reference sound is silent (peak under -80 dBFS); give an audible impact")
    return describe(clip, DescriptorConfig(sample_rate=spec.sample_rate))


def _shipped(name: str) -> Path:
    path = Path(str(resources.files("flowsynth").joinpath(*_ASSETS, name)))
    if not path.is_file():
        raise FileNotFoundError(f"the package's {name} is missing from {path.parent}; reinstall flowsynth")
    return path


def reference_names() -> list[str]:
    """Names of the reference impacts shipped with the package (curves of held-out real recordings)."""
    with np.load(_shipped("references.npz")) as data:
        return [str(n) for n in data["names"]]


def reference_curves(reference: str, sample_rate: int = 22050) -> np.ndarray:
    """Curves [7, T] of a shipped reference (by name) or of an audio file (by path)."""
    path = Path(reference)
    if path.suffix.lower() in {".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3"} or path.exists():
        return curves_of_audio(load_mono(path, sample_rate), DatasetSpec(sample_rate=sample_rate))
    with np.load(_shipped("references.npz")) as data:
        names = [str(n) for n in data["names"]]
        if reference not in names:
            raise ValueError(f"unknown impact {reference!r}: give an audio file or one of {', '.join(names)}")
        return np.array(data["curves"][names.index(reference)], dtype=np.float32)


def default_generator() -> ImpactGenerator:
    """The generator shipped with the package (eval mode)."""
    from flowsynth.impact.train import load_generator

    model, _ = load_generator(_shipped("generator.pt"))
    return model
