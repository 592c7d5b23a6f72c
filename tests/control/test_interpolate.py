"""Interpolation: the latent path ends on the presets; smoothness as PROTOCOL.md defines it."""

from __future__ import annotations

import pytest
import torch

from flowsynth.control import SoundSpace, compare_paths, latent_path, linear_path, smoothness
from flowsynth.control.interpolate import bend


def _presets(space: SoundSpace) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.rand(space.num_params, generator=g), torch.rand(space.num_params, generator=g)


def test_latent_path_starts_and_ends_on_the_presets(space: SoundSpace) -> None:
    a, b = _presets(space)
    path = latent_path(space, a, b, steps=9)
    assert path.params.shape == (9, space.num_params) and path.latents is not None
    assert torch.allclose(path.params[0], a.clamp(1e-4, 1 - 1e-4), atol=1e-4)
    assert torch.allclose(path.params[-1], b.clamp(1e-4, 1 - 1e-4), atol=1e-4)
    assert torch.allclose(path.latents.diff(n=2, dim=0), torch.zeros(7, space.latent_size), atol=1e-5)
    assert not torch.allclose(path.params[4], (a + b) / 2, atol=1e-3)  # decoded, not averaged


def test_linear_path_is_straight_in_parameters() -> None:
    path = linear_path(torch.zeros(4), torch.ones(4), steps=9)
    assert path.kind == "linear" and path.latents is None
    assert float(smoothness(path.params).max()) == pytest.approx(0.0, abs=1e-6)


def test_smoothness_is_the_rms_of_the_second_difference() -> None:
    values = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 4.0], [1.0, 9.0]])
    second = torch.tensor([[-2.0, 2.0], [2.0, 2.0]])
    assert torch.allclose(smoothness(values), second.square().mean(0).sqrt())
    with pytest.raises(ValueError, match=r"steps >= 3"):
        smoothness(values[:2])


def test_steps_are_checked() -> None:
    with pytest.raises(ValueError, match="steps >= 3"):
        linear_path(torch.zeros(2), torch.ones(2), steps=2)
    with pytest.raises(ValueError, match="have 2 and 3 parameters"):
        linear_path(torch.zeros(2), torch.ones(3))


def test_compare_paths_reports_both_paths_per_descriptor(space: SoundSpace) -> None:
    a, b = _presets(space)
    report = compare_paths(space, a, b, steps=9)
    names = report["descriptors"]
    assert set(report["latent"]) == set(report["linear"]) == set(names) and len(names) == 8
    assert 0 <= report["smoother_on"] <= len(names)
    assert report["smoother_on"] == sum(report["latent"][n] < report["linear"][n] for n in names)
    assert report["endpoint_error"] < 1e-3  # the flow inverts both presets exactly
    assert len(report["paths"]["latent"]["params"]) == 9
    assert report["paths"]["linear"]["params"][4] == pytest.approx(((a + b) / 2).tolist(), abs=1e-6)
    assert "audio" not in report


def test_compare_paths_hands_back_the_sounds_it_measured(space: SoundSpace) -> None:
    a, b = _presets(space)
    report = compare_paths(space, a, b, steps=5, with_audio=True)
    for kind in ("latent", "linear"):
        audio = report["audio"][kind]
        assert audio.shape == (5, space.config.num_samples)
        assert torch.equal(audio, space.render(torch.tensor(report["paths"][kind]["params"])))
        found = space.describe_audio(audio)
        assert found["centroid_hz"].tolist() == pytest.approx(report["paths"][kind]["descriptors"]["centroid_hz"])


def _path_energy(space: SoundSpace, latents: torch.Tensor) -> float:
    model = space.model
    with torch.no_grad():
        mel = model.normalize(model.decode(latents)).flatten(1)
        params = model.latent_to_params(latents)
    return float(mel.diff(dim=0).square().mean() + params.diff(n=2, dim=0).square().mean())


def test_geodesic_path_keeps_its_ends_and_lowers_the_decoded_path_energy(space: SoundSpace) -> None:
    a, b = _presets(space)
    straight = latent_path(space, a, b, steps=7)
    geodesic = latent_path(space, a, b, steps=7, method="geodesic")
    assert straight.latents is not None and geodesic.latents is not None
    assert torch.equal(geodesic.latents[[0, -1]], straight.latents[[0, -1]])
    assert torch.allclose(geodesic.params[[0, -1]], straight.params[[0, -1]])
    assert not torch.allclose(geodesic.latents[1:-1], straight.latents[1:-1], atol=1e-3)
    assert _path_energy(space, geodesic.latents) < 0.9 * _path_energy(space, straight.latents)
    assert torch.equal(bend(space, geodesic.latents[:2]), geodesic.latents[:2])  # no inner point to move
    report = compare_paths(space, a, b, steps=5, method="geodesic")
    assert report["method"] == "geodesic" and len(report["paths"]["latent"]["params"]) == 5


def test_unknown_path_method_is_refused(space: SoundSpace) -> None:
    a, b = _presets(space)
    with pytest.raises(ValueError, match="unknown path method 'curvy'"):
        latent_path(space, a, b, method="curvy")
