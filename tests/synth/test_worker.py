"""Worker processes: a real crash or hang of a worker costs one sound, and no process outlives its pool."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from flowsynth.errors import RenderError
from flowsynth.synth.worker import EngineSpec, WorkerPool

FAULT = EngineSpec("flowsynth.synth.worker:FaultEngine", {}, "fault-synth")
CONFIG = {"note": 69, "velocity": 100, "note_s": 0.05, "render_s": 0.1, "sample_rate": 8000}
PLAY, CRASH, HANG, RAISE = 0, 1, 2, 3


def faults(*codes: int) -> np.ndarray:
    """One sound per code, at level 0.5."""
    return np.array([[0.5, code] for code in codes], dtype=np.float64)


def alive(pid: int) -> bool:
    """Whether a process exists (a zombie counts: it still has an entry in /proc)."""
    return os.path.exists(f"/proc/{pid}")


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(num_workers=2) as pool:
        yield pool


def test_renders_every_sound(pool: WorkerPool) -> None:
    audio = pool.render(FAULT, faults(*[PLAY] * 5), CONFIG)
    assert audio.shape == (5, 800) and audio.dtype == np.float32
    assert np.allclose(np.abs(audio).max(axis=1), 0.5, atol=1e-3)
    t = np.arange(800) / 8000
    assert np.allclose(audio[3], 0.5 * np.sin(2 * np.pi * 440 * t), atol=1e-6)


def test_crash_gives_a_nan_row_and_the_job_goes_on(pool: WorkerPool) -> None:
    audio = pool.render(FAULT, faults(PLAY, PLAY, CRASH, PLAY, PLAY, PLAY), CONFIG, on_error="nan")
    broken = np.isnan(audio).any(axis=1)
    assert broken.tolist() == [False, False, True, False, False, False]
    assert np.allclose(np.abs(audio[~broken]).max(axis=1), 0.5, atol=1e-3)


def test_crash_raises_naming_the_sound_and_the_signal(pool: WorkerPool) -> None:
    with pytest.raises(
        RenderError, match=r"fault-synth: sound 1 of the batch failed: the worker crashed \(signal SIGSEGV\)"
    ):
        pool.render(FAULT, faults(PLAY, CRASH, PLAY), CONFIG, on_error="raise")


def test_crashed_worker_is_replaced(pool: WorkerPool) -> None:
    pool.render(FAULT, faults(PLAY, PLAY), CONFIG)
    before = set(pool.pids())
    pool.render(FAULT, faults(CRASH), CONFIG, on_error="nan")
    (lost,) = before - set(pool.pids())
    assert not alive(lost)
    assert pool.render(FAULT, faults(PLAY), CONFIG).max() == pytest.approx(0.5, abs=1e-3)


def test_hang_times_out(pool: WorkerPool) -> None:
    audio = pool.render(FAULT, faults(PLAY, HANG, PLAY), CONFIG, on_error="nan", timeout_s=1.0)
    assert np.isnan(audio).any(axis=1).tolist() == [False, True, False]
    with pytest.raises(
        RenderError, match=r"sound 0 of the batch failed: timed out after 1 s \(the worker was killed\)"
    ):
        pool.render(FAULT, faults(HANG), CONFIG, timeout_s=1.0)


def test_python_error_in_one_sound(pool: WorkerPool) -> None:
    audio = pool.render(FAULT, faults(RAISE, PLAY), CONFIG, on_error="nan")
    assert np.isnan(audio).any(axis=1).tolist() == [True, False]
    with pytest.raises(RenderError, match="sound 0 of the batch failed: ValueError: fault injected by the test hook"):
        pool.render(FAULT, faults(RAISE), CONFIG)


@pytest.mark.parametrize(
    ("on_load", "message"),
    [
        ("crash", r"could not load the synth: the worker crashed \(signal SIGSEGV\)"),
        ("raise", "ValueError: fault injected by the test hook"),
    ],
)
def test_engine_that_cannot_load_fails_the_whole_job(pool: WorkerPool, on_load: str, message: str) -> None:
    spec = EngineSpec("flowsynth.synth.worker:FaultEngine", {"on_load": on_load}, "broken-synth")
    with pytest.raises(RenderError, match=f"broken-synth: {message}"):
        pool.render(spec, faults(PLAY), CONFIG, on_error="nan")


def test_bad_on_error(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'nan', got 'skip'"):
        pool.render(FAULT, faults(PLAY), CONFIG, on_error="skip")


def test_close_leaves_no_process() -> None:
    pool = WorkerPool(num_workers=2)
    pool.render(FAULT, faults(PLAY, PLAY, PLAY, PLAY), CONFIG)
    pids = pool.pids()
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    pool.render(FAULT, faults(CRASH), CONFIG, on_error="nan")  # a crashed worker is reaped too
    pids += pool.pids()
    pool.close()
    assert pool.pids() == [] and not any(alive(pid) for pid in pids)
