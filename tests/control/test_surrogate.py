"""The descriptor surrogate: descriptors predicted from parameters, learned from a rendered dataset."""

from __future__ import annotations

import pytest
import torch

from flowsynth.control.surrogate import fit_surrogate, steering_value
from flowsynth.data import DatasetFile


@pytest.fixture(scope="module")
def rendered(dataset_path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    data = DatasetFile(dataset_path)
    params = torch.from_numpy(data.read("params"))
    return params, {n: torch.from_numpy(data.read(f"descriptors/{n}")) for n in data.descriptor_names()}


def test_surrogate_learns_the_synths_descriptors(rendered) -> None:
    params, descriptors = rendered
    surrogate = fit_surrogate(params, descriptors, steps=600)
    assert surrogate.names == ("centroid_hz", "flatness", "loudness_db", "flux", "effective_duration_s", "harmonicity")
    truth = surrogate.normalize(descriptors)
    with torch.no_grad():
        found = surrogate(params)
    explained = 1 - (found - truth).square().mean(0) / truth.var(0)
    assert float(explained[surrogate.names.index("centroid_hz")]) > 0.8, explained
    again = fit_surrogate(params, descriptors, steps=600)
    assert torch.equal(again(params), found), "seeded: the same data give the same network"


def test_surrogate_refuses_what_it_cannot_learn(rendered) -> None:
    params, descriptors = rendered
    with pytest.raises(ValueError, match="48 parameter rows but 10 descriptor rows"):
        fit_surrogate(params, {n: v[:10] for n, v in descriptors.items()}, steps=10)
    with pytest.raises(ValueError, match="at least 32 described sounds, got 10"):
        fit_surrogate(params[:10], {n: v[:10] for n, v in descriptors.items()}, steps=10)
    with pytest.raises(ValueError, match="descriptors among"):
        fit_surrogate(params, {"brightness": descriptors["centroid_hz"]}, steps=10)
    broken = dict(descriptors, flux=torch.where(torch.arange(48) < 20, torch.nan, descriptors["flux"].double()))
    with pytest.raises(ValueError, match="got 28"):
        fit_surrogate(params, broken, steps=10)


def test_flatness_and_duration_are_steered_in_decades() -> None:
    assert steering_value("flatness", torch.tensor([0.0, 1e-2])).tolist() == pytest.approx([-6.0, -2.0])
    assert steering_value("effective_duration_s", torch.tensor([0.0, 0.1, 1.0])).tolist() == pytest.approx([-2, -1, 0])
    assert steering_value("loudness_db", torch.tensor([-20.0])).tolist() == [-20.0]
