"""Semantic knobs: one knob per tag pair (dark -> bright, tonal -> noisy, ...), and how well each works.

* ``flow_dis`` models have them built in: the disentangling flow ``w = g(z)`` is trained so that
  ``w_k`` is about -1 for sounds tagged with the first tag of pair ``k`` and +1 for the second. The knob
  sets ``w_k = v * (1 + semantic_scale)`` and keeps the other coordinates of ``w``.
* Other latent models get a **measured** knob per pair of
  :data:`flowsynth.training.tags.DESCRIPTOR_TAGS`: the latent direction ``u`` of a ridge regression
  (lambda = 1e-3 n) of the normalized descriptor on the reference latents. The knob sets the
  coordinate along ``u`` to ``center + v * span`` (knob -1 and +1 at the 2nd and 98th percentile of
  ``z . u`` over the reference presets, :data:`KNOB_RANGE`) and keeps the orthogonal part of ``z``.
* **Steered** knobs (``source="steered"``) follow a
  :class:`~flowsynth.control.surrogate.DescriptorSurrogate` (descriptors predicted from parameters)
  through the model's latent -> parameters map. Knob value ``v`` asks for the predicted descriptor
  ``center + v * span`` (-1 and +1 at the 2nd and 98th percentile of the prediction); the
  latent moves there from where it is by Newton steps along the gradient of the prediction
  (:data:`STEER_STEPS_PER_UNIT` per knob unit travelled, each at most :data:`STEER_MAX_STEP` long),
  so the knob follows the direction that changes the descriptor around the current sound.
  Percussiveness is steered through the effective duration (shorter is more percussive), which keeps
  a gradient where every sustained sound has percussiveness 0.
* **Guided** knobs (``source="guided"``) do both: the latent first moves along the measured knob's
  direction to that knob's value, which takes the sound into the region of the space where the
  descriptor has that value on average, then steers from there like a steered knob, which corrects for
  the current sound. A steered knob alone starts from the current sound, where the surrogate's
  gradient can be flat (a sustained sound whose duration no small change shortens) or point the wrong
  way; a measured knob alone ignores the current sound.
* **Validated** knobs (``source="validated"``; the default for models other than ``flow_dis`` when there
  is a surrogate, which :func:`~flowsynth.control.build_instrument` fits on a dataset): per pair, the
  measured, the steered, the guided or (``flow_dis``) the model's own knob, whichever has the highest mean Spearman
  rho around a few seeded reference presets.

:func:`evaluate_semantic` measures each knob as ``PROTOCOL.md`` asks: Spearman's rho between the knob
value and the pair's descriptor along a sweep around each held-out preset, and the leakage (the
mean range of the other normalized descriptors along the sweep over the range of the target one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor

from flowsynth.control.descriptors import DescriptorScale, spearman, transform
from flowsynth.control.macros import check_knob
from flowsynth.control.space import SoundSpace
from flowsynth.control.surrogate import DescriptorSurrogate, fit_surrogate
from flowsynth.features import mean_ci
from flowsynth.models import DisentanglingFlowModel
from flowsynth.synth import RenderConfig
from flowsynth.training.tags import DESCRIPTOR_TAGS

__all__ = [
    "SEMANTIC_SOURCES",
    "SURROGATE_SOURCES",
    "SemanticKnob",
    "SemanticKnobs",
    "evaluate_semantic",
    "fit_semantic_knobs",
    "resolve_source",
]

_RIDGE = 1e-3
#: A target descriptor that moves less than this (normalized units) along a sweep did not move: its
#: leakage is undefined there (counted in ``target_still``).
_STILL = 1e-6
#: Newton steps of a steered knob move per knob unit it travels (at least 1, at most STEER_MAX_STEPS),
#: and the longest step (latent units).
STEER_STEPS_PER_UNIT = 6
STEER_MAX_STEPS = 16
STEER_MAX_STEP = 0.5
#: The surrogate output a descriptor is steered with, and its sign (default: the descriptor itself, +1).
_STEERED_BY = {"percussiveness": ("effective_duration_s", -1.0)}
#: The quantiles of the reference presets' coordinate a measured, steered or guided knob reaches at -1 and +1.
KNOB_RANGE = (0.02, 0.98)
#: Knob kinds that follow the descriptor surrogate.
_STEERING = ("steered", "guided")
#: Reference presets the candidates of a validated knob are swept around (12 chose the worse knob of a
#: pair by chance where the two differ by a few hundredths).
VALIDATION_PRESETS = 32


@dataclass(frozen=True)
class SemanticKnob:
    """A knob from tag ``low`` (-1) to tag ``high`` (+1).

    Arguments:
        low: Tag at knob -1.
        high: Tag at knob +1.
        descriptor: The descriptor the pair is measured with (None for tags without one).
        kind: ``"flow_dis"`` (the model's semantic coordinate ``index``), ``"measured"`` (a direction),
            ``"steered"`` (surrogate output ``index``, times ``sign``) or ``"guided"`` (a move along
            ``direction``, then steered).
        index: Coordinate of ``w`` (``flow_dis``) or surrogate output (``steered``, ``guided``).
        direction: Unit latent direction (``measured``, ``guided``).
        center: Coordinate at knob 0.
        span: Coordinate change from knob 0 to knob 1.
        sign: +1, or -1 for a surrogate output that falls as the knob rises (``steered``, ``guided``).
        guide_center: Coordinate along ``direction`` at knob 0 (``guided``).
        guide_span: Its change from knob 0 to knob 1 (``guided``).
    """

    low: str
    high: str
    descriptor: str | None
    kind: str
    index: int = 0
    direction: tuple[float, ...] = ()
    center: float = 0.0
    span: float = 1.0
    sign: float = 1.0
    guide_center: float = 0.0
    guide_span: float = 1.0

    @property
    def name(self) -> str:
        """``"low / high"``."""
        return f"{self.low} / {self.high}"


class SemanticKnobs:
    """The semantic knobs of a model (see the module docstring).

    Arguments:
        space: The model and synth.
        knobs: The knobs, in order.
        surrogate: The descriptor surrogate steered and guided knobs follow.
        selection: How each knob was chosen (``validated`` knobs: every candidate's rho on the
            validation presets), for reports.
    """

    def __init__(
        self,
        space: SoundSpace,
        knobs: list[SemanticKnob],
        surrogate: DescriptorSurrogate | None = None,
        selection: list[dict] | None = None,
    ) -> None:
        if any(k.kind == "flow_dis" for k in knobs) and not hasattr(space.model, "to_semantic"):
            raise ValueError(f"flow_dis knobs need a flow_dis model, got {space.model.name!r}")
        if any(k.kind in _STEERING for k in knobs):
            if surrogate is None:
                raise ValueError("steered and guided knobs need their descriptor surrogate")
            if surrogate.num_params != space.num_params:
                raise ValueError(
                    f"the surrogate takes {surrogate.num_params} parameters, the model has {space.num_params}"
                )
        self.space, self.knobs, self.surrogate = space, list(knobs), surrogate
        self.selection = list(selection or [])

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
                elif knob.kind == "steered":
                    z = self._steer(z, knob, target)
                elif knob.kind == "guided":
                    z = _along(z, knob.direction, knob.guide_center + value * knob.guide_span)
                    z = self._steer(z, knob, target)
                else:
                    z = _along(z, knob.direction, target)
        return z

    def _outputs(self, z: Tensor, params: Tensor | None = None) -> Tensor:
        """The surrogate's outputs ``[B, K]`` at latents ``z`` (or at their decoded ``params`` when given);
        differentiable in ``z`` when gradients are on."""
        if params is None:
            params = self.space.model.latent_to_params(z).clamp(0.0, 1.0)
        return self.surrogate(params.float())  # type: ignore[misc]

    def _predict(self, z: Tensor, knob: SemanticKnob) -> Tensor:
        """The steered coordinate ``sign * surrogate(params(z))[index]`` ``[B]`` (differentiable)."""
        return knob.sign * self._outputs(z)[:, knob.index]

    def _steer(self, z: Tensor, knob: SemanticKnob, target: float) -> Tensor:
        """``z`` moved until the steered coordinate reaches ``target`` (see the module docstring)."""
        with torch.enable_grad():
            moving = z.detach().requires_grad_(True)
            value = self._predict(moving, knob)
            start = value.detach()
            distance = float((target - start).abs().max()) / knob.span  # in knob units
            steps = min(max(math.ceil(STEER_STEPS_PER_UNIT * distance), 1), STEER_MAX_STEPS)
            for step in range(steps):
                if step:
                    moving = z.detach().requires_grad_(True)
                    value = self._predict(moving, knob)
                (gradient,) = torch.autograd.grad(value.sum(), moving)
                wanted = start + (target - start) * (step + 1) / steps - value.detach()
                move = (wanted / gradient.square().sum(-1).clamp_min(1e-8))[:, None] * gradient
                length = move.norm(dim=-1, keepdim=True)
                z = z + move * (STEER_MAX_STEP / length.clamp_min(1e-12)).clamp(max=1.0)
        return z.detach()

    def values(self, z: Tensor, params: Tensor | None = None) -> Tensor:
        """Where latents ``[B, latent_size]`` put every knob: ``[B, n_knobs]``.

        ``params`` (``[B, num_params]``, the latents' decoded parameters when the caller has them)
        spares steered knobs a pass through the model.
        """
        z = z.float()
        columns = []
        with torch.no_grad():
            w = self.space.model.to_semantic(z) if any(k.kind == "flow_dis" for k in self.knobs) else None  # type: ignore[operator]
            predicted = self._outputs(z, params) if any(k.kind in _STEERING for k in self.knobs) else None
            for knob in self.knobs:
                if knob.kind == "flow_dis":
                    coordinate = w[:, knob.index]  # type: ignore[index]
                elif knob.kind in _STEERING:
                    coordinate = knob.sign * predicted[:, knob.index]  # type: ignore[index]
                else:
                    coordinate = z @ torch.tensor(knob.direction)
                columns.append((coordinate - knob.center) / knob.span)
        return torch.stack(columns, -1) if columns else z.new_zeros(len(z), 0)

    def to_dict(self) -> dict:
        """A JSON-ready form of the knobs (a surrogate's weights are saved apart: ``surrogate.state_dict()``)."""
        data: dict = {"knobs": [asdict(k) | {"direction": list(k.direction)} for k in self.knobs]}
        if self.surrogate is not None:
            data["surrogate"] = self.surrogate.config()
        if self.selection:
            data["selection"] = self.selection
        return data

    @classmethod
    def from_dict(
        cls, space: SoundSpace, data: Mapping, surrogate_state: Mapping[str, Tensor] | None = None
    ) -> SemanticKnobs:
        knobs = [SemanticKnob(**{**k, "direction": tuple(k["direction"])}) for k in data["knobs"]]
        surrogate = None
        if data.get("surrogate") is not None:
            if surrogate_state is None:
                raise ValueError("these semantic knobs need their surrogate's weights")
            surrogate = DescriptorSurrogate.from_config(data["surrogate"], surrogate_state)
        return cls(space, knobs, surrogate, data.get("selection"))


#: Where semantic knobs come from (see :func:`fit_semantic_knobs`).
SEMANTIC_SOURCES = ("auto", "measured", "steered", "guided", "validated")
#: The sources whose knobs need a descriptor surrogate.
SURROGATE_SOURCES = ("steered", "guided", "validated")


def resolve_source(space: SoundSpace, source: str, steerable: bool) -> str:
    """What ``source`` means for this model: ``"flow_dis"``, ``"measured"``, ``"steered"``, ``"guided"``
    or ``"validated"``.

    ``"auto"`` is the model's own knobs for ``flow_dis``, else validated knobs (the measured, steered or
    guided knob of each pair, whichever follows its descriptor best around validation presets) when
    a descriptor surrogate can be had (``steerable``: a dataset of described sounds to fit it on), else
    measured ones.
    """
    if source not in SEMANTIC_SOURCES:
        raise ValueError(f"unknown semantic knob source {source!r}; choose from {', '.join(SEMANTIC_SOURCES)}")
    if source == "auto":
        if isinstance(space.model, DisentanglingFlowModel):
            return "flow_dis"
        return "validated" if steerable else "measured"
    return source


def fit_semantic_knobs(
    space: SoundSpace,
    reference: Tensor,
    descriptors: Mapping[str, Tensor] | None = None,
    source: str = "auto",
    surrogate: DescriptorSurrogate | None = None,
    validation: int = VALIDATION_PRESETS,
    seed: int = 0,
) -> SemanticKnobs:
    """The semantic knobs of ``space``'s model: its own (``flow_dis``), measured, steered, guided or validated ones.

    Arguments:
        space: The model and synth.
        reference: Reference latents ``[n, latent_size]``.
        descriptors: Descriptors ``{name: [n]}`` of the reference sounds (needed for measured knobs;
            rendered when None).
        source: ``"auto"`` (:func:`resolve_source`: validated when ``surrogate`` is given),
            ``"measured"``, ``"steered"``, ``"guided"`` or ``"validated"``.
        surrogate: The descriptor surrogate of steered and guided knobs (None: fitted on the reference
            sounds, which needs a few thousand of them to be accurate).
        validation: Reference presets (a seeded choice) the candidates of validated knobs are swept
            around; the one with the highest mean Spearman rho is kept (ties: the first of measured,
            steered, guided, and a ``flow_dis`` model's own knob, which is a candidate too).
        seed: Seed of that choice.
    """
    source = resolve_source(space, source, surrogate is not None)
    own = _own_knobs(space) if source in ("flow_dis", "validated") else []
    if source == "flow_dis":
        if not own:
            raise ValueError(f"flow_dis knobs need a flow_dis model, got {space.model.name!r}")
        return SemanticKnobs(space, own)
    if descriptors is None:
        descriptors = space.describe(space.to_params(reference))
    measured = _measured_knobs(reference, descriptors)
    if source == "measured":
        return SemanticKnobs(space, measured)
    if surrogate is None:
        surrogate = fit_surrogate(space.to_params(reference), descriptors)
    steered = _steered_knobs(space, reference, surrogate)
    if source == "steered":
        return SemanticKnobs(space, steered, surrogate)
    guided = _guided_knobs(measured, steered)
    if source == "guided":
        return SemanticKnobs(space, guided, surrogate)
    return _validated(space, reference, measured + steered + guided + own, surrogate, validation, seed)


def _own_knobs(space: SoundSpace) -> list[SemanticKnob]:
    """A ``flow_dis`` model's own knobs (none for other models)."""
    model = space.model
    if not isinstance(model, DisentanglingFlowModel):
        return []
    span = 1.0 + float(model.semantic_scale)
    return [
        SemanticKnob(low, high, DESCRIPTOR_TAGS.get((low, high)), "flow_dis", index=k, span=span)
        for k, (low, high) in enumerate(model.pairs)
    ]


def _validated(
    space: SoundSpace,
    reference: Tensor,
    candidates: list[SemanticKnob],
    surrogate: DescriptorSurrogate,
    validation: int,
    seed: int,
) -> SemanticKnobs:
    """Per pair, the candidate with the highest rho around validation presets (a pair without a
    descriptor keeps its only, ``flow_dis``, knob)."""
    order = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))
    anchors = reference[order[: max(int(validation), 2)]]
    pairs: dict[tuple[str, str], list[SemanticKnob]] = {}
    for knob in candidates:
        pairs.setdefault((knob.low, knob.high), []).append(knob)
    knobs, selection = [], []
    for rivals in pairs.values():
        rho: dict[str, float] = {}
        if rivals[0].descriptor is not None:
            for knob in rivals:
                (report,) = evaluate_semantic(SemanticKnobs(space, [knob], surrogate), anchors)
                rho[knob.kind] = round(float(report["rho"]["mean"]), 4)
        chosen = max(rivals, key=lambda k: rho.get(k.kind, 0.0))  # the first of equals
        knobs.append(chosen)
        selection.append({"name": chosen.name, "validation_rho": rho, "chosen": chosen.kind})
    return SemanticKnobs(space, knobs, surrogate, selection)


def _steered_knobs(space: SoundSpace, reference: Tensor, surrogate: DescriptorSurrogate) -> list[SemanticKnob]:
    with torch.no_grad():
        predicted = surrogate(space.to_params(reference)).double()
    knobs = []
    for (low, high), name in DESCRIPTOR_TAGS.items():
        output, sign = _STEERED_BY.get(name, (name, 1.0))
        if output not in surrogate.names:
            continue
        index = surrogate.names.index(output)
        coordinate = sign * predicted[:, index]
        center, span = _center_span(coordinate)
        knobs.append(SemanticKnob(low, high, name, "steered", index=index, center=center, span=span, sign=sign))
    return knobs


def _guided_knobs(measured: list[SemanticKnob], steered: list[SemanticKnob]) -> list[SemanticKnob]:
    """Per pair with both, the steered knob that first moves along the measured knob's direction."""
    directions = {(k.low, k.high): k for k in measured}
    return [
        replace(
            knob,
            kind="guided",
            direction=guide.direction,
            guide_center=guide.center,
            guide_span=guide.span,
        )
        for knob in steered
        if (guide := directions.get((knob.low, knob.high))) is not None
    ]


def _along(z: Tensor, direction: tuple[float, ...], coordinate: float) -> Tensor:
    """``z`` with its coordinate along the unit ``direction`` set to ``coordinate``, the rest kept."""
    u = torch.tensor(direction)
    return z + (coordinate - z @ u)[:, None] * u[None, :]


def _center_span(coordinate: Tensor) -> tuple[float, float]:
    """A knob's centre and span over the reference presets: knob -1 and +1 at the coordinate's
    :data:`KNOB_RANGE` quantiles (a skewed or two-humped coordinate keeps both ends among the presets)."""
    low, high = torch.quantile(coordinate.double(), torch.tensor(KNOB_RANGE, dtype=torch.float64)).tolist()
    return 0.5 * (low + high), max(0.5 * (high - low), 1e-3)


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
        center, span = _center_span(coordinate)
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
