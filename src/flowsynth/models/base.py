"""The interface every model answers: log-mel features -> a distribution over synth parameters.

All methods take **raw** log-mel features ``[B, 64, 80]`` (as :func:`flowsynth.features.log_mel` makes
them, and as datasets store them); the model normalizes them with the :class:`FeatureNorm` fitted on
its training split, which it keeps as buffers. Parameters are normalized to [0, 1].

* ``model(features)`` / :meth:`ParamModel.posterior`: a :class:`torch.distributions.Distribution`
  over parameters to draw candidates from.
* :meth:`ParamModel.infer`: one deterministic estimate ``[B, n_params]``: the posterior mean for latent
  models (never a sample), in eval mode whatever mode the model is in.
* Latent models (:class:`LatentModel`) also answer :meth:`~LatentModel.encode`,
  :meth:`~LatentModel.latent_mean`, :meth:`~LatentModel.latent_to_params`,
  :meth:`~LatentModel.params_to_latent` and :meth:`~LatentModel.decode`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from flowsynth.features.norm import FeatureNorm

__all__ = ["LatentModel", "LossWeights", "ParamModel"]

#: The model input shape: (mel bands, frames).
INPUT_SHAPE = (64, 80)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms at one point of training (the warm-ups change them).

    Arguments:
        beta: Latent regularization (KL for VAEs, MMD for the WAE).
        gamma: Parameter regression.
        delta: Disentangling (``flow_dis`` only).
    """

    beta: float = 1.0
    gamma: float = 1.0
    delta: float = 1.0


