"""The FlowSynth paper's baselines: direct regressions from the log-mel to the parameters (MLP, CNN, ResNet).

Each predicts ``sigmoid(net(x))`` in (0, 1) and is trained with the squared error on the parameters.
They are deterministic: their posterior is a :class:`~flowsynth.models.distributions.PointMass`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from flowsynth.models.base import INPUT_SHAPE, LossWeights, ParamModel
from flowsynth.models.distributions import PointMass
from flowsynth.models.nets import ConvEncoder, ResidualEncoder, mlp

__all__ = ["CNNRegressor", "MLPRegressor", "ResNetRegressor"]

DEFAULT_CHANNELS = (32, 64, 128, 128)


class _Regressor(ParamModel):
    """A network whose sigmoid output is the parameter estimate."""

    net: nn.Module

    def _infer(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.net(x))

    def posterior(self, features: Tensor) -> Distribution:
        return PointMass(torch.sigmoid(self.net(self.normalize(features))))

    def loss(
        self, features: Tensor, params: Tensor, weights: LossWeights, tags: Tensor | None = None
    ) -> dict[str, Tensor]:
        error = (torch.sigmoid(self.net(self.normalize(features))) - params).square()
        reg = error.sum(-1).mean()
        return {"loss": reg, "reg": reg, "param_mse": error.mean().detach()}


class MLPRegressor(_Regressor):
    """MLP baseline: the flattened log-mel through dense layers (``Linear -> LeakyReLU -> Dropout``).

    Arguments:
        num_params: Number of learned synth parameters.
        input_shape: ``(n_mels, n_frames)``.
        hidden: Hidden layer sizes.
        dropout: Dropout after each hidden activation.

    Example:
        >>> model = MLPRegressor(16, hidden=(32, 32))
        >>> model.infer(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 16])
    """

    name: ClassVar[str] = "mlp"

    def __init__(
        self,
        num_params: int,
        input_shape: tuple[int, int] = INPUT_SHAPE,
        hidden: tuple[int, ...] = (1024, 1024, 1024),
        dropout: float = 0.2,
    ) -> None:
        super().__init__(num_params, input_shape)
        self.config.update(hidden=list(hidden), dropout=dropout)
        self.net = nn.Sequential(nn.Flatten(), mlp(math.prod(self.input_shape), tuple(hidden), num_params, dropout))


class _EncoderRegressor(_Regressor):
    """A convolutional encoder of the log-mel (:attr:`encoder_class`), then an MLP head with one hidden layer.

    Arguments:
        num_params: Number of learned synth parameters.
        input_shape: ``(n_mels, n_frames)``.
        channels: Channels of the encoder's stages.
        hidden: Size of the encoder's feature vector and of the head's hidden layer.
        dropout: Dropout after the dense activations.
    """

    encoder_class: ClassVar[type[nn.Module]]

    def __init__(
        self,
        num_params: int,
        input_shape: tuple[int, int] = INPUT_SHAPE,
        channels: tuple[int, ...] = DEFAULT_CHANNELS,
        hidden: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(num_params, input_shape)
        self.config.update(channels=list(channels), hidden=hidden, dropout=dropout)
        encoder = self.encoder_class(self.input_shape, tuple(channels), hidden, dropout)
        self.net = nn.Sequential(encoder, mlp(hidden, (hidden,), num_params, dropout))


class CNNRegressor(_EncoderRegressor):
    """CNN baseline: the convolutional encoder (:class:`~flowsynth.models.nets.ConvEncoder`) then an MLP head.

    Takes the encoder regressors' arguments (``num_params``, ``input_shape``, ``channels``, ``hidden``,
    ``dropout``); ``channels`` are those of the four stride-2 convolution stages.

    Example:
        >>> model = CNNRegressor(16, channels=(4, 4, 4, 4), hidden=8)
        >>> model.infer(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 16])
    """

    name: ClassVar[str] = "cnn"
    encoder_class = ConvEncoder


class ResNetRegressor(_EncoderRegressor):
    """ResNet baseline: a residual CNN (:class:`~flowsynth.models.nets.ResidualEncoder`) then an MLP head.

    Takes the encoder regressors' arguments (``num_params``, ``input_shape``, ``channels``, ``hidden``,
    ``dropout``); ``channels`` are those of the stem and of the residual stages.

    Example:
        >>> model = ResNetRegressor(16, channels=(4, 4, 4, 4), hidden=8)
        >>> model.infer(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 16])
    """

    name: ClassVar[str] = "resnet"
    encoder_class = ResidualEncoder
