"""A descriptor surrogate: a small network that predicts a sound's descriptors from its parameters.

The semantic knobs of :mod:`flowsynth.control.semantic` with ``source="steered"`` follow its gradient
through the model's latent -> parameters map, so a knob moves the sound along the direction that
changes its descriptor *here*, not along one direction fitted over the whole space. It learns from
parameters and the descriptors of their rendered sounds (a dataset stores both), so it knows the synth's
own response, including parameters the model's encoder does not hear.

Its outputs are the :data:`STEERED` descriptors on a steering scale: the centroid in octaves, the
flatness and the effective duration in decades (``log10``: tonal sounds still have a gradient towards
noise, and durations change by ratios), the others as they are; each centred and divided by its
standard deviation over the training sounds.

Example:
    >>> params = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    >>> found = {"loudness_db": -30.0 + 20.0 * params[:, 0], "flux": params[:, 1]}
    >>> surrogate = fit_surrogate(params, found, steps=200)
    >>> surrogate.names
    ('loudness_db', 'flux')
    >>> surrogate(params).shape
    torch.Size([64, 2])
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from flowsynth.control.descriptors import transform
from flowsynth.control.map import PresetBank

__all__ = ["STEERED", "DescriptorSurrogate", "fit_dataset_surrogate", "fit_surrogate", "steering_value"]

#: Descriptors a surrogate predicts (those present in the training data), in this order.
STEERED = ("centroid_hz", "flatness", "loudness_db", "flux", "effective_duration_s", "harmonicity")
#: Descriptors steered in decades (``log10``), with their floors: the flatness of a tonal sound still
#: has a way towards noise, and durations are heard in ratios (a 50 ms hit against 100 ms is as clear a
#: change as 1 s against 2 s).
_LOG_FLOORS = {"flatness": 1e-6, "effective_duration_s": 1e-2}


def steering_value(name: str, values: Tensor) -> Tensor:
    """A descriptor on the steering scale (float64): the flatness and the effective duration in decades,
    the rest as :func:`transform`.

    >>> steering_value("flatness", torch.tensor([0.001, 0.1], dtype=torch.float64)).tolist()
    [-3.0, -1.0]
    """
    if name in _LOG_FLOORS:
        return torch.log10(torch.as_tensor(values).double().clamp_min(_LOG_FLOORS[name]))
    return transform(name, torch.as_tensor(values))


class DescriptorSurrogate(nn.Module):
    """Parameters ``[B, num_params]`` in [0, 1] -> normalized steering descriptors ``[B, len(names)]``.

    Arguments:
        num_params: Number of synth parameters.
        names: The descriptors predicted, in column order.
        center: Mean of each descriptor (steering scale) over the training sounds.
        scale: Standard deviation of each.
        width: Hidden units per layer.
        depth: Hidden layers.
    """

    def __init__(
        self,
        num_params: int,
        names: tuple[str, ...],
        center: tuple[float, ...],
        scale: tuple[float, ...],
        width: int = 256,
        depth: int = 3,
    ) -> None:
        super().__init__()
        self.num_params, self.names, self.width, self.depth = int(num_params), tuple(names), int(width), int(depth)
        self.center, self.scale = tuple(map(float, center)), tuple(map(float, scale))
        layers: list[nn.Module] = []
        size = self.num_params
        for _ in range(self.depth):
            layers += [nn.Linear(size, self.width), nn.SiLU()]
            size = self.width
        self.net = nn.Sequential(*layers, nn.Linear(size, len(self.names)))

    def forward(self, params: Tensor) -> Tensor:
        return self.net(params)

    def normalize(self, descriptors: Mapping[str, Tensor]) -> Tensor:
        """Descriptors ``{name: [n]}`` on the surrogate's normalized steering scale: ``[n, len(names)]``."""
        columns = [
            (steering_value(n, descriptors[n].reshape(-1)) - c) / s
            for n, c, s in zip(self.names, self.center, self.scale, strict=True)
        ]
        return torch.stack(columns, -1).float()

    def config(self) -> dict:
        """Constructor arguments (JSON-ready)."""
        return {
            "num_params": self.num_params,
            "names": list(self.names),
            "center": list(self.center),
            "scale": list(self.scale),
            "width": self.width,
            "depth": self.depth,
        }

    @classmethod
    def from_config(cls, config: Mapping, state: Mapping[str, Tensor]) -> DescriptorSurrogate:
        """Rebuilds a surrogate from :meth:`config` and its ``state_dict``."""
        surrogate = cls(**{**config, "names": tuple(config["names"])})
        surrogate.load_state_dict(dict(state))
        return surrogate.eval().requires_grad_(False)


def fit_surrogate(
    params: Tensor,
    descriptors: Mapping[str, Tensor],
    steps: int = 4000,
    batch_size: int = 256,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> DescriptorSurrogate:
    """Fits a :class:`DescriptorSurrogate` on parameters ``[n, num_params]`` and their sounds' descriptors.

    Rows with a missing (NaN) descriptor are left out. AdamW with a one-cycle schedule, Huber loss,
    ``steps`` batches of ``batch_size``; seeded, so the same data give the same network.
    """
    params = torch.as_tensor(params, dtype=torch.float32)
    names = tuple(n for n in STEERED if n in descriptors)
    if params.dim() != 2 or not names:
        raise ValueError(f"a surrogate needs params [n, num_params] and descriptors among {', '.join(STEERED)}")
    values = torch.stack([steering_value(n, descriptors[n].reshape(-1)) for n in names], -1)
    if len(values) != len(params):
        raise ValueError(f"{len(params)} parameter rows but {len(values)} descriptor rows")
    keep = torch.isfinite(values).all(-1) & torch.isfinite(params).all(-1)
    params, values = params[keep], values[keep]
    if len(params) < 32:
        raise ValueError(f"a surrogate needs at least 32 described sounds, got {len(params)}")
    center, scale = values.mean(0), values.std(0).clamp_min(1e-6)
    target = ((values - center) / scale).float()
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        surrogate = DescriptorSurrogate(params.shape[1], names, tuple(center.tolist()), tuple(scale.tolist()))
    optimizer = torch.optim.AdamW(surrogate.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    report = max(steps // 4, 1)
    surrogate.train()
    with torch.enable_grad():
        for step in range(steps):
            rows = torch.randint(len(params), (batch_size,), generator=generator)
            loss = nn.functional.smooth_l1_loss(surrogate(params[rows]), target[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if log and (step + 1) % report == 0:
                log(f"descriptor surrogate: step {step + 1}/{steps}, loss {float(loss.detach()):.4f}")
    if not math.isfinite(float(loss.detach())):
        raise ValueError("the descriptor surrogate diverged (non-finite loss)")
    return surrogate.eval().requires_grad_(False)


def fit_dataset_surrogate(
    data: str | os.PathLike[str],
    steps: int = 4000,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> DescriptorSurrogate:
    """:func:`fit_surrogate` on every sound of a dataset's training split (its parameters and stored descriptors)."""
    train = PresetBank.from_dataset(data, "train")
    if log:
        log(f"fitting the descriptor surrogate on {len(train)} training sounds...")
    return fit_surrogate(train.params, train.descriptors or {}, steps=steps, seed=seed, log=log)
