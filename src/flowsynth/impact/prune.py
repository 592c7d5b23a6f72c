"""Structured pruning of the impact generator: whole channels removed, for lottery-ticket rewinding.

Channels are ranked by the L2 norms of their weights in a trained generator; a pruned generator is a
smaller :class:`~flowsynth.impact.model.ImpactGenerator` (fewer hidden units, harmonics, noise bands and impulse
response taps, optionally a noise branch with half the frames: the synthesis shrinks with the network) whose weights
are cut out of any generator of the parent's structure: the trained one (plain pruning) or an early
checkpoint of the same run (rewinding, Frankle et al. 2020), which is then retrained. Iterating
prune -> rewind -> retrain composes :class:`Channels` so they always index the original generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from flowsynth.impact.model import ImpactGenerator

__all__ = ["Channels", "all_channels", "compose", "cut", "even_bands", "select_channels"]


@dataclass(frozen=True)
class Channels:
    """Kept indices of each layer: convolution outputs, GRU units, MLP units, harmonics, noise bands, IR taps."""

    conv: np.ndarray
    gru: np.ndarray
    mlp: np.ndarray
    harmonics: np.ndarray
    bands: np.ndarray
    ir: np.ndarray

    @property
    def hidden_size(self) -> int:
        return len(self.gru)


def all_channels(model: ImpactGenerator) -> Channels:
    """Every channel of a generator (the identity selection)."""
    hidden, harmonics = int(model.kwargs["hidden_size"]), int(model.kwargs["num_harmonics"])
    rows, taps = model.noise_head.out_features, int(model.kwargs["ir_length"])
    return Channels(*(np.arange(hidden),) * 3, np.arange(harmonics), np.arange(rows), np.arange(taps))


def _first_linear(model: ImpactGenerator) -> nn.Linear:
    layer = model.mlp[0]
    assert isinstance(layer, nn.Linear)
    return layer


def _norms(weight: torch.Tensor, dim: int) -> np.ndarray:
    """L2 norm over every axis but ``dim``."""
    w = weight.detach().transpose(0, dim).reshape(weight.shape[dim], -1)
    return w.norm(dim=1).numpy()


def even_bands(rows: int, bands: int) -> np.ndarray:
    """Indices of ``bands`` evenly spaced noise-head rows out of ``rows`` (first and last kept).

    >>> even_bands(257, 65)[:3].tolist(), even_bands(257, 257)[-1]
    ([0, 4, 8], np.int64(256))
    """
    if bands == rows:
        return np.arange(rows)
    if not 2 <= bands < rows or (rows - 1) % (bands - 1):
        raise ValueError(f"noise bands must be n + 1 where n divides {rows - 1} (the rows' spacing), got {bands}")
    return np.arange(bands) * ((rows - 1) // (bands - 1))


def select_channels(
    model: ImpactGenerator,
    hidden_size: int,
    num_harmonics: int,
    noise_bands: int | None = None,
    ir_length: int | None = None,
) -> Channels:
    """The most important ``hidden_size`` channels of each hidden layer, the first ``num_harmonics`` harmonics,
    ``noise_bands`` evenly spaced noise bands and the first ``ir_length`` impulse-response taps (default for
    the last two: all the generator has).

    A channel's importance is the product of the norms of its incoming and outgoing weights. Noise bands
    are magnitudes interpolated linearly across the FFT bins, so keeping every other one halves the
    frequency resolution of the noise's envelope.

    >>> model = ImpactGenerator(hidden_size=8, num_harmonics=4, noise_fft=64, ir_length=0)
    >>> channels = select_channels(model, 4, 2, noise_bands=9)
    >>> len(channels.gru), channels.harmonics.tolist(), channels.bands.tolist()
    (4, [0, 1], [0, 4, 8, 12, 16, 20, 24, 28, 32])
    """
    full = int(model.kwargs["hidden_size"])
    if not 1 <= hidden_size <= full or not 1 <= num_harmonics <= model.kwargs["num_harmonics"]:
        raise ValueError(f"pruned sizes must be within the generator's ({full} hidden units), got {hidden_size}")
    rows, taps = model.noise_head.out_features, int(model.kwargs["ir_length"])
    bands = even_bands(rows, noise_bands or rows)
    if ir_length is not None and not 0 <= ir_length <= taps:
        raise ValueError(f"ir_length must be within the generator's {taps} taps, got {ir_length}")
    w_ih, w_hh = model.gru.weight_ih_l0, model.gru.weight_hh_l0
    assert isinstance(w_ih, torch.Tensor) and isinstance(w_hh, torch.Tensor)
    gates_in = (_norms(w_hh, 0) + _norms(w_ih, 0)).reshape(3, full).sum(axis=0)
    mlp = _first_linear(model).weight
    heads_out = _norms(model.amplitude_head.weight, 1) + _norms(model.noise_head.weight, 1)
    scores = {
        "conv": _norms(model.conv.weight, 0) * _norms(w_ih, 1),
        "gru": gates_in * (_norms(w_hh, 1) + _norms(mlp[:, :full], 1)),
        "mlp": _norms(mlp, 0) * heads_out,
    }
    keep = {name: np.sort(np.argsort(-score)[:hidden_size]) for name, score in scores.items()}
    ir = np.arange(taps if ir_length is None else ir_length)
    return Channels(keep["conv"], keep["gru"], keep["mlp"], np.arange(num_harmonics), bands, ir)


def compose(outer: Channels, inner: Channels) -> Channels:
    """``inner`` (indices into a pruned generator) expressed in the indices of the generator ``outer`` was cut from."""
    return Channels(
        outer.conv[inner.conv],
        outer.gru[inner.gru],
        outer.mlp[inner.mlp],
        outer.harmonics[inner.harmonics],
        outer.bands[inner.bands],
        outer.ir[inner.ir],
    )


def cut(source: ImpactGenerator, channels: Channels, noise_overlap: int | None = None) -> ImpactGenerator:
    """A smaller generator with ``source``'s weights at ``channels`` (indices into ``source``).

    The harmonics and impulse-response taps kept must be the first ones (the bank's partial numbers stay
    1..K), the noise bands evenly spaced ones (:func:`even_bands`). ``noise_overlap`` (2 or 4) changes the
    noise branch's frames per sample (see :class:`~flowsynth.impact.model.ImpactGenerator`); by default the
    source's.
    """
    if not np.array_equal(channels.harmonics, np.arange(len(channels.harmonics))):
        raise ValueError("only the first harmonics can be kept (partials 1..K)")
    if not np.array_equal(channels.ir, np.arange(len(channels.ir))):
        raise ValueError("only the first impulse-response taps can be kept")
    rows = source.noise_head.out_features
    if not np.array_equal(channels.bands, even_bands(rows, len(channels.bands))):
        raise ValueError(f"only evenly spaced noise bands can be kept (see even_bands), got {channels.bands[:4]}...")
    if not len(channels.conv) == len(channels.gru) == len(channels.mlp):
        raise ValueError("the three hidden layers must keep the same number of channels")
    kwargs = {**source.kwargs, "hidden_size": channels.hidden_size, "num_harmonics": len(channels.harmonics)}
    kwargs.update(noise_bands=len(channels.bands), ir_length=len(channels.ir))
    if noise_overlap is not None:
        kwargs["noise_overlap"] = noise_overlap
    pruned = ImpactGenerator(**kwargs)
    pruned.load_state_dict(_cut_state(source, channels))
    return pruned.eval()


def _cut_state(source: ImpactGenerator, c: Channels) -> dict[str, torch.Tensor]:
    full = int(source.kwargs["hidden_size"])
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    a, b, m, bands = (torch.as_tensor(x, dtype=torch.long) for x in (c.conv, c.gru, c.mlp, c.bands))
    rows = torch.cat([b, b + full, b + 2 * full])
    heads = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.as_tensor(c.harmonics, dtype=torch.long)])
    mlp_cols = torch.cat([b, full + torch.arange(state["mlp.0.weight"].shape[1] - full)])
    out = {
        "conv.weight": state["conv.weight"][a],
        "conv.bias": state["conv.bias"][a],
        "gru.weight_ih_l0": state["gru.weight_ih_l0"][rows][:, a],
        "gru.weight_hh_l0": state["gru.weight_hh_l0"][rows][:, b],
        "gru.bias_ih_l0": state["gru.bias_ih_l0"][rows],
        "gru.bias_hh_l0": state["gru.bias_hh_l0"][rows],
        "mlp.0.weight": state["mlp.0.weight"][m][:, mlp_cols],
        "mlp.0.bias": state["mlp.0.bias"][m],
        "amplitude_head.weight": state["amplitude_head.weight"][heads][:, m],
        "amplitude_head.bias": state["amplitude_head.bias"][heads],
        "noise_head.weight": state["noise_head.weight"][bands][:, m],
        "noise_head.bias": state["noise_head.bias"][bands],
    }
    if len(c.ir):
        out["ir"] = state["ir"][torch.as_tensor(c.ir, dtype=torch.long)]
    return out
