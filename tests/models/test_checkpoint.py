"""Checkpoints hold everything a model needs, load with weights_only, and fail clearly when damaged."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from flowsynth.errors import CheckpointError
from flowsynth.features.norm import FeatureNorm
from flowsynth.models import build_model, load_checkpoint, load_model, load_shipped_model, save_model, shipped_models
from flowsynth.models.checkpoint import FORMAT, atomic_save
from flowsynth.synth import RenderConfig, get_synth

from .test_models import NINE, features, small_model

SYNTH = get_synth("builtin-16").describe()
RENDER = RenderConfig().describe()


def saved(tmp_path: Path, name: str = "flow_reg") -> tuple[Path, torch.nn.Module]:
    model = small_model(name).eval()
    model.set_feature_norm(FeatureNorm(-3.0, 2.0))
    return save_model(tmp_path / "model.pt", model, SYNTH, RENDER, {"seed": 7}), model


@pytest.mark.parametrize("name", NINE)
def test_round_trip(tmp_path: Path, name: str) -> None:
    path, model = saved(tmp_path, name)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    assert torch.equal(loaded.infer(features()), model.infer(features()))
    assert loaded.meta["synth"] == SYNTH and loaded.meta["render"] == RENDER
    assert loaded.meta["feature_norm"] == {"mean": -3.0, "std": 2.0}
    assert loaded.meta["training"] == {"seed": 7}


def test_checkpoint_holds_only_plain_values(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = torch.load(path, weights_only=True)
    assert data["format"] == FORMAT and data["model"] == "flow_reg"
    assert set(data) == {"format", "model", "kwargs", "state_dict", "feature_norm", "synth", "render", "training"}
    assert not list(tmp_path.glob("*.tmp")), "the temporary file must be renamed away"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no model checkpoint at .*; train one with `flowsynth train`"):
        load_model(tmp_path / "nothing.pt")


def test_truncated_file(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"is not a readable model checkpoint \(truncated or not a torch file\)"):
        load_model(path)


def test_other_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="is not a flowsynth model checkpoint"):
        load_model(path)


def test_arbitrary_objects_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        pickle.dump({"format": FORMAT, "payload": Path("/")}, file, protocol=2)
    with pytest.raises(CheckpointError, match="not a readable model checkpoint"):
        load_model(path)


def test_incomplete_checkpoint(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = load_checkpoint(path)
    del data["feature_norm"]
    atomic_save(data, path)
    with pytest.raises(CheckpointError, match="incomplete checkpoint: it lacks feature_norm"):
        load_model(path)


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = load_checkpoint(path)
    data["kwargs"]["hidden"] = 32
    atomic_save(data, path)
    with pytest.raises(CheckpointError, match="the weights do not fit model 'flow_reg'"):
        load_model(path)


def test_unknown_model(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = load_checkpoint(path)
    data["model"] = "gan"
    atomic_save(data, path)
    with pytest.raises(CheckpointError, match="unknown model 'gan'"):
        load_model(path)


def test_default_flow_reg_checkpoint_stays_small(tmp_path: Path) -> None:
    """The model shipped in the package must stay under 20 MB at the default sizes (32 parameters)."""
    path = save_model(tmp_path / "model.pt", build_model("flow_reg", 32), SYNTH, RENDER)
    assert path.stat().st_size < 20e6


def test_shipped_models_load_or_are_named(tmp_path: Path) -> None:
    for name in shipped_models():
        assert load_shipped_model(name).infer(features(batch=1)).shape[0] == 1
    with pytest.raises(CheckpointError, match="no shipped model 'nope'; shipped: "):
        load_shipped_model("nope")


def test_shipped_flow_models_place_any_preset_on_their_latent_map() -> None:
    """params -> z must work for the presets a user loads, not only for the model's own outputs."""
    models = {name: load_shipped_model(name) for name in shipped_models()}
    flows = {name: model for name, model in models.items() if model.name in ("flow_reg", "flow_dis")}
    if not flows:
        pytest.skip("no flow model shipped")
    for name, model in flows.items():
        model.eval()
        presets = torch.rand(64, model.num_params, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            z = model.params_to_latent(presets)
            assert torch.isfinite(z).all() and z.abs().max() < 50, f"{name}: presets fall off the latent map"
            assert torch.allclose(model.latent_to_params(z), presets.clamp(1e-4, 1 - 1e-4), atol=1e-3)
