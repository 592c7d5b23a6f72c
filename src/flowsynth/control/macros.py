"""Macro-controls: the latent dimensions as knobs, ranked by how much they move the sound and the parameters.

:func:`analyze_macros` sweeps each latent dimension around a few anchor sounds (seeded choices from a
reference set of latents), renders every step and measures, per dimension:

* ``sound_score``: how far the normalized descriptors travel along the sweep (total variation per
  knob unit, mean over descriptors and anchors; one unit = one reference standard deviation);
* ``param_score``: the same for the parameters (mean over parameters of the total variation);
* ``effects``: the signed least-squares slope of each normalized descriptor against the knob value,
  averaged over anchors, which names the knob (``"brighter / darker"``: what turning it up does first).

Dimensions are ranked by ``sound_score / max + 0.5 * param_score / max``. A knob value ``v`` in
[-1, 1] sets its dimension to ``center + v * span`` with ``center`` the reference mean and ``span``
twice the reference standard deviation. With ``freeze`` (the default), moving a knob keeps every other
dimension where the current preset put it; without it, the dimensions of the hidden knobs go back to
their centre, so the visible knobs alone decide the sound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import Tensor

from flowsynth.control.descriptors import DescriptorScale, describe_direction
from flowsynth.control.space import SoundSpace
from flowsynth.synth import RenderConfig

__all__ = ["AnalysisConfig", "KNOB_RANGE", "Macro", "MacroSet", "analyze_macros", "check_knob"]

#: The range of every knob value.
KNOB_RANGE = (-1.0, 1.0)
_PARAM_WEIGHT = 0.5


def check_knob(value: float, what: str = "knob value") -> float:
    """``value`` as a float if it is finite and in :data:`KNOB_RANGE`, else a ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number in [-1, 1], got {value!r}") from None
    if not KNOB_RANGE[0] <= number <= KNOB_RANGE[1]:  # NaN fails this too
        raise ValueError(f"{what} must be in [-1, 1], got {value!r}")
    return number


@dataclass(frozen=True)
class AnalysisConfig:
    """How the controls are measured.

    Arguments:
        anchors: Reference sounds each dimension is swept around.
        steps: Knob values per sweep, evenly spaced in [-1, 1].
        visible: Knobs shown (the top of the ranking); the other dimensions are hidden knobs.
        note_s: Note length of the measuring renders (None: the model's render conditions).
        render_s: Length of the measuring renders (None: the model's).
        seed: Seed of the anchor choice.
    """

    anchors: int = 6
    steps: int = 5
    visible: int = 8
    note_s: float | None = None
    render_s: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.anchors < 1 or self.steps < 2 or self.visible < 1:
            raise ValueError(f"need anchors >= 1, steps >= 2 and visible >= 1, got {self}")

    def render_config(self, space: SoundSpace) -> RenderConfig:
        """The render conditions of the measuring renders."""
        config = space.config
        render_s = self.render_s or config.render_s
        return replace(config, note_s=min(self.note_s or config.note_s, render_s), render_s=render_s)


@dataclass(frozen=True)
class Macro:
    """One latent dimension as a knob.

    Arguments:
        dim: The latent dimension.
        name: ``"what turning up does / what turning down does"`` (from the largest effect).
        label: The main effects of turning it up, in words.
        center: Latent value at knob 0.
        span: Latent change from knob 0 to knob 1.
        sound_score: Descriptor travel per knob unit (see the module docstring).
        param_score: Parameter travel per knob unit.
        effects: Signed slope of each normalized descriptor per knob unit.
        consistency: ``|mean slope| / mean |slope|`` of the main descriptor over anchors (1: same
            direction around every anchor).
    """

    dim: int
    name: str
    label: str
    center: float
    span: float
    sound_score: float
    param_score: float
    effects: dict[str, float] = field(default_factory=dict)
    consistency: float = 1.0

    def latent_value(self, knob: float) -> float:
        """The latent value of a knob value."""
        return self.center + check_knob(knob) * self.span

    def knob_value(self, latent: float) -> float:
        """Where a latent value puts the knob (may lie outside [-1, 1] for unusual sounds)."""
        return (float(latent) - self.center) / self.span


