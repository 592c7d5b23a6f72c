"""Dataset building from real kit files, then one short training run through the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from flowsynth.errors import CheckpointError, DatasetError
from flowsynth.impact.dataset import DEFAULT_KITS as KITS
from flowsynth.impact.dataset import DatasetSpec, cut_one_shot, find_sources, load_dataset
from flowsynth.impact.train import CHECKPOINT_FORMAT, load_checkpoint, load_generator

FILES = {
    "Millo-Drums_v.1": ["bd1.flac", "snare1.flac", "tom1_1.flac", "closehihat3.flac", "emptySample.flac"],
    "VariBreaks": ["VP Kick 1.flac", "VP Snare 1.flac", "VP Tom Hi.flac", "VP Tom Low.flac", "VP Hat 1 Op.flac"],
}


@pytest.fixture(scope="module")
def small_kits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small kits of real recordings (links to Debian's files), one file present twice."""
    if not KITS.is_dir():
        pytest.skip("Debian package hydrogen-drumkits is not installed")
    root = tmp_path_factory.mktemp("kits")
    for kit, names in FILES.items():
        (root / kit).mkdir()
        for name in names:
            (root / kit / name).symlink_to(KITS / kit / name)
    (root / "VariBreaks" / "copy of kick.flac").symlink_to(KITS / "VariBreaks" / "VP Kick 1.flac")
    return root


@pytest.fixture(scope="module")
def small_dataset(small_kits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowsynth.impact.dataset import build_dataset

    out = tmp_path_factory.mktemp("data") / "impacts.h5"
    summary = build_dataset(out, find_sources([small_kits]), DatasetSpec(duration_s=0.5, fractions=(0.6, 0.2, 0.2)))
    assert summary["duplicates"] == 1 and len(summary["skipped"]) == 1  # the copy and the empty sample
    return out


def test_cut_one_shot_trims_the_onset_and_fades_a_cut_tail() -> None:
    spec = DatasetSpec(sample_rate=1000, duration_s=0.2, preroll_s=0.0, fade_s=0.05)
    audio = np.r_[np.zeros(30), np.ones(400)]
    clip = cut_one_shot(audio, spec)
    assert clip is not None and clip.shape == (200,) and clip[0] == pytest.approx(0.9)
    assert clip[-1] == pytest.approx(0.0, abs=1e-6) and cut_one_shot(np.zeros(100), spec) is None


def test_dataset_content_split_and_atomic_file(small_dataset: Path) -> None:
    data = load_dataset(small_dataset)
    assert len(data) == 9 and data.audio.shape == (9, 11025) and data.curves.shape == (9, 7, 44)
    assert np.abs(data.audio).max(axis=1) == pytest.approx(np.full(9, 0.9), abs=1e-6)
    assert set(np.unique(data.split)) <= {0, 1, 2} and (data.split == 0).sum() >= 4
    assert not list(small_dataset.parent.glob("*.partial"))
    with h5py.File(small_dataset) as f:
        assert len(set(f["sha1"][()])) == 9


def test_split_is_seeded_and_keeps_instruments_together(small_kits: Path, tmp_path: Path) -> None:
    from flowsynth.impact.dataset import build_dataset

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    sources = find_sources([small_kits])
    build_dataset(a, sources, DatasetSpec(duration_s=0.2, seed=3))
    build_dataset(b, sources, DatasetSpec(duration_s=0.2, seed=3))
    assert (load_dataset(a).split == load_dataset(b).split).all()
    with h5py.File(a) as f:
        groups, split = f["instrument"][()], f["split"][()]
    for group in set(groups):
        assert len(set(split[groups == group])) == 1


def test_loading_a_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="no impact dataset at"):
        load_dataset(tmp_path / "missing.h5")


def test_train_through_the_cli_then_resume(small_dataset: Path, tmp_path: Path, impact_cli: Callable) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(small_dataset), "--out", str(run), "--hidden-size", "16", "--harmonics", "8"]
    assert impact_cli([*args, "--steps", "2", "--valid-every", "1", "--batch-size", "2"]) == 0
    assert {p.name for p in run.iterdir()} == {"last.pt", "best.pt", "rewind.pt"}
    assert impact_cli([*args, "--steps", "3", "--valid-every", "1", "--batch-size", "2"]) == 0
    state = load_checkpoint(run / "last.pt")
    assert state["format"] == CHECKPOINT_FORMAT and state["step"] == 3 and state["kwargs"]["hidden_size"] == 16
    model, meta = load_generator(run / "best.pt")
    assert model.num_parameters > 0 and meta["step"] >= 1
    curves = torch.from_numpy(load_dataset(small_dataset).curves[:1])
    with torch.no_grad():
        assert torch.equal(model(curves, seed=1), model(curves, seed=1))


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    from flowsynth.impact.model import ImpactGenerator
    from flowsynth.impact.train import save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", ImpactGenerator(hidden_size=8, num_harmonics=4), {"note": "x"})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)
