"""Tags for the disentangling flow, loss-weight warm-ups, and seeded sharded batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flowsynth.data import DatasetFile
from flowsynth.training import TrainConfig
from flowsynth.training.data import batches
from flowsynth.training.schedule import loss_weights
from flowsynth.training.tags import fit_tag_rules, tag_matrix

PAIRS = [["dark", "bright"], ["tonal", "noisy"]]


def test_descriptor_tags_follow_the_descriptor(tiny_dataset: Path) -> None:
    dataset = DatasetFile(tiny_dataset)
    rules = fit_tag_rules(dataset, PAIRS, quantile=0.3)
    assert [rule[0] for rule in rules] == ["centroid_hz", "flatness"]
    tags = tag_matrix(dataset, "train", PAIRS, rules)
    centroid = torch.from_numpy(dataset.read("descriptors/centroid_hz", "train"))
    assert set(tags.unique().tolist()) == {-1, 0, 1}
    assert centroid[tags[:, 0] == 1].min() > centroid[tags[:, 0] == -1].max()
    assert 0.5 < float((tags[:, 0] != 0).float().mean()) < 0.7


def test_only_a_seeded_fraction_keeps_its_tags(tiny_dataset: Path) -> None:
    dataset = DatasetFile(tiny_dataset)
    rules = fit_tag_rules(dataset, PAIRS, 0.5)
    some = tag_matrix(dataset, "train", PAIRS, rules, fraction=0.25, seed=1)
    assert torch.equal(some, tag_matrix(dataset, "train", PAIRS, rules, fraction=0.25, seed=1))
    assert 0 < int(some.ne(0).any(1).sum()) < 0.5 * len(some)


def test_unknown_pair_is_explained(tiny_dataset: Path) -> None:
    with pytest.raises(ValueError, match=r"no tags for the pair warm:cold.*dark:bright"):
        fit_tag_rules(DatasetFile(tiny_dataset), [["warm", "cold"]], 0.3)


def test_warmups() -> None:
    config = TrainConfig(data="d.h5", model="vae", out="r", beta=2.0, kl_warmup=4, reg_warmup=0)
    assert [loss_weights(config, t).beta for t in (0, 2, 4, 9)] == [0.0, 1.0, 2.0, 2.0]
    assert loss_weights(config, 0).gamma == 1.0


def test_batches_split_one_shuffle_between_processes() -> None:
    whole = torch.cat(list(batches(20, 8, seed=5)))
    ranks = [list(batches(20, 8, seed=5, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    merged = torch.cat([torch.cat([a, b]) for a, b in zip(*ranks, strict=True)])
    assert sorted(merged.tolist()) == sorted(whole.tolist()) and len(set(merged.tolist())) == 16


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="schedule must be one of plateau, cosine, got 'step'"):
        TrainConfig(data="d.h5", model="vae", out="r", schedule="step")
    with pytest.raises(ValueError, match="unknown training settings: colour"):
        TrainConfig.from_dict({"data": "d.h5", "model": "vae", "out": "r", "colour": 1})