@dataclass
class MacroSet:
    """Every latent dimension as a knob, best first; the first ``visible`` are shown.

    Arguments:
        macros: One :class:`Macro` per latent dimension, ranked.
        visible: How many are shown.
        center: Reference mean of every latent dimension.
        scale: The descriptor scale the effects were measured with.
    """

    macros: list[Macro]
    visible: int
    center: list[float]
    scale: DescriptorScale | None = None

    def __post_init__(self) -> None:
        self.visible = max(1, min(int(self.visible), len(self.macros)))

    @property
    def latent_size(self) -> int:
        return len(self.center)

    def macro(self, index: int) -> Macro:
        """Knob ``index`` (0 is the one that moves the sound most)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.macros):
            raise ValueError(f"macro index must be an integer in [0, {len(self.macros) - 1}], got {index!r}")
        return self.macros[index]

    def decode(self, values: Mapping[int, float], base: Tensor | None = None, freeze: bool = True) -> Tensor:
        """The latent ``[latent_size]`` of knob settings ``{index: value}`` applied to ``base``.

        Arguments:
            values: Knob index -> value in [-1, 1].
            base: The current latent (the preset's); None: every dimension at its centre.
            freeze: Keep the dimensions of unset knobs where ``base`` has them; otherwise the hidden
                knobs' dimensions go back to their centre.
        """
        z = torch.tensor(self.center, dtype=torch.float32) if base is None else base.reshape(-1).float().clone()
        if len(z) != self.latent_size:
            raise ValueError(f"base latent must have {self.latent_size} values, got {len(z)}")
        if not freeze:
            for macro in self.macros[self.visible :]:
                z[macro.dim] = macro.center
        for index, value in values.items():
            macro = self.macro(index)
            z[macro.dim] = macro.latent_value(value)
        return z

    def knob_values(self, z: Tensor) -> list[float]:
        """Where latent ``z [latent_size]`` puts every knob, in knob order."""
        z = z.reshape(-1)
        return [m.knob_value(float(z[m.dim])) for m in self.macros]

    def table(self) -> str:
        """A text table of the knobs: index, dimension, name, scores."""
        lines = [f"{'knob':>4} {'dim':>4} {'sound':>6} {'params':>6}  name (turning up: effects)"]
        for index, m in enumerate(self.macros):
            mark = "" if index < self.visible else "  [hidden]"
            lines.append(
                f"{index:>4} {m.dim:>4} {m.sound_score:>6.3f} {m.param_score:>6.3f}  {m.name} ({m.label}){mark}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready form (:meth:`from_dict` reads it back)."""
        scale = self.scale.to_dict() if self.scale else None
        return {
            "macros": [asdict(m) for m in self.macros],
            "visible": self.visible,
            "center": self.center,
            "scale": scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> MacroSet:
        scale = DescriptorScale.from_dict(data["scale"]) if data.get("scale") else None
        macros = [Macro(**m) for m in data["macros"]]
        return cls(macros, int(data["visible"]), [float(c) for c in data["center"]], scale)


def analyze_macros(
    space: SoundSpace, reference: Tensor, config: AnalysisConfig | None = None, scale: DescriptorScale | None = None
) -> MacroSet:
    """Measures and ranks every latent dimension as a knob (see the module docstring).

    Arguments:
        space: The model and synth.
        reference: Latents ``[n, latent_size]`` of reference sounds (a dataset's presets, or random
            parameters through :meth:`SoundSpace.to_latent`): they give each knob's centre and span,
            and the anchors.
        config: Sweep settings.
        scale: Descriptor scale (None: fitted on the sweep's own sounds).
    """
    config = config or AnalysisConfig()
    reference = _check_reference(reference, space.latent_size)
    center, span = reference.mean(0), (2.0 * reference.std(0)).clamp_min(1e-3)
    knob = torch.linspace(-1.0, 1.0, config.steps)
    anchors = _anchors(reference, config.anchors, config.seed)
    z = _sweep_latents(anchors, center, span, knob)  # [A, L, S, L]
    params = space.to_params(z.reshape(-1, space.latent_size))
    values = space.describe(params, config.render_config(space))
    scale = scale or DescriptorScale.fit(values)
    sound = scale.normalize(values).reshape(*z.shape[:3], len(scale.names))  # [A, L, S, K]
    params = params.double().reshape(*z.shape[:3], -1)
    param_score = (params.diff(dim=2).abs().sum(2).mean(-1) / 2).nanmean(0)  # [L]
    sound_score = (sound.diff(dim=2).abs().sum(2) / 2).nanmean(0).nanmean(-1)  # [L]
    slopes = _slopes(sound, knob.double())  # [A, L, K]
    effects = slopes.nanmean(0)
    rank = sound_score / sound_score.max().clamp_min(1e-12) + _PARAM_WEIGHT * param_score / param_score.max().clamp_min(
        1e-12
    )
    macros = [
        _macro(
            d,
            float(center[d]),
            float(span[d]),
            float(sound_score[d]),
            float(param_score[d]),
            slopes[:, d],
            effects[d],
            scale,
        )
        for d in torch.argsort(torch.nan_to_num(rank, nan=-1.0), descending=True).tolist()
    ]
    return MacroSet(macros, config.visible, center.tolist(), scale)


def _check_reference(reference: Tensor, latent_size: int) -> Tensor:
    reference = torch.as_tensor(reference, dtype=torch.float32)
    if reference.dim() != 2 or reference.shape[1] != latent_size or len(reference) < 2:
        raise ValueError(f"reference latents must be [n >= 2, {latent_size}], got {list(reference.shape)}")
    if not torch.isfinite(reference).all():
        raise ValueError("reference latents contain NaN or infinity")
    return reference


def _anchors(reference: Tensor, count: int, seed: int) -> Tensor:
    order = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))
    return reference[order[: min(count, len(reference))]]


