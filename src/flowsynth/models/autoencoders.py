"""Auto-encoders with a parameter regressor on the latent: AE, VAE, WAE (MMD) and VAE-flow (IAF posterior).

All four share one architecture: the convolutional encoder to a feature vector ``h``, a latent head,
the mirrored decoder back to the log-mel, and an MLP regressor from the latent to the parameters.
The loss of a batch (per-sound sums, averaged over the batch) is::

    recon + beta * latent_weight * latent_term + gamma * reg_weight * regression

with ``recon`` the squared error of the normalized log-mel, ``latent_term`` the KL divergence to
N(0, I) (VAE, VAE-flow, Monte Carlo for the flow), the MMD to N(0, I) (WAE) or nothing (AE), and
``regression`` the squared error of the parameters predicted from the (sampled) latent. ``beta``
and ``gamma`` are the warm-up multipliers of :class:`~flowsynth.models.base.LossWeights`.

Deterministic estimates use the posterior mean (for VAE-flow: the base mean pushed through the
input-conditioned IAF, which is the flow posterior's coordinate-wise median point), never a sample.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from zuko.distributions import DiagNormal, NormalizingFlow

from flowsynth.models.base import INPUT_SHAPE, LatentModel, LossWeights
from flowsynth.models.distributions import PointMass, PushForward
from flowsynth.models.flows import PosteriorIAF
from flowsynth.models.nets import ConvDecoder, ConvEncoder, mlp
from flowsynth.models.regressors import DEFAULT_CHANNELS

__all__ = ["AE", "VAE", "VAEFlow", "WAE", "mmd_imq"]

_MIN_SCALE = 1e-4
_IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_LOG_2PI = math.log(2 * math.pi)


def mmd_imq(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD^2 between samples ``x`` and ``y`` ``[n, d]`` with inverse multiquadric kernels (WAE's).

    Sums ``C / (C + |a - b|^2)`` over ``C = 2 d s^2`` for s in 0.1 ... 10.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g)
        >>> bool(mmd_imq(x, y) < mmd_imq(x, y + 3.0))
        True
    """
    n, dim = x.shape
    if n < 2:
        raise ValueError("MMD needs at least 2 samples")
    off_diagonal = 1.0 - torch.eye(n, dtype=x.dtype, device=x.device)
    total = x.new_zeros(())
    for scale in _IMQ_SCALES:
        c = 2.0 * dim * scale**2
        k_xx, k_yy, k_xy = (c / (c + torch.cdist(a, b).square()) for a, b in ((x, x), (y, y), (x, y)))
        total = total + ((k_xx + k_yy) * off_diagonal).sum() / (n * (n - 1)) - 2.0 * k_xy.mean()
    return total


def _standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.square() + _LOG_2PI).sum(-1)


class _AutoEncoder(LatentModel):
    """Encoder, decoder and latent-to-parameters map; subclasses choose the posterior and the latent term."""

    stochastic: ClassVar[bool] = False

    def __init__(
        self,
        num_params: int,
        input_shape: tuple[int, int] = INPUT_SHAPE,
        latent_size: int | None = None,
        channels: tuple[int, ...] = DEFAULT_CHANNELS,
        hidden: int = 256,
        reg_hidden: tuple[int, ...] = (256, 256),
        reg_weight: float = 1000.0,
        latent_weight: float = 1.0,
    ) -> None:
        super().__init__(num_params, input_shape)
        self.latent_size = int(latent_size or num_params)
        self.reg_weight, self.latent_weight = float(reg_weight), float(latent_weight)
        self.config.update(
            latent_size=self.latent_size,
            channels=list(channels),
            hidden=hidden,
            reg_hidden=list(reg_hidden),
            reg_weight=self.reg_weight,
            latent_weight=self.latent_weight,
        )
        self.encoder = ConvEncoder(self.input_shape, tuple(channels), hidden)
        self.decoder = ConvDecoder(self.input_shape, self.latent_size, tuple(channels), hidden)
        self.to_mean = nn.Linear(hidden, self.latent_size)
        self.to_scale = nn.Linear(hidden, self.latent_size) if self.stochastic else None
        self._build_regressor(reg_hidden)

    def _build_regressor(self, reg_hidden: tuple[int, ...]) -> None:
        self.regressor = mlp(self.latent_size, tuple(reg_hidden), self.num_params)

    # -- posterior ----------------------------------------------------------------------------

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Encoder features ``h``, posterior mean and scale (None for deterministic encoders)."""
        h = self.encoder(x)
        scale = None
        if self.to_scale is not None:
            scale = nn.functional.softplus(self.to_scale(h)) + _MIN_SCALE
        return h, self.to_mean(h), scale

    def _latent_mean(self, x: Tensor) -> Tensor:
        return self._heads(x)[1]

    def _latent_distribution(self, x: Tensor) -> Distribution:
        _, mean, scale = self._heads(x)
        return PointMass(mean) if scale is None else DiagNormal(mean, scale)

    def encode(self, features: Tensor) -> Distribution:
        return self._latent_distribution(self.normalize(features))

    def posterior(self, features: Tensor) -> Distribution:
        return PushForward(self.encode(features), self.latent_to_params, self.num_params)

    # -- maps -----------------------------------------------------------------------------------

    def latent_to_params(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.regressor(z))

    def _decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    # -- training -------------------------------------------------------------------------------

    def _sample_latent(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A latent per sound for the loss, the latent term (0 for the AE) and the deterministic latent."""
        z = self._latent_mean(x)
        return z, z.new_zeros(()), z

    def _extra_loss(
        self, center: Tensor, params: Tensor, tags: Tensor | None, weights: LossWeights
    ) -> dict[str, Tensor]:
        """Further loss terms, already weighted, from the deterministic latents (none here)."""
        return {}

    def loss(
        self, features: Tensor, params: Tensor, weights: LossWeights, tags: Tensor | None = None
    ) -> dict[str, Tensor]:
        x = self.normalize(features)
        z, latent, center = self._sample_latent(x)
        recon = (self._decode(z) - x).square().sum((1, 2)).mean()
        error = (self.latent_to_params(z) - params).square()
        reg = error.sum(-1).mean()
        total = recon + weights.beta * self.latent_weight * latent + weights.gamma * self.reg_weight * reg
        out = {"recon": recon, "latent": latent, "reg": reg, "param_mse": error.mean().detach()}
        extra = self._extra_loss(center, params, tags, weights)
        for term in extra.values():
            total = total + term
        return {"loss": total, **out, **extra}


