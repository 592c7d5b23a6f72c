"""Semantic tags of training sounds for the disentangling flow: from the dataset's tags, or from descriptors.

A tag pair ``(low, high)`` gives each sound -1 (tagged ``low``), +1 (tagged ``high``) or 0 (not tagged).

* If the dataset's ``tags`` column (the tags of the presets the sounds were sampled around) holds
  either tag of the pair, those tags are used as they are.
* Otherwise, for the pairs of :data:`DESCRIPTOR_TAGS`, a sound is tagged ``low`` when its stored
  descriptor is in the lowest ``quantile`` of the training split, ``high`` in the highest (thresholds
  fitted on the training split, applied to every split), as a listener would tag the clearest cases.

Only a seeded ``fraction`` of the training sounds keep their tags, as when few presets are tagged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from flowsynth.data import DatasetFile

__all__ = ["DESCRIPTOR_TAGS", "TagRule", "fit_tag_rules", "tag_matrix"]

#: Tag pairs that can be derived from a stored descriptor: ``(low, high) -> descriptor``.
DESCRIPTOR_TAGS: dict[tuple[str, str], str] = {
    ("dark", "bright"): "centroid_hz",
    ("tonal", "noisy"): "flatness",
    ("sustained", "percussive"): "percussiveness",
    ("static", "moving"): "flux",
    ("quiet", "loud"): "loudness_db",
    ("noisy_pitch", "harmonic"): "harmonicity",
}

#: How one pair is tagged: ``("column", None, None)`` or ``(descriptor, low threshold, high threshold)``.
TagRule = tuple[str, float | None, float | None]


def _column_tags(dataset: DatasetFile, split: str) -> list[set[str]]:
    try:
        return [set(filter(None, (t.strip() for t in row.split(",")))) for row in dataset.strings("tags", split)]
    except (KeyError, ValueError):
        return [set() for _ in dataset.indices(split)]


def fit_tag_rules(dataset: DatasetFile, pairs: list[list[str]], quantile: float) -> list[TagRule]:
    """Chooses how each pair is tagged (see the module docstring), fitted on the training split.

    Raises:
        ValueError: a pair the dataset has no tags for and no descriptor rule can derive.
    """
    train_tags = set().union(*_column_tags(dataset, "train"))
    rules: list[TagRule] = []
    for low, high in pairs:
        if low in train_tags or high in train_tags:
            rules.append(("column", None, None))
            continue
        descriptor = DESCRIPTOR_TAGS.get((low, high))
        if descriptor is None or descriptor not in dataset.descriptor_names():
            known = ", ".join(f"{a}:{b}" for a, b in DESCRIPTOR_TAGS)
            raise ValueError(
                f"no tags for the pair {low}:{high}: the dataset's sounds carry neither tag, and it is not a "
                f"pair derived from stored descriptors ({known})"
            )
        values = dataset.read(f"descriptors/{descriptor}", "train").astype(np.float64)
        rules.append((descriptor, float(np.quantile(values, quantile)), float(np.quantile(values, 1 - quantile))))
    return rules


def tag_matrix(
    dataset: DatasetFile,
    split: str,
    pairs: list[list[str]],
    rules: list[TagRule],
    fraction: float = 1.0,
    seed: int = 0,
) -> Tensor:
    """Tags ``[n, n_pairs]`` in {-1, 0, +1} of a split's sounds; only a seeded ``fraction`` of sounds keep tags."""
    n = len(dataset.indices(split))
    tags = torch.zeros(n, len(pairs), dtype=torch.long)
    column = _column_tags(dataset, split)
    for k, ((low, high), (source, lo, hi)) in enumerate(zip(pairs, rules, strict=True)):
        if source == "column":
            tags[:, k] = torch.tensor([(high in t) - (low in t) for t in column], dtype=torch.long)
        else:
            values = torch.from_numpy(dataset.read(f"descriptors/{source}", split).astype(np.float64))
            tags[:, k] = (values >= float(hi or 0.0)).long() - (values <= float(lo or 0.0)).long()
    if fraction < 1.0:
        keep = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < fraction
        tags[~keep] = 0
    return tags