def _sweep_latents(anchors: Tensor, center: Tensor, span: Tensor, knob: Tensor) -> Tensor:
    """``[A, L, S, L]``: anchor ``a`` with dimension ``d`` set to ``center + knob[s] * span``."""
    a, latent_size, steps = len(anchors), anchors.shape[1], len(knob)
    z = anchors[:, None, None, :].expand(a, latent_size, steps, latent_size).clone()
    dims = torch.arange(latent_size)
    z[:, dims, :, dims] = (center[:, None] + knob[None, :] * span[:, None])[None].expand(a, -1, -1).permute(1, 0, 2)
    return z


def _slopes(values: Tensor, knob: Tensor) -> Tensor:
    """Least-squares slope over the step axis (dim 2) of ``values [A, L, S, K]`` against ``knob [S]``."""
    centred = knob - knob.mean()
    mean = values.mean(2, keepdim=True)
    return ((values - mean) * centred[None, None, :, None]).sum(2) / centred.square().sum()


def _macro(
    dim: int,
    center: float,
    span: float,
    sound: float,
    param: float,
    slopes: Tensor,
    effects: Tensor,
    scale: DescriptorScale,
) -> Macro:
    effect = {name: round(float(value), 6) for name, value in zip(scale.names, effects, strict=True)}
    name, label = describe_direction({k: v for k, v in effect.items() if v == v})
    top = int(torch.nan_to_num(effects.abs(), nan=-1.0).argmax())
    spread = float(slopes[:, top].abs().nanmean())
    consistency = abs(float(slopes[:, top].nanmean())) / spread if spread > 0 else 0.0
    return Macro(dim, name, label, center, span, sound, param, effect, round(consistency, 6))