class ParamModel(nn.Module, abc.ABC):
    """Base of every model: maps raw log-mel features to synth parameters in [0, 1].

    Subclasses set :attr:`name`, call ``super().__init__(num_params, input_shape)`` and record their
    other constructor arguments in :attr:`config` (JSON-ready), so that
    ``type(model)(**model.config)`` rebuilds the same architecture.
    """

    #: Registry name (``"mlp"``, ``"flow_reg"``, ...).
    name: ClassVar[str] = "model"
    #: Whether the model has a latent space (encode / decode / latent_to_params).
    is_latent: ClassVar[bool] = False

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, num_params: int, input_shape: tuple[int, int] = INPUT_SHAPE) -> None:
        super().__init__()
        if num_params < 2:
            raise ValueError(f"num_params must be at least 2 (the synth's learned parameters), got {num_params}")
        if len(input_shape) != 2 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (n_mels, n_frames), got {input_shape}")
        self.num_params = int(num_params)
        self.input_shape = (int(input_shape[0]), int(input_shape[1]))
        self.config: dict[str, Any] = {"num_params": self.num_params, "input_shape": list(self.input_shape)}
        #: Checkpoint metadata (synth, render conditions, feature norm, training), set by ``load_model``.
        self.meta: dict[str, Any] = {}
        self.register_buffer("feature_mean", torch.tensor(0.0))
        self.register_buffer("feature_std", torch.tensor(1.0))

    # -- features ---------------------------------------------------------------------------------

    def set_feature_norm(self, norm: FeatureNorm) -> None:
        """Uses ``norm`` (fitted on the training split) to normalize every input."""
        state = norm.state_dict()
        self.feature_mean.fill_(state["mean"])
        self.feature_std.fill_(state["std"])

    @property
    def feature_norm(self) -> FeatureNorm:
        """The feature normalization the model applies."""
        return FeatureNorm(float(self.feature_mean), float(self.feature_std))

    def normalize(self, features: Tensor) -> Tensor:
        """Checks the shape of raw log-mel features ``[B, 64, 80]`` and normalizes them."""
        if not isinstance(features, Tensor):
            raise TypeError(f"features must be a torch.Tensor [batch, {self.input_shape[0]}, {self.input_shape[1]}]")
        if features.dim() != 3 or tuple(features.shape[1:]) != self.input_shape:
            raise ValueError(
                f"features must have shape [batch, {self.input_shape[0]}, {self.input_shape[1]}] (log-mel), "
                f"got {list(features.shape)}"
            )
        return (features.to(self.feature_mean) - self.feature_mean) / self.feature_std

    # -- the interface ----------------------------------------------------------------------------

    def forward(self, features: Tensor) -> Distribution:
        """The posterior over parameters (zuko-style: a module call returns a distribution)."""
        return self.posterior(features)

    @abc.abstractmethod
    def posterior(self, features: Tensor) -> Distribution:
        """Distribution over parameters ``[B, n_params]`` given raw log-mel features ``[B, 64, 80]``."""

    @abc.abstractmethod
    def _infer(self, x: Tensor) -> Tensor:
        """Deterministic estimate from *normalized* features."""

    def infer(self, features: Tensor) -> Tensor:
        """One deterministic estimate of the parameters ``[B, n_params]`` in [0, 1], without gradients.

        Runs in eval mode (batch norm statistics, no dropout) and restores the previous mode.
        """
        with torch.no_grad(), self.evaluating():
            return self._infer(self.normalize(features))

    @abc.abstractmethod
    def loss(
        self, features: Tensor, params: Tensor, weights: LossWeights, tags: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Training loss on a batch: ``{"loss": total, ...terms}``, each a scalar averaged over the batch.

        Arguments:
            features: Raw log-mel features ``[B, 64, 80]``.
            params: True parameters ``[B, n_params]`` in [0, 1].
            weights: Weights of the terms.
            tags: Semantic tags ``[B, n_pairs]`` in {-1, 0, +1} (used by ``flow_dis`` only).
        """

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Context in which the model is in eval mode; the previous mode is restored after."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return f"num_params={self.num_params}, input_shape={self.input_shape}"


class LatentModel(ParamModel):
    """A model with a latent space: an encoder to ``z``, a decoder back to features, and ``z <-> params``."""

    is_latent: ClassVar[bool] = True
    latent_size: int

    @abc.abstractmethod
    def encode(self, features: Tensor) -> Distribution:
        """Posterior ``q(z | x)`` over the latent given raw log-mel features."""

    @abc.abstractmethod
    def _latent_mean(self, x: Tensor) -> Tensor:
        """Posterior mean (or flow image of the base mean) from normalized features."""

    def latent_mean(self, features: Tensor) -> Tensor:
        """The deterministic latent of each sound ``[B, latent_size]`` (no sampling), without gradients."""
        with torch.no_grad(), self.evaluating():
            return self._latent_mean(self.normalize(features))

    @abc.abstractmethod
    def latent_to_params(self, z: Tensor) -> Tensor:
        """Parameters ``[B, n_params]`` in [0, 1] of latents ``[B, latent_size]``."""

    @abc.abstractmethod
    def _decode(self, z: Tensor) -> Tensor:
        """Normalized features from latents."""

    def decode(self, z: Tensor) -> Tensor:
        """Raw log-mel features ``[B, 64, 80]`` that the decoder reconstructs from latents ``[B, latent_size]``."""
        return self._decode(z) * self.feature_std + self.feature_mean

    def _infer(self, x: Tensor) -> Tensor:
        return self.latent_to_params(self._latent_mean(x))

    def params_to_latent(self, params: Tensor, steps: int = 300, lr: float = 0.05) -> Tensor:
        """Latents ``[B, latent_size]`` whose parameters are closest to ``params`` (an approximate inverse).

        The regressor of these models is not invertible, so this searches ``z`` by gradient descent on
        ``|latent_to_params(z) - params|^2 + 1e-3 |z|^2`` from ``z = 0`` (Adam, ``steps`` steps). The
        flow models override it with their exact inverse.
        """
        params = _check_params(params, self.num_params)
        z = torch.zeros(params.shape[0], self.latent_size, device=params.device, requires_grad=True)
        optimizer = torch.optim.Adam([z], lr=lr)
        with self.evaluating(), _frozen(self):
            for _ in range(steps):
                optimizer.zero_grad()
                error = (self.latent_to_params(z) - params).square().sum(-1) + 1e-3 * z.square().sum(-1)
                error.sum().backward()
                optimizer.step()
        return z.detach()


def _check_params(params: Tensor, num_params: int) -> Tensor:
    if not isinstance(params, Tensor) or params.dim() != 2 or params.shape[1] != num_params:
        shape = list(params.shape) if isinstance(params, Tensor) else type(params).__name__
        raise ValueError(f"params must be a tensor [batch, {num_params}] in [0, 1], got {shape}")
    if not torch.isfinite(params).all() or params.min() < 0 or params.max() > 1:
        raise ValueError("params must be finite and normalized to [0, 1]")
    return params.float()


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Context in which the module's parameters need no gradient."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
