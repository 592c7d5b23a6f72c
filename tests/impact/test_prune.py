"""Structured pruning: cutting channels keeps the generator working, identity cuts change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowsynth.impact.generate import reference_curves
from flowsynth.impact.model import ImpactGenerator
from flowsynth.impact.prune import Channels, all_channels, compose, cut, select_channels


@pytest.fixture(scope="module")
def model() -> ImpactGenerator:
    torch.manual_seed(0)
    generator = ImpactGenerator(hidden_size=32, num_harmonics=12, ir_length=256).eval()
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return generator


@pytest.fixture(scope="module")
def curves() -> torch.Tensor:
    return torch.from_numpy(reference_curves("snare"))[None]


def test_identity_cut_is_the_same_generator(model: ImpactGenerator, curves: torch.Tensor) -> None:
    with torch.no_grad():
        assert torch.equal(cut(model, all_channels(model))(curves, seed=1), model(curves, seed=1))


def test_pruned_generator_is_smaller_and_runs(model: ImpactGenerator, curves: torch.Tensor) -> None:
    small = cut(model, select_channels(model, 8, 4, noise_bands=65))
    assert small.kwargs["hidden_size"] == 8 and small.kwargs["num_harmonics"] == 4
    assert small.kwargs["noise_bands"] == 65 and small.noise_head.out_features == 65
    assert small.num_parameters < model.num_parameters / 3
    with torch.no_grad():
        audio = small(curves, seed=0)
    assert audio.shape == model(curves, seed=0).shape and torch.isfinite(audio).all()


def test_the_synthesis_shrinks_with_the_network(model: ImpactGenerator, curves: torch.Tensor) -> None:
    small = cut(model, select_channels(model, 8, 4, noise_bands=33, ir_length=0), noise_overlap=2)
    assert small.ir is None and small.kwargs["ir_length"] == 0 and small.kwargs["noise_overlap"] == 2
    assert "ir" not in small.state_dict()
    squares = small.window**2  # halves of the squared window add up to 1: constant overlap-add at hop n_fft / 2
    assert torch.allclose(squares[:256] + squares[256:], torch.ones(256), atol=1e-6)
    with torch.no_grad():
        audio = small(curves, seed=0)
    assert audio.shape == model(curves, seed=0).shape and torch.isfinite(audio).all() and audio.abs().max() > 0
    shorter = cut(model, select_channels(model, 32, 12, ir_length=64))
    assert shorter.ir is not None and model.ir is not None and torch.equal(shorter.ir, model.ir[:64])


def test_unimportant_channels_go_first(model: ImpactGenerator) -> None:
    weak = ImpactGenerator(**model.kwargs)
    weak.load_state_dict(model.state_dict())
    with torch.no_grad():
        weak.mlp[0].weight[5] = 0.0  # MLP unit 5 has no incoming weights: least important
    assert 5 not in select_channels(weak, 31, 12).mlp


def test_kept_noise_bands_keep_their_magnitudes(model: ImpactGenerator, curves: torch.Tensor) -> None:
    small = cut(model, select_channels(model, 32, 12, noise_bands=33))
    with torch.no_grad():
        full, banded = model.controls(curves)[2], small.controls(curves)[2]
    assert banded.shape == full.shape  # interpolated back to every FFT bin
    kept = torch.arange(0, 257, 8)
    assert torch.allclose(banded[:, kept], full[:, kept], rtol=1e-5, atol=1e-9)
    assert not torch.allclose(banded, full, rtol=1e-3)


def test_composed_channels_index_the_original(model: ImpactGenerator, curves: torch.Tensor) -> None:
    first = select_channels(model, 16, 8, noise_bands=129)
    middle = cut(model, first)
    second = select_channels(middle, 8, 4, noise_bands=33)
    assert compose(first, second).bands.tolist() == list(range(0, 257, 8))
    direct = cut(model, compose(first, second))
    with torch.no_grad():
        assert torch.equal(direct(curves, seed=3), cut(middle, second)(curves, seed=3))


def test_bad_selections_are_refused(model: ImpactGenerator) -> None:
    with pytest.raises(ValueError, match="only the first harmonics"):
        cut(model, Channels(*(np.arange(4),) * 3, np.array([1, 2]), np.arange(257), np.arange(256)))
    with pytest.raises(ValueError, match="only evenly spaced noise bands"):
        cut(model, Channels(*(np.arange(4),) * 3, np.arange(2), np.array([0, 1, 256]), np.arange(256)))
    with pytest.raises(ValueError, match="only the first impulse-response taps"):
        cut(model, Channels(*(np.arange(4),) * 3, np.arange(2), np.arange(257), np.arange(1, 256)))
    with pytest.raises(ValueError, match="ir_length must be within the generator's 256 taps"):
        select_channels(model, 8, 4, ir_length=300)
    with pytest.raises(ValueError, match=r"noise bands must be n \+ 1 where n divides 256"):
        select_channels(model, 8, 4, noise_bands=100)
    with pytest.raises(ValueError, match="pruned sizes must be within"):
        select_channels(model, 64, 4)
