"""Network blocks shared by the models: the convolutional encoder and decoder over the 64 x 80 log-mel, MLPs.

Every block spells its activation out (``conv -> batch norm -> activation``, then dropout as a layer
of its own), so no activation can silently be replaced by dropout.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["ConvDecoder", "ConvEncoder", "ResidualEncoder", "mlp"]

#: Kernel, stride and padding of every down/up-sampling convolution: each halves (doubles) both axes.
KERNEL, STRIDE, PADDING = 4, 2, 1


def _activation() -> nn.Module:
    return nn.LeakyReLU(0.2)


def mlp(in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0) -> nn.Sequential:
    """``Linear -> activation [-> dropout]`` per hidden size, then a final ``Linear`` without activation.

    Example:
        >>> mlp(4, (8, 8), 2)
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): LeakyReLU(negative_slope=0.2)
          (2): Linear(in_features=8, out_features=8, bias=True)
          (3): LeakyReLU(negative_slope=0.2)
          (4): Linear(in_features=8, out_features=2, bias=True)
        )
    """
    layers: list[nn.Module] = []
    for before, after in zip((in_features, *hidden), hidden, strict=False):
        layers += [nn.Linear(before, after), _activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden[-1] if hidden else in_features, out_features))
    return nn.Sequential(*layers)


def _reduced(shape: tuple[int, int], stages: int) -> tuple[int, int]:
    factor = STRIDE**stages
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(f"input shape {shape} must be divisible by {factor} ({stages} stride-2 stages)")
    return shape[0] // factor, shape[1] // factor


class ConvEncoder(nn.Module):
    """Strided 2D convolutions over a ``[B, n_mels, n_frames]`` log-mel, then a dense layer: ``[B, hidden]``.

    Each stage is ``Conv2d(kernel 4, stride 2) -> BatchNorm2d -> LeakyReLU``; 64 x 80 becomes 4 x 5
    after four stages.

    Arguments:
        input_shape: ``(n_mels, n_frames)``.
        channels: Output channels of each stage.
        hidden: Size of the output feature vector.
        dropout: Dropout after the dense layer's activation.

    Example:
        >>> import torch
        >>> ConvEncoder((64, 80), (8, 8, 8, 8), 16)(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self, input_shape: tuple[int, int], channels: Sequence[int], hidden: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for before, after in zip((1, *channels), channels, strict=False):
            layers += [nn.Conv2d(before, after, KERNEL, STRIDE, PADDING), nn.BatchNorm2d(after), _activation()]
        height, width = _reduced(tuple(input_shape), len(channels))  # type: ignore[arg-type]
        layers += [nn.Flatten(), nn.Linear(channels[-1] * height * width, hidden), _activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features.unsqueeze(1))


class _ResidualBlock(nn.Module):
    """``x + conv(act(bn(conv(x))))`` with batch norm and activation after the sum; a 1x1 skip when shapes change."""

    def __init__(self, before: int, after: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(before, after, 3, stride, 1, bias=False),
            nn.BatchNorm2d(after),
            _activation(),
            nn.Conv2d(after, after, 3, 1, 1, bias=False),
            nn.BatchNorm2d(after),
        )
        changed = stride != 1 or before != after
        self.skip = nn.Conv2d(before, after, 1, stride, bias=False) if changed else nn.Identity()
        self.out = _activation()

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x) + self.skip(x))


class ResidualEncoder(nn.Module):
    """A residual CNN over the log-mel: a strided stem, then one residual block per stage: ``[B, hidden]``.

    The stem halves both axes; every later stage halves them again, so ``len(channels)`` halvings
    in all, as :class:`ConvEncoder`.

    Example:
        >>> import torch
        >>> ResidualEncoder((64, 80), (8, 8, 8, 8), 16)(torch.zeros(2, 64, 80)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self, input_shape: tuple[int, int], channels: Sequence[int], hidden: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        stem = [nn.Conv2d(1, channels[0], KERNEL, STRIDE, PADDING), nn.BatchNorm2d(channels[0]), _activation()]
        blocks = [_ResidualBlock(b, a, 2) for b, a in itertools.pairwise(channels)]
        height, width = _reduced(tuple(input_shape), len(channels))  # type: ignore[arg-type]
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(channels[-1] * height * width, hidden), _activation()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*stem, _ResidualBlock(channels[0], channels[0], 1), *blocks, *head)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features.unsqueeze(1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a latent ``[B, d]`` to a (normalized) log-mel ``[B, n_mels, n_frames]``.

    Dense layers to ``channels[-1] x 4 x 5``, then ``ConvTranspose2d(kernel 4, stride 2) -> BatchNorm2d
    -> LeakyReLU`` stages; the last stage outputs one channel, linear (no normalization, no activation).

    Example:
        >>> import torch
        >>> ConvDecoder((64, 80), 3, (8, 8, 8, 8), 16)(torch.zeros(2, 3)).shape
        torch.Size([2, 64, 80])
    """

    def __init__(self, output_shape: tuple[int, int], latent: int, channels: Sequence[int], hidden: int) -> None:
        super().__init__()
        height, width = _reduced(tuple(output_shape), len(channels))  # type: ignore[arg-type]
        top = channels[-1]
        layers: list[nn.Module] = [nn.Linear(latent, hidden), _activation(), nn.Linear(hidden, top * height * width)]
        layers += [_activation(), nn.Unflatten(1, (top, height, width))]
        outs = (*reversed(channels[:-1]), 1)
        for i, (before, after) in enumerate(zip(reversed(channels), outs, strict=True)):
            layers.append(nn.ConvTranspose2d(before, after, KERNEL, STRIDE, PADDING))
            if i < len(channels) - 1:
                layers += [nn.BatchNorm2d(after), _activation()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(1)
