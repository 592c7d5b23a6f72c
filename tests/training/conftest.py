"""A tiny rendered dataset (48 sounds of builtin-16, 1 s each), shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowsynth.data import RenderJob, render_dataset
from flowsynth.synth import RenderConfig, get_synth

#: Small architectures, so that a training step takes milliseconds.
SMALL_CONV = {"channels": [4, 4, 8, 8], "hidden": 16}
SMALL_ARGS: dict[str, dict] = {
    "mlp": {"hidden": [32, 32]},
    "cnn": SMALL_CONV,
    "vae": {**SMALL_CONV, "reg_hidden": [16]},
    "flow_reg": {**SMALL_CONV, "flow_transforms": 1, "flow_hidden": [16], "reg_transforms": 2, "reg_flow_hidden": [16]},
    "flow_dis": {**SMALL_CONV, "flow_transforms": 1, "flow_hidden": [16], "reg_transforms": 2, "reg_flow_hidden": [16]},
}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 random sounds of builtin-16 (1 s, note held 0.5 s), split 38 / 5 / 5."""
    out = tmp_path_factory.mktemp("data") / "tiny.h5"
    config = RenderConfig(render_s=1.0, note_s=0.5)
    job = RenderJob(get_synth("builtin-16").describe(), config.describe(), 48, seed=3, chunk_size=16)
    render_dataset(out, job, progress=False)
    return out