class AE(_AutoEncoder):
    """Auto-encoder with a parameter regressor on its (deterministic) latent.

    Example:
        >>> model = AE(8, channels=(4, 4, 4, 4), hidden=16, reg_hidden=(16,))
        >>> model.infer(torch.zeros(2, 64, 80)).shape, model.decode(torch.zeros(2, 8)).shape
        (torch.Size([2, 8]), torch.Size([2, 64, 80]))
    """

    name: ClassVar[str] = "ae"


class VAE(_AutoEncoder):
    """Variational auto-encoder (Gaussian posterior, KL to N(0, I)) with a parameter regressor on its latent.

    Example:
        >>> model = VAE(8, channels=(4, 4, 4, 4), hidden=16, reg_hidden=(16,))
        >>> model.encode(torch.zeros(2, 64, 80)).sample().shape
        torch.Size([2, 8])
    """

    name: ClassVar[str] = "vae"
    stochastic: ClassVar[bool] = True

    def _sample_latent(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, mean, scale = self._heads(x)
        assert scale is not None
        z = mean + scale * torch.randn_like(mean)
        kl = 0.5 * (mean.square() + scale.square() - 1.0).sum(-1) - scale.log().sum(-1)
        return z, kl.mean(), mean


class WAE(_AutoEncoder):
    """Wasserstein auto-encoder (WAE-MMD): a deterministic encoder whose latents are pulled to N(0, I) by an MMD.

    The latent term is :func:`mmd_imq` between the batch's latents and as many N(0, I) samples,
    weighted by ``latent_weight`` (100 by default, WAE's value for large inputs).

    Example:
        >>> model = WAE(8, channels=(4, 4, 4, 4), hidden=16, reg_hidden=(16,))
        >>> model.infer(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 8])
    """

    name: ClassVar[str] = "wae"

    def __init__(self, num_params: int, latent_weight: float = 100.0, **kwargs) -> None:
        super().__init__(num_params, latent_weight=latent_weight, **kwargs)

    def _sample_latent(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self._latent_mean(x)
        return z, mmd_imq(z, torch.randn_like(z)), z


class VAEFlow(_AutoEncoder):
    """VAE whose Gaussian posterior is refined by an inverse autoregressive flow conditioned on the input.

    ``z0 ~ N(mu(x), sigma(x))``, ``zK = IAF(z0; h(x))``; the KL term is the one-sample Monte Carlo
    estimate ``log q0(z0) - log|det dzK/dz0| - log p(zK)``.

    Arguments:
        num_params: Number of learned synth parameters.
        flow_transforms: Number of IAF transforms.
        flow_hidden: Hidden sizes of the IAF conditioners.
        flow_kind: Transform family of the IAF (``"maf"`` affine or ``"nsf"`` spline autoregressive).
        **kwargs: The other arguments of the auto-encoders (``latent_size``, ``channels``, ...).

    Example:
        >>> model = VAEFlow(8, channels=(4, 4, 4, 4), hidden=16, reg_hidden=(16,), flow_transforms=2)
        >>> model.encode(torch.zeros(2, 64, 80)).rsample().shape
        torch.Size([2, 8])
    """

    name: ClassVar[str] = "vae_flow"
    stochastic: ClassVar[bool] = True

    def __init__(
        self,
        num_params: int,
        flow_transforms: int = 4,
        flow_hidden: tuple[int, ...] = (128, 128),
        flow_kind: str = "maf",
        **kwargs,
    ) -> None:
        super().__init__(num_params, **kwargs)
        self.config.update(flow_transforms=flow_transforms, flow_hidden=list(flow_hidden), flow_kind=flow_kind)
        hidden = self.config["hidden"]
        self.posterior_flow = PosteriorIAF(self.latent_size, hidden, flow_transforms, tuple(flow_hidden), flow_kind)

    def _latent_mean(self, x: Tensor) -> Tensor:
        h, mean, _ = self._heads(x)
        return self.posterior_flow(h)(mean)

    def _latent_distribution(self, x: Tensor) -> Distribution:
        h, mean, scale = self._heads(x)
        return NormalizingFlow(self.posterior_flow(h).inv, DiagNormal(mean, scale))

    def _sample_latent(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h, mean, scale = self._heads(x)
        assert scale is not None
        flow = self.posterior_flow(h)
        noise = torch.randn_like(mean)
        zk, ladj = flow.call_and_ladj(mean + scale * noise)
        log_q = (-0.5 * (noise.square() + _LOG_2PI) - scale.log()).sum(-1) - ladj
        return zk, (log_q - _standard_normal_log_prob(zk)).mean(), flow(mean)
