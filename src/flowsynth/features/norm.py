"""One global mean/std normalization of features, fitted on the training split (FlowSynth's scheme)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

__all__ = ["FeatureNorm"]


class FeatureNorm:
    """Normalizes features with one scalar mean and standard deviation: ``(x - mean) / std``.

    Fit it on the training features only (all values of all items pooled, population std), then save
    :meth:`state_dict` (plain floats) next to the model.

    Args:
        mean: known mean, or None to fit later.
        std: known standard deviation (> 0), or None to fit later.

    >>> norm = FeatureNorm().fit(torch.tensor([[1.0, 3.0], [1.0, 3.0]]))
    >>> norm.state_dict()
    {'mean': 2.0, 'std': 1.0}
    >>> norm(torch.tensor([3.0])), norm.denormalize(torch.tensor([1.0]))
    (tensor([1.]), tensor([3.]))
    """

    def __init__(self, mean: float | None = None, std: float | None = None) -> None:
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (then call fit)")
        self.mean: float | None = None
        self.std: float | None = None
        if mean is not None and std is not None:
            self._set(mean, std)

    def _set(self, mean: float, std: float) -> None:
        mean, std = float(mean), float(std)
        if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
            raise ValueError(f"FeatureNorm needs a finite mean and a finite std > 0, got mean={mean}, std={std}")
        self.mean, self.std = mean, std

    @property
    def fitted(self) -> bool:
        """Whether mean and std are known."""
        return self.mean is not None

    def fit(self, features: Tensor | Iterable[Tensor]) -> FeatureNorm:
        """Fits mean and std on ``features``: one tensor, or an iterable of batches (streamed, float64 sums).

        Raises:
            ValueError: no values, NaN/inf values, or constant features (std 0).
        """
        batches = [features] if isinstance(features, Tensor) else features
        count, mean, m2 = 0, 0.0, 0.0  # merged per batch (Chan et al.), exact for any batching
        for batch in batches:
            values = batch.detach().to(torch.float64)
            if not torch.isfinite(values).all():
                raise ValueError("cannot fit FeatureNorm: features contain NaN or inf; drop failed items first")
            if values.numel() == 0:
                continue
            n, batch_mean = values.numel(), float(values.mean())
            batch_m2 = float((values - batch_mean).square().sum())
            delta, total = batch_mean - mean, count + n
            mean += delta * n / total
            m2 += batch_m2 + delta * delta * count * n / total
            count = total
        if count == 0:
            raise ValueError("cannot fit FeatureNorm on no values; give the training features")
        variance = m2 / count
        if variance <= 1e-12 * max(1.0, mean * mean):
            raise ValueError(f"cannot fit FeatureNorm: all {count} feature values are equal ({mean:g})")
        self._set(mean, math.sqrt(variance))
        return self

    def _stats(self) -> tuple[float, float]:
        if self.mean is None or self.std is None:
            raise ValueError("FeatureNorm is not fitted: call fit(training_features) or load_state_dict(saved)")
        return self.mean, self.std

    def normalize(self, features: Tensor) -> Tensor:
        """``(features - mean) / std``."""
        mean, std = self._stats()
        return (features - mean) / std

    __call__ = normalize

    def denormalize(self, features: Tensor) -> Tensor:
        """``features * std + mean``, the inverse of :meth:`normalize`."""
        mean, std = self._stats()
        return features * std + mean

    def state_dict(self) -> dict[str, float]:
        """``{"mean": float, "std": float}``: plain floats, for JSON or a checkpoint."""
        mean, std = self._stats()
        return {"mean": mean, "std": std}

    def load_state_dict(self, state: Mapping[str, float]) -> FeatureNorm:
        """Loads a :meth:`state_dict`; returns self."""
        missing = {"mean", "std"} - set(state)
        if missing:
            raise ValueError(f"FeatureNorm state lacks {sorted(missing)}; expected keys 'mean' and 'std'")
        self._set(state["mean"], state["std"])
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, float]) -> FeatureNorm:
        """A new FeatureNorm from a :meth:`state_dict`."""
        return cls().load_state_dict(state)

    def __repr__(self) -> str:
        return f"FeatureNorm(mean={self.mean}, std={self.std})" if self.fitted else "FeatureNorm(unfitted)"
