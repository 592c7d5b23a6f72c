"""Interpolation between two presets: a path in latent space, decoded to parameters at each step.

Two latent paths, both from ``z_a`` to ``z_b`` (``z = params_to_latent(params)``, exact for the flow models,
so both ends are the presets themselves):

* ``"straight"``: ``z(t) = (1 - t) z_a + t z_b``.
* ``"geodesic"``: the straight line bent where the model says the sound changes unevenly: the inner
  latents minimize the energy of the path of decoded log-mel spectrograms (mean squared step between
  neighbours, in the model's normalized feature units: short, evenly spaced steps in sound) plus
  ``param_weight`` times the mean squared second difference of the decoded parameters (no sudden turns
  in the synth's controls), by Adam from the straight line (:func:`bend`). It needs only the model's
  decoder, so it works for any synth; it costs a few seconds of one core for 9 steps.

Either is compared with the naive path, the straight line between the two parameter vectors, by
``PROTOCOL.md``'s smoothness: the RMS of the second difference of each normalized descriptor along the
path (9 steps by default). Both paths are normalized with one
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
    "PATH_METHODS",
    "InterpolationPath",
    "bend",
    "compare_paths",
    "latent_path",
    "latent_path_between",
    "linear_path",
    "save_comparison_plot",
    "smoothness",
]


#: Latent path shapes: see the module docstring.
PATH_METHODS = ("straight", "geodesic")


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


def latent_path(
    space: SoundSpace, params_a: Tensor, params_b: Tensor, steps: int = 9, method: str = "straight"
) -> InterpolationPath:
    """The latent path (``method``: ``"straight"`` or ``"geodesic"``) between two presets, decoded to
    parameters at each step."""
    a, b = _endpoints(params_a, params_b)
    z = space.to_latent(torch.cat([a, b]))
    return latent_path_between(space, z[0], z[1], steps, method)


def latent_path_between(
    space: SoundSpace, z_a: Tensor, z_b: Tensor, steps: int = 9, method: str = "straight"
) -> InterpolationPath:
    """The path between two latents (e.g. of two sounds), decoded to parameters at each step."""
    if method not in PATH_METHODS:
        raise ValueError(f"unknown path method {method!r}; choose from {', '.join(PATH_METHODS)}")
    t = _positions(steps)
    latents = (1 - t[:, None]) * z_a.reshape(1, -1) + t[:, None] * z_b.reshape(1, -1)
    if method == "geodesic":
        latents = bend(space, latents)
    return InterpolationPath("latent", t, space.to_params(latents), latents)


def bend(
    space: SoundSpace, latents: Tensor, iterations: int = 300, lr: float = 0.02, param_weight: float = 1.0
) -> Tensor:
    """The inner points of a latent path ``[steps, latent_size]`` moved to minimize the decoded log-mel
    path's energy plus ``param_weight`` x the decoded parameters' mean squared second difference (see the
    module docstring); the ends stay. Deterministic (Adam from the given path, ``iterations`` steps).
    """
    from flowsynth.matching.optim import Adam

    latents = space.check_latent(latents)
    if len(latents) < 3:
        return latents
    model = space.model
    inner = latents[1:-1].clone().requires_grad_(True)
    optimizer = Adam(inner, lr=lr)
    with torch.enable_grad():
        for _ in range(iterations):
            z = torch.cat([latents[:1], inner, latents[-1:]])
            mel = model.normalize(model.decode(z)).flatten(1)
            energy = mel.diff(dim=0).square().mean()
            if param_weight:
                energy = energy + param_weight * model.latent_to_params(z).diff(n=2, dim=0).square().mean()
            (inner.grad,) = torch.autograd.grad(energy, inner)
            optimizer.step()
    return torch.cat([latents[:1], inner.detach(), latents[-1:]])


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
    method: str = "straight",
    with_audio: bool = False,
) -> dict:
    """Renders the latent path (``method``) and the naive path and compares their smoothness per descriptor.

    ``with_audio`` adds ``"audio": {kind: sounds [steps, samples]}`` (tensors, not JSON) to the report.

    Returns:
        ``{"steps", "method", "descriptors": [names], "latent": {name: rms}, "linear": {name: rms},
        "latent_mean", "linear_mean", "smoother_on": number of descriptors where the latent path is
        smoother, "endpoint_error": largest parameter gap between the two paths' ends (0 when the
        presets' latents are exact; large when the model cannot reach a preset, and the comparison then
        says little), "paths": {kind: {"params": [[...]], "descriptors": {name: [...]}}}}``.
    """
    paths = [latent_path(space, params_a, params_b, steps, method), linear_path(params_a, params_b, steps)]
    audio = space.render(torch.cat([p.params for p in paths]), config=config)
    found = space.describe_audio(audio, config)
    ruler = scale or DescriptorScale.fit(found)
    norm = ruler.normalize(found).reshape(2, steps, len(ruler.names))
    rms = {p.kind: smoothness(norm[i]) for i, p in enumerate(paths)}
    report: dict = {"steps": steps, "method": method, "descriptors": list(ruler.names)}
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
    if with_audio:
        report["audio"] = {p.kind: audio[i * steps : (i + 1) * steps] for i, p in enumerate(paths)}
    return report


def save_comparison_plot(path: str | os.PathLike[str], report: dict, title: str = "") -> Path:
    """Writes a PNG of each descriptor along the latent and the naive path (a report of :func:`compare_paths`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowsynth.plots import save_figure

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
    return save_figure(figure, path)
