"""Dataset rendering: content, determinism across workers and Dask, resume after a kill, atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from flowsynth.data import DatasetFile, RenderJob, render_dataset
from flowsynth.data import render as render_module
from flowsynth.errors import DatasetError
from flowsynth.synth import RenderConfig, get_synth
from flowsynth.synth.presets import Preset

CONFIG = RenderConfig(render_s=1.0, note_s=0.5)


def job(n: int = 24, seed: int = 0, synth: str = "builtin-16", **kwargs) -> RenderJob:
    return RenderJob(get_synth(synth).describe(), CONFIG.describe(), n, seed, chunk_size=8, **kwargs)


def test_dataset_content(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    counts = render_dataset(out, job(keep_audio=True), progress=False)
    assert counts == {"kept": 24, "silent": 0, "broken": 0}
    data = DatasetFile(out)
    features, params = data.load("all")
    assert features.shape == (24, 64, 80) and params.shape == (24, 16)
    assert sum(len(data.indices(s)) for s in ("train", "valid", "test")) == 24
    assert len(data.indices("test")) >= 2
    assert data.read("audio").shape == (24, 22050)
    assert data.synth_description["learned"] == list(get_synth("builtin-16").space.learned)
    assert set(data.descriptor_names()) >= {"centroid_hz", "flatness", "loudness_db"}
    assert not out.with_name("d.h5.parts").exists()


def test_same_dataset_for_any_worker_count(tmp_path: Path) -> None:
    render_dataset(tmp_path / "one.h5", job(), workers=1, progress=False)
    render_dataset(tmp_path / "two.h5", job(), workers=2, progress=False)
    one, two = DatasetFile(tmp_path / "one.h5"), DatasetFile(tmp_path / "two.h5")
    for key in ("params", "features", "split"):
        assert np.array_equal(one.read(key), two.read(key)), key
    other = tmp_path / "seed1.h5"
    render_dataset(other, job(seed=1), progress=False)
    assert not np.array_equal(one.read("params"), DatasetFile(other).read("params"))


def test_dask_cluster_gives_the_same_dataset(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    render_dataset(tmp_path / "local.h5", job(), progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        render_dataset(tmp_path / "dask.h5", job(), scheduler=cluster.scheduler_address, progress=False)
    local, dask = DatasetFile(tmp_path / "local.h5"), DatasetFile(tmp_path / "dask.h5")
    for key in ("params", "features", "split", "status"):
        assert np.array_equal(local.read(key), dask.read(key)), key


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot reach the Dask scheduler"):
        render_dataset(tmp_path / "x.h5", job(), scheduler="tcp://127.0.0.1:1", progress=False)


def test_silent_renders_are_dropped_and_counted(tmp_path: Path) -> None:
    synth = get_synth("builtin-16")
    silent = Preset("silence", synth.space.from_units({"osc2_level": 0.0, "noise_level": 0.0}))
    spec = RenderJob(
        synth.select(synth.space.learned, {"osc1_level": 0.0}).describe(),
        CONFIG.describe(),
        16,
        0,
        chunk_size=8,
        sampling={"spread": 0.0, "random_fraction": 0.5},
    )
    counts = render_dataset(tmp_path / "s.h5", spec, presets=[silent], progress=False)
    assert counts["silent"] == 8 and counts["kept"] == 8
    data = DatasetFile(tmp_path / "s.h5")
    assert len(data.indices("all")) == 8
    assert data.strings("preset_names") == [""] * 8, "only the random patches were kept"
    with h5py.File(tmp_path / "s.h5") as file:
        assert [n.decode() for n in file["preset_names"][:8]] == ["silence"] * 8
        assert (file["split"][:8] == 255).all()


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_resume_after_kill_redoes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "k.h5"
    spec = job(n=48)
    script = (
        "import sys, json; from pathlib import Path; from flowsynth.data import RenderJob, render_dataset;"
        "render_dataset(Path(sys.argv[1]), RenderJob(**json.loads(sys.argv[2])), workers=2, progress=False)"
    )
    args = json.dumps(spec.__dict__)
    process = subprocess.Popen([sys.executable, "-c", script, str(out), args])
    parts = tmp_path / "k.h5.parts"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("chunk-*.npz"))) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    workers = children(process.pid)
    assert workers, "the job should run in worker processes"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers must not outlive a killed job"
    done_before = {p.name for p in parts.glob("chunk-*.npz")}
    assert 2 <= len(done_before) < 6, "the job should have been killed part way"
    assert not out.exists(), "a killed job must not leave a file that looks complete"

    calls: list[int] = []
    real = render_module.render_chunk
    monkeypatch.setattr(render_module, "render_chunk", lambda j, s, p: calls.append(s) or real(j, s, p))
    render_dataset(out, spec, progress=False)
    assert {f"chunk-{s:09d}.npz" for s in calls}.isdisjoint(done_before)
    assert len(calls) == 6 - len(done_before)

    render_dataset(tmp_path / "fresh.h5", spec, progress=False)
    assert np.array_equal(DatasetFile(out).read("features"), DatasetFile(tmp_path / "fresh.h5").read("features"))


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    parts = tmp_path / "r.h5.parts"
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps(job(seed=5).__dict__, sort_keys=True))
    with pytest.raises(DatasetError, match="interrupted job with other settings"):
        render_dataset(tmp_path / "r.h5", job(seed=6), progress=False)


def test_incomplete_or_corrupt_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset file"):
        DatasetFile(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        DatasetFile(junk)
    incomplete = tmp_path / "incomplete.h5"
    with h5py.File(incomplete, "w") as file:
        file["params"] = np.zeros((2, 2))
    with pytest.raises(DatasetError, match="not a complete flowsynth dataset"):
        DatasetFile(incomplete)
    full = tmp_path / "full.h5"
    render_dataset(full, job(n=8), progress=False)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DatasetError):
        DatasetFile(truncated).load("train")
