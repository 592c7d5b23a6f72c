"""Distributions the models return besides zuko's: a point mass, and a sample pushed through a map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

__all__ = ["PointMass", "PushForward"]

_Shape = Size | list[int] | tuple[int, ...]
_NO_SHAPE = Size()


class PointMass(Distribution):
    """All the mass on one point per batch item: the posterior of a deterministic model.

    Samples are copies of the point, so candidates drawn from it are all equal. It has no density.

    Arguments:
        point: The point, ``[*batch, d]``.

    Example:
        >>> d = PointMass(torch.tensor([[0.1, 0.2]]))
        >>> d.sample((3,)).shape
        torch.Size([3, 1, 2])
        >>> d.mean
        tensor([[0.1000, 0.2000]])
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    has_rsample = True

    def __init__(self, point: Tensor) -> None:
        self.point = point
        super().__init__(point.shape[:-1], point.shape[-1:], validate_args=False)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.real, 1)

    @property
    def mean(self) -> Tensor:
        return self.point

    @property
    def mode(self) -> Tensor:
        return self.point

    @property
    def variance(self) -> Tensor:
        return torch.zeros_like(self.point)

    def rsample(self, sample_shape: _Shape = _NO_SHAPE) -> Tensor:
        return self.point.expand(*sample_shape, *self.point.shape)

    def expand(self, batch_shape: _Shape, _instance: Distribution | None = None) -> PointMass:
        return PointMass(self.point.expand(*batch_shape, *self.event_shape))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError("a point mass has no density; compare samples to PointMass.mean instead")


class PushForward(Distribution):
    """The distribution of ``fn(z)`` for ``z ~ base``, where ``fn`` need not be invertible (so no density).

    Arguments:
        base: Distribution of ``z``, event shape ``[d]``.
        fn: Map applied to the last dimension of samples, ``[n, d] -> [n, p]``.
        event_size: Size ``p`` of ``fn``'s output.

    Example:
        >>> from torch.distributions import Independent, Normal
        >>> base = Independent(Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
        >>> d = PushForward(base, torch.sigmoid, 3)
        >>> d.sample((5,)).shape
        torch.Size([5, 2, 3])
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}

    def __init__(self, base: Distribution, fn: Callable[[Tensor], Tensor], event_size: int) -> None:
        self.base, self.fn = base, fn
        super().__init__(base.batch_shape, Size([event_size]), validate_args=False)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.base.has_rsample)

    def _apply(self, z: Tensor) -> Tensor:
        flat = self.fn(z.reshape(-1, z.shape[-1]))
        return flat.reshape(*z.shape[:-1], flat.shape[-1])

    def rsample(self, sample_shape: _Shape = _NO_SHAPE) -> Tensor:
        return self._apply(self.base.rsample(Size(sample_shape)))

    def sample(self, sample_shape: _Shape = _NO_SHAPE) -> Tensor:
        with torch.no_grad():
            return self._apply(self.base.sample(Size(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(
            "this posterior maps the latent through a non-invertible regressor: it has no density"
        )
