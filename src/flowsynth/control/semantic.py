"""Semantic knobs: one knob per tag pair (dark -> bright, tonal -> noisy, ...), and how well each works.

* ``flow_dis`` models have them built in: the disentangling flow ``w = g(z)`` is trained so that
  ``w_k`` is about -1 for sounds tagged with the first tag of pair ``k`` and +1 for the second. The knob
  sets ``w_k = v * (1 + semantic_scale)`` and keeps the other coordinates of ``w``.
* Other latent models get a **measured** knob per pair of
  :data:`flowsynth.training.tags.DESCRIPTOR_TAGS`: the latent direction ``u`` of a ridge regression
  (lambda = 1e-3 n) of the normalized descriptor on the reference latents. The knob sets the
  coordinate along ``u`` to ``center + v * span`` (reference mean and twice the standard deviation of
  ``z . u``) and keeps the orthogonal part of ``z``.

:func:`evaluate_semantic` measures each knob as ``PROTOCOL.md`` asks: Spearman's rho between the knob
value and the pair's descriptor along a sweep around each held-out preset, and the leakage (the
mean range of the other normalized descriptors along the sweep over the range of the target one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from flowsynth.control.descriptors import DescriptorScale, spearman, transform
from flowsynth.control.macros import check_knob
from flowsynth.control.space import SoundSpace
from flowsynth.features import mean_ci
from flowsynth.models import DisentanglingFlowModel
from flowsynth.synth import RenderConfig
from flowsynth.training.tags import DESCRIPTOR_TAGS

__all__ = ["SemanticKnob", "SemanticKnobs", "evaluate_semantic", "fit_semantic_knobs"]

_RIDGE = 1e-3
#: A target descriptor that moves less than this (normalized units) along a sweep did not move: its
#: leakage is undefined there (counted in ``target_still``).
_STILL = 1e-6


@dataclass(frozen=True)
class SemanticKnob:
    """A knob from tag ``low`` (-1) to tag ``high`` (+1).

    Arguments:
        low: Tag at knob -1.
        high: Tag at knob +1.
        descriptor: The descriptor the pair is measured with (None for tags without one).
        kind: ``"flow_dis"`` (the model's semantic coordinate ``index``) or ``"measured"`` (a direction).
        index: Coordinate of ``w`` (``flow_dis``).
        direction: Unit latent direction (``measured``).
        center: Coordinate at knob 0.
        span: Coordinate change from knob 0 to knob 1.
    """

    low: str
    high: str
    descriptor: str | None
    kind: str
    index: int = 0
    direction: tuple[float, ...] = ()
    center: float = 0.0
    span: float = 1.0

    @property
    def name(self) -> str:
        """``"low / high"``."""
        return f"{self.low} / {self.high}"


class SemanticKnobs:
    """The semantic knobs of a model (see the module docstring).

    Arguments:
        space: The model and synth.
        knobs: The knobs, in order.
    """

    def __init__(self, space: SoundSpace, knobs: list[SemanticKnob]) -> None:
        if any(k.kind == "flow_dis" for k in knobs) and not hasattr(space.model, "to_semantic"):
            raise ValueError(f"flow_dis knobs need a flow_dis model, got {space.model.name!r}")
        self.space, self.knobs = space, list(knobs)

    def __len__(self) -> int:
        return len(self.knobs)

    def knob(self, index: int) -> SemanticKnob:
        """Knob ``index``."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.knobs):
            raise ValueError(f"semantic knob index must be an integer in [0, {len(self.knobs) - 1}], got {index!r}")
        return self.knobs[index]

    def apply(self, z: Tensor, values: Mapping[int, float]) -> Tensor:
        """Latents ``[B, latent_size]`` with knobs ``{index: value in [-1, 1]}`` set on ``z [B, latent_size]``."""
        z = z.float().clone()
        with torch.no_grad():
            for index, value in values.items():
                knob, value = self.knob(index), check_knob(value, "semantic knob value")
                target = knob.center + value * knob.span
                if knob.kind == "flow_dis":
                    w = self.space.model.to_semantic(z)  # type: ignore[operator]
                    w[:, knob.index] = target
                    z = self.space.model.from_semantic(w)  # type: ignore[operator]
                else:
                    u = torch.tensor(knob.direction)
                    z = z + (target - z @ u)[:, None] * u[None, :]
        return z

    def values(self, z: Tensor) -> Tensor:
        """Where latents ``[B, latent_size]`` put every knob: ``[B, n_knobs]``."""
        z = z.float()
        columns = []
        with torch.no_grad():
            w = self.space.model.to_semantic(z) if any(k.kind == "flow_dis" for k in self.knobs) else None  # type: ignore[operator]
            for knob in self.knobs:
                coordinate = w[:, knob.index] if knob.kind == "flow_dis" else z @ torch.tensor(knob.direction)  # type: ignore[index]
                columns.append((coordinate - knob.center) / knob.span)
        return torch.stack(columns, -1) if columns else z.new_zeros(len(z), 0)

    def to_dict(self) -> dict:
        """A JSON-ready form."""
        return {"knobs": [asdict(k) | {"direction": list(k.direction)} for k in self.knobs]}

    @classmethod
    def from_dict(cls, space: SoundSpace, data: Mapping) -> SemanticKnobs:
        knobs = [SemanticKnob(**{**k, "direction": tuple(k["direction"])}) for k in data["knobs"]]
        return cls(space, knobs)


#: Where semantic knobs come from: the model's own for ``flow_dis`` (else measured), or always measured.
SEMANTIC_SOURCES = ("auto", "measured")


def fit_semantic_knobs(
    space: SoundSpace, reference: Tensor, descriptors: Mapping[str, Tensor] | None = None, source: str = "auto"
) -> SemanticKnobs:
    """The semantic knobs of ``space``'s model: its own (``flow_dis``) or measured ones.

    Arguments:
        space: The model and synth.
        reference: Reference latents ``[n, latent_size]``.
        descriptors: Descriptors ``{name: [n]}`` of the reference sounds (needed for measured knobs;
            rendered when None).
        source: ``"auto"`` (a ``flow_dis`` model's own knobs, measured ones for other models) or
            ``"measured"`` (measured knobs for every model).
    """
    if source not in SEMANTIC_SOURCES:
        raise ValueError(f"unknown semantic knob source {source!r}; choose from {', '.join(SEMANTIC_SOURCES)}")
    model = space.model
    if isinstance(model, DisentanglingFlowModel) and source == "auto":
        span = 1.0 + float(model.semantic_scale)
        knobs = [
            SemanticKnob(low, high, DESCRIPTOR_TAGS.get((low, high)), "flow_dis", index=k, span=span)
            for k, (low, high) in enumerate(model.pairs)
        ]
        return SemanticKnobs(space, knobs)
    if descriptors is None:
        descriptors = space.describe(space.to_params(reference))
    return SemanticKnobs(space, _measured_knobs(reference, descriptors))


def _measured_knobs(reference: Tensor, descriptors: Mapping[str, Tensor]) -> list[SemanticKnob]:
    z = reference.double()
    z_mean = z.mean(0)
    centred = z - z_mean
    gram = centred.T @ centred + _RIDGE * len(z) * torch.eye(z.shape[1], dtype=torch.float64)
    knobs = []
    for (low, high), name in DESCRIPTOR_TAGS.items():
        if name not in descriptors:
            continue
        y = transform(name, torch.as_tensor(descriptors[name]).reshape(-1))
        keep = torch.isfinite(y)
        if int(keep.sum()) < 3 or float(y[keep].std()) == 0:
            continue
        y = (y - y[keep].mean()) / y[keep].std()
        beta = torch.linalg.solve(gram, centred[keep].T @ y[keep])
        u = beta / beta.norm().clamp_min(1e-12)
        coordinate = z @ u
        center, span = float(coordinate.mean()), max(2.0 * float(coordinate.std()), 1e-3)
        knobs.append(
            SemanticKnob(low, high, name, "measured", direction=tuple(u.float().tolist()), center=center, span=span)
        )
    return knobs


def evaluate_semantic(
    knobs: SemanticKnobs,
    anchors: Tensor,
    steps: int = 9,
    scale: DescriptorScale | None = None,
    config: RenderConfig | None = None,
) -> list[dict]:
    """Spearman rho and leakage of every knob with a descriptor, swept around each anchor latent.

    Arguments:
        knobs: The knobs.
        anchors: Latents ``[n, latent_size]`` of held-out presets.
        steps: Knob values per sweep, evenly spaced in [-1, 1].
        scale: Descriptor scale for the leakage (None: fitted on the sweeps' sounds).
        config: Render conditions (None: the model's).

    Returns:
        Per knob: ``name``, ``descriptor``, ``rho`` (mean, ci95_low, ci95_high over anchors; 0 where the
        descriptor does not move), ``leakage`` (same, over the anchors where the target moved),
        ``target_still`` (anchors where it did not) and ``per_descriptor_range`` (mean range of each
        normalized descriptor).
    """
    space, values = knobs.space, torch.linspace(-1.0, 1.0, steps)
    reports = []
    for index, knob in enumerate(knobs.knobs):
        if knob.descriptor is None:
            continue
        z = torch.cat([knobs.apply(anchors, {index: float(v)}) for v in values])  # [S * n, L]
        found = space.describe(space.to_params(z), config)
        ruler = scale or DescriptorScale.fit(found)
        norm = ruler.normalize(found).reshape(steps, len(anchors), -1)
        reports.append(_knob_report(knob, norm, values, ruler.names))
    return reports


def _knob_report(knob: SemanticKnob, norm: Tensor, values: Tensor, names: tuple[str, ...]) -> dict:
    target = names.index(knob.descriptor)  # type: ignore[arg-type]
    rhos, leaks = [], []
    ranges = (norm.nan_to_num().amax(0) - norm.nan_to_num().amin(0)).double()  # [n, K]
    for a in range(norm.shape[1]):
        rhos.append(spearman(values, norm[:, a, target]))
        others = torch.cat([ranges[a, :target], ranges[a, target + 1 :]])
        moved = float(ranges[a, target]) > _STILL
        leaks.append(float(others.mean()) / float(ranges[a, target]) if moved else float("nan"))
    return {
        "name": knob.name,
        "kind": knob.kind,
        "descriptor": knob.descriptor,
        "rho": _summary(rhos),
        "leakage": _summary(leaks),
        "target_still": sum(leak != leak for leak in leaks),
        "per_descriptor_range": {n: round(float(r), 4) for n, r in zip(names, ranges.mean(0), strict=True)},
    }


def _summary(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": float("nan"), "ci95_low": float("nan"), "ci95_high": float("nan")}
    mean, low, high = mean_ci(finite)
    return {"mean": mean, "ci95_low": low, "ci95_high": high}
