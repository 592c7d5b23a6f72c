"""The preset map: banks from datasets and presets, 2-D placement, projection, PNG."""

from __future__ import annotations

import json

import pytest
import torch

from flowsynth.control import PresetBank, SoundSpace, preset_map


def test_dataset_bank_has_names_params_and_descriptors(dataset_path) -> None:
    bank = PresetBank.from_dataset(dataset_path, limit=20, seed=1)
    assert len(bank) == 20 and bank.params.shape == (20, 16)
    assert bank.descriptors is not None and set(bank.descriptors) >= {"centroid_hz", "flatness"}
    assert all(name.startswith("#") for name in bank.names)
    assert bank.names == PresetBank.from_dataset(dataset_path, limit=20, seed=1).names


def test_presets_are_found_by_index_or_name(dataset_path) -> None:
    bank = PresetBank(["Warm Pad", "Bass"], torch.rand(2, 3, generator=torch.Generator().manual_seed(0)))
    assert bank.find(1) == 1 and bank.find("1") == 1 and bank.find("warm pad") == 0
    with pytest.raises(ValueError, match="no preset named 'Lead'"):
        bank.find("Lead")
    with pytest.raises(ValueError, match="out of range: the bank has 2 presets"):
        bank.find(5)


def test_map_places_presets_and_projects_latents_the_same_way(space: SoundSpace, dataset_path, tmp_path) -> None:
    bank = PresetBank.from_dataset(dataset_path)
    placed = preset_map(space, bank)
    assert placed.xy.shape == (len(bank), 2)
    assert torch.allclose(placed.project(placed.latents), placed.xy, atol=1e-4)
    assert torch.allclose(placed.xy, preset_map(space, bank).xy)
    assert placed.explained[0] >= placed.explained[1] > 0
    data = json.loads(json.dumps(placed.to_json()))
    assert len(data["points"]) == len(bank) and "centroid_hz" in data["points"][0]
    png = placed.save_png(tmp_path / "map.png", labels=5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no descriptor 'pitch' to colour by"):
        placed.save_png(tmp_path / "x.png", color_by="pitch")


def test_a_preset_file_is_a_bank(space: SoundSpace, tmp_path) -> None:
    from flowsynth.synth.presets import preset_to_json

    vectors = torch.rand(2, 16, generator=torch.Generator().manual_seed(2))
    presets = [preset_to_json(space.synth, vectors[i], name) for i, name in enumerate(["Glass", "Growl"])]
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(presets))
    bank = PresetBank.from_presets(space, str(path))
    assert bank.names == ["Glass", "Growl"] and bank.descriptors is None
    assert torch.allclose(bank.params, vectors, atol=1e-4)
    with pytest.raises(ValueError, match="has no factory presets"):
        PresetBank.from_presets(space, "factory")
