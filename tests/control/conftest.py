"""A tiny dataset rendered by the real synth and two small latent models trained on it (one per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flowsynth.cli.main import main
from flowsynth.control import AnalysisConfig, ControlSetup, SoundSpace

from ..conftest import one_thread

#: Architecture of the test models: small enough to train in seconds.
SMALL = {
    "channels": [4, 4, 8, 8],
    "hidden": 32,
    "flow_transforms": 1,
    "flow_hidden": [16],
    "reg_transforms": 2,
    "reg_flow_hidden": [32, 32],
}
#: Measuring settings of the tests (the renders are 1 s long anyway).
QUICK = AnalysisConfig(anchors=2, steps=3, visible=6)


@pytest.fixture(scope="module", autouse=True)
def _torch_on_one_thread(torch_on_one_thread: None) -> None:
    """Every test module of this folder runs torch on one thread."""


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 sounds of builtin-16, 1 s long (note held 0.5 s), with descriptors."""
    out = tmp_path_factory.mktemp("control_data") / "tiny.h5"
    args = ["render-dataset", "--synth", "builtin-16", "--n", "48", "--out", str(out), "--workers", "1"]
    with one_thread():
        assert (
            main([*args, "--chunk-size", "16", "--note-s", "0.5", "--render-s", "1.0", "--seed", "3", "--quiet"]) == 0
        )
    return out


def _train(data: Path, out: Path, name: str) -> Path:
    from flowsynth.training import TrainConfig, train

    args = dict(SMALL, **({"dis_transforms": 2, "dis_hidden": [16]} if name == "flow_dis" else {}))
    config = TrainConfig(
        data=str(data), model=name, out=str(out), epochs=2, batch_size=16, model_args=args, progress=False,
        kl_warmup=1, reg_warmup=1, tag_fraction=1.0, seed=0, threads=1,
    )  # fmt: skip
    train(config)
    return out / "model.pt"


@pytest.fixture(scope="session")
def model_paths(dataset_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints of ``flow_reg`` and ``flow_dis`` trained two epochs on the tiny dataset."""
    root = tmp_path_factory.mktemp("control_models")
    with one_thread():
        return {name: _train(dataset_path, root / name, name) for name in ("flow_reg", "flow_dis")}


@pytest.fixture(scope="session")
def space(model_paths: dict[str, Path]) -> SoundSpace:
    return SoundSpace.from_checkpoint(model_paths["flow_reg"])


@pytest.fixture(scope="session")
def dis_space(model_paths: dict[str, Path]) -> SoundSpace:
    return SoundSpace.from_checkpoint(model_paths["flow_dis"])


@pytest.fixture(scope="session")
def reference(space: SoundSpace) -> torch.Tensor:
    """Latents of 32 seeded random presets."""
    with one_thread():
        return space.to_latent(torch.rand(32, space.num_params, generator=torch.Generator().manual_seed(1)))


@pytest.fixture(scope="session")
def quick() -> AnalysisConfig:
    """Measuring settings of the tests."""
    return QUICK


@pytest.fixture
def quick_setup(dataset_path: Path) -> ControlSetup:
    return ControlSetup(data=str(dataset_path), analysis=QUICK, surrogate_steps=200)
