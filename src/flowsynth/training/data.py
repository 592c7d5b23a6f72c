"""The training and validation splits of a dataset in memory, and their seeded, rank-sharded batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.data import DatasetFile
from flowsynth.errors import DatasetError
from flowsynth.training.tags import fit_tag_rules, tag_matrix

__all__ = ["Split", "TrainingData", "batches", "load_training_data"]


@dataclass
class Split:
    """Raw log-mel features ``[n, 64, 80]``, parameters ``[n, d]`` and tags ``[n, n_pairs]`` of one split."""

    features: Tensor
    params: Tensor
    tags: Tensor

    def __len__(self) -> int:
        return len(self.params)


@dataclass
class TrainingData:
    """The dataset's training and validation splits and what describes them."""

    dataset: DatasetFile
    train: Split
    valid: Split

    @property
    def num_params(self) -> int:
        """Number of learned parameters."""
        return int(self.train.params.shape[1])


def _split(dataset: DatasetFile, split: str, tags: Tensor) -> Split:
    features, params = dataset.load(split)
    if not (torch.isfinite(features).all() and torch.isfinite(params).all()):
        raise DatasetError(f"{dataset.path}: the {split} split holds NaN or infinite features or parameters")
    return Split(features.float(), params.float(), tags)


def load_training_data(
    path: str,
    tag_pairs: list[list[str]] | None = None,
    tag_fraction: float = 1.0,
    tag_quantile: float = 0.3,
    seed: int = 0,
) -> TrainingData:
    """Loads the train and valid splits of a dataset, with tags when ``tag_pairs`` are given.

    Raises:
        DatasetError: the file is not a dataset, or a split is empty or holds NaN.
    """
    dataset = DatasetFile(Path(path))
    for split in ("train", "valid"):
        if len(dataset.indices(split)) < 2:
            raise DatasetError(f"{path}: the {split} split has fewer than 2 sounds; render a larger dataset")
    pairs = tag_pairs or []
    rules = fit_tag_rules(dataset, pairs, tag_quantile) if pairs else []
    tags = {
        split: tag_matrix(dataset, split, pairs, rules, fraction, seed)
        for split, fraction in (("train", tag_fraction), ("valid", 1.0))
    }
    return TrainingData(dataset, _split(dataset, "train", tags["train"]), _split(dataset, "valid", tags["valid"]))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch (one batch of everything when there are fewer sounds than a batch)."""
    return max(1, n // batch_size)


def batches(n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Iterator[Tensor]:
    """Indices of this process's share of each global batch of a seeded shuffle of ``range(n)``.

    Every process draws the same permutation (same ``seed``) and takes every ``world_size``-th index
    of each global batch, so all processes run the same number of steps.

    Example:
        >>> [b.tolist() for b in batches(6, 4, seed=0, rank=1, world_size=2)]
        [[5, 0]]
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    size = min(batch_size, n)
    for step in range(steps_per_epoch(n, batch_size)):
        yield order[step * size : (step + 1) * size][rank::world_size]
