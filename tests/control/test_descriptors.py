"""The descriptor ruler: transforms, scale, names of directions, Spearman's rho."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from flowsynth.control import DIRECTION_WORDS, DescriptorScale, spearman
from flowsynth.control.descriptors import describe_direction
from flowsynth.features import DESCRIPTORS


def test_every_descriptor_has_words() -> None:
    assert set(DIRECTION_WORDS) == set(DESCRIPTORS)


def test_scale_standardizes_and_round_trips_through_json() -> None:
    g = torch.Generator().manual_seed(0)
    values = {"centroid_hz": 200 + 4000 * torch.rand(50, generator=g), "flatness": torch.rand(50, generator=g)}
    scale = DescriptorScale.fit(values)
    norm = scale.normalize(values)
    assert norm.shape == (50, 2)
    assert torch.allclose(norm.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(norm.std(0), torch.ones(2, dtype=torch.float64), atol=1e-9)
    assert DescriptorScale.from_dict(scale.to_dict()) == scale


def test_scale_ignores_nan_rows_and_names_missing_descriptors() -> None:
    scale = DescriptorScale.fit({"flux": torch.tensor([0.1, float("nan"), 0.3])})
    assert scale.center == pytest.approx((0.2,))
    with pytest.raises(ValueError, match="lack flux"):
        scale.normalize({"flatness": torch.zeros(2)})
    with pytest.raises(ValueError, match="at least 2 finite values of flux"):
        DescriptorScale.fit({"flux": torch.tensor([0.1, float("nan")])})


def test_direction_names_follow_the_largest_effect() -> None:
    assert describe_direction({"loudness_db": 0.2, "attack_s": -0.9}) == (
        "sharper attack / slower attack",
        "sharper attack",
    )
    assert describe_direction({"flux": 0.0})[0] == "no audible change"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_scipy_with_ties(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 5, (20,), generator=g).double(), torch.randn(20, generator=g).double()
    assert spearman(x, y) == pytest.approx(spearmanr(x.numpy(), y.numpy()).statistic, abs=1e-9)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0
