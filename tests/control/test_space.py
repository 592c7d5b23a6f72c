"""The sound space: latent <-> parameters (exact, or searched where a flow's inverse overflows), renders, errors."""

from __future__ import annotations

import pytest
import torch

from flowsynth.control import SoundSpace
from flowsynth.control.space import require_latent
from flowsynth.models import build_model
from flowsynth.synth import RenderConfig, get_synth


def test_the_flow_inverse_is_exact_where_it_holds(space: SoundSpace) -> None:
    params = torch.rand(20, 16, generator=torch.Generator().manual_seed(4))
    before = space.projected
    z = space.to_latent(params)
    assert torch.allclose(space.to_params(z), params, atol=1e-4) and space.projected == before


def test_rows_whose_inverse_overflows_are_searched() -> None:
    """A regression flow with large weights: its image hugs 0 and 1, its inverse overflows for many presets."""
    torch.manual_seed(0)
    model = build_model("flow_reg", 8, channels=(4, 4, 4, 4), hidden=16, flow_transforms=1, reg_transforms=4)
    with torch.no_grad():
        for weight in model.regression_flow.parameters():
            weight.mul_(3.0)
    space = SoundSpace(model, get_synth("builtin").select(get_synth("builtin-16").space.learned[:8]), RenderConfig())
    params = torch.rand(20, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact = model.params_to_latent(params)
    overflowed = ~(torch.isfinite(exact) & (exact.abs() < 50)).all(-1)
    assert 0 < int(overflowed.sum()) < 20
    z = space.to_latent(params)
    assert torch.isfinite(z).all() and space.projected == int(overflowed.sum())
    found = (space.to_params(z) - params).square().sum(-1)
    origin = (space.to_params(torch.zeros(1, 8)) - params).square().sum(-1)
    assert (found[overflowed] < origin[overflowed]).all()  # the search got closer than where it started
    assert (found[~overflowed] < 1e-6).all()  # the others kept their exact inverse


def test_mistakes_are_named(space: SoundSpace) -> None:
    with pytest.raises(ValueError, match=r"params must be \[batch, 16\]"):
        space.to_latent(torch.zeros(16))
    with pytest.raises(ValueError, match="NaN or infinity"):
        space.to_latent(torch.full((1, 16), float("nan")))
    with pytest.raises(ValueError, match=r"latents must be \[batch, 16\]"):
        space.to_params(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="controls need a model with a latent space"):
        require_latent(build_model("mlp", 16, hidden=(8,)))


def test_renders_follow_the_model_conditions(space: SoundSpace) -> None:
    audio = space.render(torch.full((2, 16), 0.5), note=72)
    assert audio.shape == (2, space.config.num_samples) and space.sample_rate == 22050
    values = space.describe(torch.full((1, 16), 0.5))
    assert set(values) >= {"centroid_hz", "flatness", "loudness_db"} and values["loudness_db"].dtype == torch.float64
