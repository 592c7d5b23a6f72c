"""The normalizing flows of the FlowSynth models, built from zuko transforms.

Three flows, each a zuko :class:`~zuko.lazy.LazyTransform` (``flow(context)`` returns an invertible
:class:`torch.distributions.Transform` with ``call_and_ladj``):

* :class:`PosteriorIAF`: an inverse autoregressive flow ``z0 -> zK`` that refines the Gaussian
  posterior of a VAE. It is conditioned on the encoder's features (the context), so the refinement
  depends on the input sound.
* :class:`RegressionFlow`: FlowSynth's regression flow, an invertible map from the latent ``z`` to
  the synth parameters. Parameters live in [0, 1], so the flow ends with a sigmoid
  (:class:`UnitIntervalTransform`): ``params = sigmoid(f(z))`` and ``z = f^-1(logit(params))``.
* :class:`DisentanglingFlow`: an invertible map ``z -> w`` whose first coordinates are aligned with
  semantic tag pairs (``w_k`` low for one tag of pair ``k``, high for the other).

The autoregressive transforms run one pass in the forward direction (training and inference) and
``features`` passes in the inverse direction; ``kind="realnvp"`` (affine coupling) is one pass both ways.
"""

from __future__ import annotations

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Transform, constraints
from zuko.lazy import LazyComposedTransform, LazyTransform
from zuko.transforms import ComposedTransform, DependentTransform, MonotonicRQSTransform

__all__ = [
    "FLOW_KINDS",
    "DisentanglingFlow",
    "PosteriorIAF",
    "RegressionFlow",
    "UnitIntervalTransform",
    "flow_transforms",
]

#: Transform families a flow can be built from.
FLOW_KINDS = ("maf", "nsf", "realnvp")
#: Parameters are clamped to [EPS, 1 - EPS] before the logit, so 0 and 1 map to finite latents.
UNIT_EPS = 1e-4
_SPLINE_BINS = 8


