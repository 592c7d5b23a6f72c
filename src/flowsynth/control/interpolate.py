"""Interpolation between two presets: a straight path in latent space, decoded to parameters at each step.

The latent path ``z(t) = (1 - t) z_a + t z_b`` (with ``z = params_to_latent(params)``, exact for the flow
models, so both ends are the presets themselves) is compared with the naive path, the straight line
between the two parameter vectors, by ``PROTOCOL.md``'s smoothness: the RMS of the second difference
of each normalized descriptor along the path (9 steps by default). Both paths are normalized with one
:class:`~flowsynth.control.descriptors.DescriptorScale` (a dataset's when given, else fitted on the
sounds of both paths), so they are measured with the same ruler; lower is smoother.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.control.descriptors import DescriptorScale
from flowsynth.control.space import SoundSpace
from flowsynth.synth import RenderConfig

__all__ = [
    "InterpolationPath",
    "compare_paths",
    "latent_path",
    "latent_path_between",
    "linear_path",
    "save_comparison_plot",
    "smoothness",
]


@dataclass(frozen=True)
class InterpolationPath:
    """Parameters ``[steps, num_params]`` along a path at positions ``t [steps]`` (and latents, if any)."""

    kind: str
    t: Tensor
    params: Tensor
    latents: Tensor | None = None


def _positions(steps: int) -> Tensor:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 3:
        raise ValueError(f"an interpolation path needs an integer number of steps >= 3, got {steps!r}")
    return torch.linspace(0.0, 1.0, steps)


def _endpoints(params_a: Tensor, params_b: Tensor) -> tuple[Tensor, Tensor]:
    a, b = (torch.as_tensor(p, dtype=torch.float32).reshape(1, -1) for p in (params_a, params_b))
    if a.shape != b.shape:
        raise ValueError(f"the two presets have {a.shape[1]} and {b.shape[1]} parameters")
    return a, b


def linear_path(params_a: Tensor, params_b: Tensor, steps: int = 9) -> InterpolationPath:
    """The naive path: straight between the two parameter vectors.

    >>> linear_path(torch.zeros(2), torch.ones(2), steps=3).params[:, 0].tolist()
    [0.0, 0.5, 1.0]
    """
    t = _positions(steps)
    a, b = _endpoints(params_a, params_b)
    return InterpolationPath("linear", t, (1 - t[:, None]) * a + t[:, None] * b)


def latent_path(space: SoundSpace, params_a: Tensor, params_b: Tensor, steps: int = 9) -> InterpolationPath:
    """The latent path between two presets, decoded to parameters at each step."""
    t = _positions(steps)
    a, b = _endpoints(params_a, params_b)
    z = space.to_latent(torch.cat([a, b]))
    latents = (1 - t[:, None]) * z[0] + t[:, None] * z[1]
    return InterpolationPath("latent", t, space.to_params(latents), latents)


def latent_path_between(space: SoundSpace, z_a: Tensor, z_b: Tensor, steps: int = 9) -> InterpolationPath:
    """The path between two latents (e.g. of two sounds), decoded to parameters at each step."""
    t = _positions(steps)
    latents = (1 - t[:, None]) * z_a.reshape(1, -1) + t[:, None] * z_b.reshape(1, -1)
    return InterpolationPath("latent", t, space.to_params(latents), latents)


def smoothness(normalized: Tensor) -> Tensor:
    """RMS of the second difference along a path of normalized descriptors ``[steps, K]`` -> ``[K]``.

    >>> smoothness(torch.tensor([[0.0], [1.0], [2.0], [3.0]])).tolist()
    [0.0]
    >>> smoothness(torch.tensor([[0.0], [1.0], [0.0]])).tolist()
    [2.0]
    """
    if normalized.dim() != 2 or len(normalized) < 3:
        raise ValueError(f"smoothness needs descriptors [steps >= 3, K], got {list(normalized.shape)}")
    return normalized.diff(n=2, dim=0).square().mean(0).sqrt()


def compare_paths(
    space: SoundSpace,
    params_a: Tensor,
    params_b: Tensor,
    steps: int = 9,
    scale: DescriptorScale | None = None,
    config: RenderConfig | None = None,
) -> dict:
    """Renders the latent and the naive path and compares their smoothness per descriptor.

    Returns:
        ``{"steps", "descriptors": [names], "latent": {name: rms}, "linear": {name: rms},
        "latent_mean", "linear_mean", "smoother_on": number of descriptors where the latent path is
        smoother, "endpoint_error": largest parameter gap between the two paths' ends (0 when the
        presets' latents are exact; large when the model cannot reach a preset, and the comparison then
        says little), "paths": {kind: {"params": [[...]], "descriptors": {name: [...]}}}}``.
    """
    paths = [latent_path(space, params_a, params_b, steps), linear_path(params_a, params_b, steps)]
    found = space.describe(torch.cat([p.params for p in paths]), config)
    ruler = scale or DescriptorScale.fit(found)
    norm = ruler.normalize(found).reshape(2, steps, len(ruler.names))
    rms = {p.kind: smoothness(norm[i]) for i, p in enumerate(paths)}
    report: dict = {"steps": steps, "descriptors": list(ruler.names)}
    for kind, values in rms.items():
        report[kind] = {n: round(float(v), 6) for n, v in zip(ruler.names, values, strict=True)}
        report[f"{kind}_mean"] = round(float(values.nanmean()), 6)
    report["smoother_on"] = int((rms["latent"] < rms["linear"]).sum())
    ends = paths[0].params[[0, -1]] - paths[1].params[[0, -1]]
    report["endpoint_error"] = round(float(ends.abs().max()), 6)
    report["paths"] = {
        p.kind: {
            "params": p.params.tolist(),
            "descriptors": {n: found[n].reshape(2, steps)[i].tolist() for n in ruler.names},
        }
        for i, p in enumerate(paths)
    }
    return report


def save_comparison_plot(path: str | os.PathLike[str], report: dict, title: str = "") -> Path:
    """Writes a PNG of each descriptor along the latent and the naive path (a report of :func:`compare_paths`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report["descriptors"]
    columns = 4
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    t = torch.linspace(0, 1, report["steps"]).tolist()
    for ax, name in zip(axes.flat, names, strict=False):
        for kind, style in (("latent", "-o"), ("linear", "--s")):
            label = f"{kind} (RMS d2 {report[kind][name]:.3f})"
            ax.plot(t, report["paths"][kind]["descriptors"][name], style, markersize=3, label=label)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    figure.suptitle(title or f"latent path smoother on {report['smoother_on']} of {len(names)} descriptors")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, out)
    return out
