"""FlowSynth's flow models: the regression flow (``flow_reg``) and the disentangling flow (``flow_dis``).

``flow_reg`` is a VAE-flow (:class:`~flowsynth.models.autoencoders.VAEFlow`) whose latent, of size
the number of learned parameters, is mapped to the parameters by a
:class:`~flowsynth.models.flows.RegressionFlow` instead of an MLP. The map is invertible, so the
model runs both ways: ``audio -> z -> params`` and ``params -> z`` (a preset placed on the latent
map without rendering it). The posterior over parameters is a proper normalizing flow (base
Gaussian -> IAF -> regression flow -> sigmoid), with a density.

Trained only forwards (latent -> parameters), the regression flow learns to squeeze large regions of
the latent space into the parameters the posterior reaches, and its exact inverse of a preset's
parameters lands astronomically far away (|z| ~ 1e54 for every dataset preset in a model trained
that way). So the loss also holds the flow to its inverse: the negative log-likelihood of the true
parameters under ``params = f(z)``, ``z ~ N(z_x, I)`` around the sound's deterministic latent ``z_x``
(``0.5 |f^-1(params) - z_x|^2 - log|det J_f^-1(params)|``, weight ``inverse_weight``), which puts a
preset's latent where its sound's latent is.

``flow_dis`` adds a :class:`~flowsynth.models.flows.DisentanglingFlow` ``w = g(z)`` trained, from
the tagged sounds only, so that ``w_k`` is about ``-1`` for the first tag of pair ``k`` and ``+1``
for the second, with the other coordinates standard normal. It learns from the two places a sound can
have in the latent space: the latent the encoder gives its audio (``z_x``, where a dropped sound lands)
and the exact inverse of its parameters (where its preset is placed); the two are about one unit apart
per coordinate, since the encoder does not hear every parameter. Both are detached, so the disentangling
never degrades the regression.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution
from zuko.distributions import DiagNormal, NormalizingFlow
from zuko.transforms import ComposedTransform

from flowsynth.models.autoencoders import VAEFlow
from flowsynth.models.base import LossWeights, _check_params
from flowsynth.models.flows import DisentanglingFlow, RegressionFlow

__all__ = ["DisentanglingFlowModel", "RegressionFlowModel"]

_LOG_2PI = math.log(2 * math.pi)
#: Presets whose inverse lands farther than this (early in training) do not train the disentangling flow.
_PLACED_LIMIT = 50.0


class RegressionFlowModel(VAEFlow):
    """VAE-flow whose latent maps to the parameters through an invertible regression flow (``flow_reg``).

    Arguments:
        num_params: Number of learned synth parameters; also the latent size.
        reg_transforms: Number of transforms of the regression flow.
        reg_flow_hidden: Hidden sizes of the regression flow's conditioners.
        reg_flow_kind: Transform family of the regression flow (``"maf"``, ``"nsf"``, ``"realnvp"``).
        reg_weight: Weight of the parameter squared error (the MLP regressor's: the original code's
            tenth of it left the parameters under-fitted on our data).
        inverse_weight: Weight of the inverse term (the true parameters' negative log-likelihood);
            0 trains the flow forwards only.
        **kwargs: The other arguments of :class:`~flowsynth.models.autoencoders.VAEFlow`.

    Example:
        >>> model = RegressionFlowModel(4, channels=(4, 4, 4, 4), hidden=16, flow_transforms=1, reg_transforms=2)
        >>> z = model.latent_mean(torch.zeros(2, 64, 80))
        >>> params = model.latent_to_params(z)
        >>> torch.allclose(model.params_to_latent(params), z, atol=1e-4)
        True
    """

    name: ClassVar[str] = "flow_reg"

    def __init__(
        self,
        num_params: int,
        reg_transforms: int = 4,
        reg_flow_hidden: tuple[int, ...] = (128, 128),
        reg_flow_kind: str = "maf",
        reg_weight: float = 1000.0,
        inverse_weight: float = 1.0,
        **kwargs,
    ) -> None:
        if kwargs.get("latent_size") not in (None, num_params):
            raise ValueError(f"{self.name}'s latent size is the number of parameters ({num_params})")
        kwargs.pop("reg_hidden", None)
        self._reg_args = (int(reg_transforms), tuple(reg_flow_hidden), reg_flow_kind)
        super().__init__(num_params, reg_weight=reg_weight, **kwargs)
        del self.config["reg_hidden"]
        self.inverse_weight = float(inverse_weight)
        self.config.update(
            reg_transforms=int(reg_transforms),
            reg_flow_hidden=list(reg_flow_hidden),
            reg_flow_kind=reg_flow_kind,
            inverse_weight=self.inverse_weight,
        )

    def _build_regressor(self, reg_hidden: tuple[int, ...]) -> None:
        transforms, hidden, kind = self._reg_args
        self.regression_flow = RegressionFlow(self.latent_size, transforms, hidden, kind)

    def latent_to_params(self, z: Tensor) -> Tensor:
        return self.regression_flow()(z)

    def params_to_latent(self, params: Tensor, steps: int = 0, lr: float = 0.0) -> Tensor:
        """The exact inverse of :meth:`latent_to_params` (parameters clamped to [1e-4, 1 - 1e-4] first).

        ``steps`` and ``lr`` are ignored (they tune the other models' search).
        """
        with torch.no_grad():
            return self.regression_flow().inv(_check_params(params, self.num_params))

    def inverse_nll(self, center: Tensor, params: Tensor) -> Tensor:
        """Per-sound ``0.5 |f^-1(params) - center|^2 - log|det J_f^-1(params)|`` ``[B]`` (constant dropped).

        Rows whose inverse is not finite count as 0 (the step is then skipped by the trainer if the
        gradient is not finite either).
        """
        return self._inverse_nll(center, params)[0]

    def _inverse_nll(self, center: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`inverse_nll` and the presets' latents ``f^-1(params)`` it was computed from."""
        z, ladj = self.regression_flow().inv.call_and_ladj(params)
        nll = 0.5 * (z - center).square().sum(-1) - ladj
        return torch.where(torch.isfinite(nll), nll, torch.zeros_like(nll)), z

    def _extra_loss(
        self, center: Tensor, params: Tensor, tags: Tensor | None, weights: LossWeights
    ) -> dict[str, Tensor]:
        return self._inverse_loss(center, params, weights)[0]

    def _inverse_loss(
        self, center: Tensor, params: Tensor, weights: LossWeights
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """The weighted inverse term and the presets' latents it placed (``{}`` and None when it is off)."""
        if not self.inverse_weight:
            return {}, None
        nll, placed = self._inverse_nll(center, params)
        return {"inverse": weights.gamma * self.inverse_weight * nll.mean()}, placed

    def posterior(self, features: Tensor) -> Distribution:
        """The normalizing flow ``q(params | x)``: base Gaussian -> IAF (given x) -> regression flow."""
        h, mean, scale = self._heads(self.normalize(features))
        to_params = ComposedTransform(self.posterior_flow(h), self.regression_flow())
        return NormalizingFlow(to_params.inv, DiagNormal(mean, scale))


class DisentanglingFlowModel(RegressionFlowModel):
    """``flow_reg`` plus a disentangling flow that aligns one latent direction per pair of semantic tags.

    Arguments:
        num_params: Number of learned synth parameters; also the latent size.
        pairs: Tag pairs, ``[[low, high], ...]`` (e.g. ``[["dark", "bright"]]``); pair ``k`` drives ``w_k``.
        semantic_scale: Standard deviation of ``w_k`` around -1 / +1 for tagged sounds.
        dis_weight: Weight of the disentangling term.
        dis_on_presets: Also train the disentangling flow on the presets' latents (the inverse of the
            regression flow), not only on the encoder's: the knobs then work around loaded presets too.
        dis_transforms: Number of transforms of the disentangling flow.
        dis_hidden: Hidden sizes of its conditioners.
        dis_kind: Its transform family.
        **kwargs: The other arguments of :class:`RegressionFlowModel`.

    Example:
        >>> model = DisentanglingFlowModel(4, pairs=[["dark", "bright"]], channels=(4, 4, 4, 4), hidden=16)
        >>> z = torch.randn(3, 4)
        >>> torch.allclose(model.from_semantic(model.to_semantic(z)), z, atol=1e-4)
        True
    """

    name: ClassVar[str] = "flow_dis"

    def __init__(
        self,
        num_params: int,
        pairs: list[list[str]] | tuple[tuple[str, str], ...] = (("dark", "bright"),),
        semantic_scale: float = 0.5,
        dis_weight: float = 1.0,
        dis_transforms: int = 4,
        dis_hidden: tuple[int, ...] = (64, 64),
        dis_kind: str = "realnvp",
        dis_on_presets: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(num_params, **kwargs)
        self.pairs = [(str(low), str(high)) for low, high in pairs]
        if not self.pairs or len(self.pairs) > self.latent_size:
            raise ValueError(f"flow_dis needs 1 to {self.latent_size} tag pairs, got {len(self.pairs)}")
        if any(low == high for low, high in self.pairs):
            raise ValueError(f"each tag pair needs two different tags, got {self.pairs}")
        self.semantic_scale, self.dis_weight = float(semantic_scale), float(dis_weight)
        self.dis_on_presets = bool(dis_on_presets)
        self.config.update(
            pairs=[list(p) for p in self.pairs],
            semantic_scale=self.semantic_scale,
            dis_weight=self.dis_weight,
            dis_transforms=int(dis_transforms),
            dis_hidden=list(dis_hidden),
            dis_kind=dis_kind,
            dis_on_presets=self.dis_on_presets,
        )
        self.disentangling = DisentanglingFlow(self.latent_size, dis_transforms, tuple(dis_hidden), dis_kind)

    def to_semantic(self, z: Tensor) -> Tensor:
        """Semantic coordinates ``w = g(z)``; ``w[:, k]`` follows tag pair ``k`` (low tag -1, high tag +1)."""
        return self.disentangling()(z)

    def from_semantic(self, w: Tensor) -> Tensor:
        """The latent of semantic coordinates (exact inverse of :meth:`to_semantic`)."""
        return self.disentangling().inv(w)

    def _extra_loss(
        self, center: Tensor, params: Tensor, tags: Tensor | None, weights: LossWeights
    ) -> dict[str, Tensor]:
        extra, placed = self._inverse_loss(center, params, weights)
        if tags is None:
            return extra
        if tags.dim() != 2 or tags.shape[1] != len(self.pairs):
            raise ValueError(f"tags must be [batch, {len(self.pairs)}] in {{-1, 0, 1}}, got {list(tags.shape)}")
        dis = self.disentangling_loss(center.detach(), tags)
        if self.dis_on_presets:
            # the inverse term's latents when it ran (the same inverse), detached: the regression flow is not moved
            placed = self.params_to_latent(params) if placed is None else placed.detach()
            reachable = torch.isfinite(placed).all(-1) & (placed.abs() < _PLACED_LIMIT).all(-1)
            placed = torch.where(reachable[:, None], placed, torch.zeros_like(placed))
            dis = 0.5 * (dis + self.disentangling_loss(placed, tags * reachable[:, None].to(tags)))
        return extra | {"dis": weights.delta * self.dis_weight * dis}

    def disentangling_loss(self, z: Tensor, tags: Tensor) -> Tensor:
        """Negative log-likelihood of ``g(z)`` under the tag targets, averaged over the tagged sounds only.

        Arguments:
            z: Latents ``[B, latent_size]``.
            tags: ``[B, n_pairs]``: -1 (first tag of the pair), +1 (second tag) or 0 (not tagged).
        """
        w, ladj = self.disentangling().call_and_ladj(z)
        target = torch.zeros_like(w)
        target[:, : tags.shape[1]] = tags.to(w)
        scale = torch.where(target != 0, torch.full_like(w, self.semantic_scale), torch.ones_like(w))
        log_p = (-0.5 * ((w - target) / scale).square() - scale.log() - 0.5 * _LOG_2PI).sum(-1) + ladj
        tagged = (tags != 0).any(-1).to(w)
        return -(log_p * tagged).sum() / tagged.sum().clamp_min(1.0)