class UnitIntervalTransform(Transform):
    """The sigmoid bijection from the real line to (0, 1); its inverse clamps to [eps, 1 - eps] before the logit.

    Arguments:
        eps: Margin of the clamp, so parameters of exactly 0 or 1 have a finite preimage
            (``logit(1e-4) = -9.21``).

    Example:
        >>> t = UnitIntervalTransform()
        >>> t(torch.tensor([0.0, 2.0]))
        tensor([0.5000, 0.8808])
        >>> t.inv(torch.tensor([0.5, 0.8808]))
        tensor([0.0000, 2.0000])
        >>> bool(torch.isfinite(t.inv(torch.tensor([0.0, 1.0]))).all())
        True
    """

    domain = constraints.real
    codomain = constraints.unit_interval
    bijective = True
    sign = +1

    def __init__(self, eps: float = UNIT_EPS, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.eps = float(eps)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitIntervalTransform) and other.eps == self.eps

    def _call(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return torch.logit(y.clamp(self.eps, 1.0 - self.eps))

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -nn.functional.softplus(-x) - nn.functional.softplus(x)


def _check(features: int, kind: str, transforms: int) -> None:
    if kind not in FLOW_KINDS:
        raise ValueError(f"unknown flow kind {kind!r}; known: {', '.join(FLOW_KINDS)}")
    if features < 2:
        raise ValueError(f"a flow needs at least 2 features, got {features}")
    if transforms < 1:
        raise ValueError(f"a flow needs at least 1 transform, got {transforms}")


def flow_transforms(
    features: int, context: int = 0, transforms: int = 4, hidden: tuple[int, ...] = (128, 128), kind: str = "maf"
) -> list[LazyTransform]:
    """A stack of zuko lazy transforms of one kind, alternating orders (or coupling masks) between layers.

    Arguments:
        features: Dimension of the vectors transformed.
        context: Dimension of the conditioning vector (0: unconditional).
        transforms: Number of transforms.
        hidden: Hidden layer sizes of each transform's conditioner network.
        kind: ``"maf"`` (affine autoregressive), ``"nsf"`` (rational-quadratic spline
            autoregressive) or ``"realnvp"`` (affine coupling).

    Example:
        >>> len(flow_transforms(4, transforms=3, kind="realnvp"))
        3
    """
    _check(features, kind, transforms)
    order = torch.arange(features)
    layers: list[LazyTransform] = []
    for i in range(transforms):
        if kind == "realnvp":
            mask = order % 2 == i % 2
            layers.append(zuko.flows.GeneralCouplingTransform(features, context, mask, hidden_features=hidden))
            continue
        spline = {
            "univariate": MonotonicRQSTransform,
            "shapes": [(_SPLINE_BINS,), (_SPLINE_BINS,), (_SPLINE_BINS - 1,)],
        }
        extra = spline if kind == "nsf" else {}
        layer_order = order if i % 2 == 0 else order.flip(0)
        layers.append(
            zuko.flows.MaskedAutoregressiveTransform(
                features, context, order=layer_order, hidden_features=hidden, **extra
            )
        )
    return layers


class _Stack(LazyTransform):
    """A stack of lazy transforms that remembers its constructor arguments (``self.config``)."""

    def __init__(self, features: int, context: int, transforms: int, hidden: tuple[int, ...], kind: str) -> None:
        super().__init__()
        self.config = {
            "features": int(features),
            "context": int(context),
            "transforms": int(transforms),
            "hidden": [int(h) for h in hidden],
            "kind": kind,
        }
        self.features, self.context = int(features), int(context)
        self.stack = LazyComposedTransform(*flow_transforms(features, context, transforms, tuple(hidden), kind))

    def forward(self, c: Tensor | None = None) -> Transform:
        if self.context and c is None:
            raise ValueError(f"{type(self).__name__} is conditional: give a context of size {self.context}")
        return self.stack(c if self.context else None)


class PosteriorIAF(_Stack):
    """Inverse autoregressive flow (IAF) refining a VAE posterior, conditioned on the input's encoding.

    ``flow(h)`` maps a base posterior sample ``z0`` to ``zK`` in one pass; its log-det gives the
    refined density ``log q(zK | x) = log q0(z0 | x) - log|det dzK/dz0|``. The context ``h`` is the
    encoder's feature vector of the input sound, so the same ``z0`` moves differently for
    different sounds.

    Arguments:
        features: Latent size.
        context: Size of the encoder's feature vector.
        transforms: Number of autoregressive transforms.
        hidden: Hidden sizes of each transform's conditioner.
        kind: Transform family (:data:`FLOW_KINDS`).

    Example:
        >>> flow = PosteriorIAF(4, context=8, transforms=2)
        >>> z0, h = torch.randn(3, 4), torch.randn(3, 8)
        >>> zk, ladj = flow(h).call_and_ladj(z0)
        >>> zk.shape, ladj.shape
        (torch.Size([3, 4]), torch.Size([3]))
    """

    def __init__(
        self, features: int, context: int, transforms: int = 4, hidden: tuple[int, ...] = (128, 128), kind: str = "maf"
    ) -> None:
        if context < 1:
            raise ValueError(
                f"the posterior flow must be conditioned on the input: context must be >= 1, got {context}"
            )
        super().__init__(features, context, transforms, tuple(hidden), kind)


class RegressionFlow(_Stack):
    """Regression flow: an invertible map from the latent space to synth parameters in (0, 1).

    ``flow()(z)`` is ``sigmoid(f(z))`` where ``f`` is a stack of autoregressive (or coupling)
    transforms; ``flow().inv(params)`` is the exact inverse ``f^-1(logit(params))``, with parameters
    clamped to [1e-4, 1 - 1e-4] first (:class:`UnitIntervalTransform`) so that 0 and 1 map to finite
    latents. The latent size equals the number of learned parameters.

    Arguments:
        features: Number of learned parameters (= latent size).
        transforms: Number of transforms of ``f``.
        hidden: Hidden sizes of each transform's conditioner.
        kind: Transform family (:data:`FLOW_KINDS`).

    Example:
        >>> flow = RegressionFlow(4, transforms=2)
        >>> params = flow()(torch.randn(2, 4))
        >>> bool(((params > 0) & (params < 1)).all())
        True
    """

    def __init__(
        self, features: int, transforms: int = 4, hidden: tuple[int, ...] = (128, 128), kind: str = "maf"
    ) -> None:
        super().__init__(features, 0, transforms, tuple(hidden), kind)
        del self.config["context"]

    def forward(self, c: Tensor | None = None) -> Transform:
        return ComposedTransform(super().forward(None), DependentTransform(UnitIntervalTransform(), 1))


class DisentanglingFlow(_Stack):
    """Disentangling flow: an invertible map ``z -> w`` whose first coordinates follow semantic tag pairs.

    Trained (by the model that owns it) so that, for tagged sounds, ``w_k`` is near ``-1`` for the first
    tag of pair ``k`` and near ``+1`` for the second, while the other coordinates stay standard normal.
    Moving ``w_k`` and mapping back with ``flow().inv`` is a semantic knob.

    Arguments:
        features: Latent size.
        transforms: Number of transforms.
        hidden: Hidden sizes of each transform's conditioner.
        kind: Transform family (:data:`FLOW_KINDS`).

    Example:
        >>> flow = DisentanglingFlow(4, transforms=2)
        >>> z = torch.randn(2, 4)
        >>> torch.allclose(flow().inv(flow()(z)), z, atol=1e-5)
        True
    """

    def __init__(
        self, features: int, transforms: int = 4, hidden: tuple[int, ...] = (64, 64), kind: str = "realnvp"
    ) -> None:
        super().__init__(features, 0, transforms, tuple(hidden), kind)
        del self.config["context"]
