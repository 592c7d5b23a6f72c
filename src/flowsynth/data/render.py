"""Rendering a dataset: seeded parameters -> audio -> features, resumable, locally or on Dask.

Work is cut into chunks of rows. Each finished chunk is saved atomically in a
``OUT.parts/`` folder beside the output, so a killed job loses at most the chunks in
flight, and rerunning the same command renders only what is missing. The final
file is assembled once every chunk exists, written as ``OUT.tmp`` and renamed: a
file at ``OUT`` is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from flowsynth.data.sampling import Preset, sample_params
from flowsynth.data.store import DatasetFile, Status, write_dataset
from flowsynth.errors import DatasetError

__all__ = ["RenderJob", "render_chunk", "render_dataset"]

#: A render whose peak stays below this is silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: A render whose peak exceeds this has blown up.
BROKEN_PEAK = 100.0


@dataclass(frozen=True)
class RenderJob:
    """Everything that decides a dataset's content; a resumed job must match it exactly."""

    synth: dict
    render: dict
    n: int
    seed: int
    chunk_size: int = 64
    keep_audio: bool = False
    sampling: dict = field(default_factory=dict)


_SYNTHS: dict[str, object] = {}


def _synth(description: dict):
    """The synth of a description, built once per process."""
    from flowsynth.synth import from_description

    key = json.dumps(description, sort_keys=True)
    if key not in _SYNTHS:
        _SYNTHS[key] = from_description(description)
    return _SYNTHS[key]


def render_chunk(job: RenderJob, start: int, params: np.ndarray) -> dict[str, np.ndarray]:
    """Renders rows ``start ...`` of a job: audio, status, log-mel features and descriptors.

    Runs on one thread wherever it runs, so that results are bit-identical whether
    the chunk is rendered here, in a local worker or on a Dask worker.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _render_chunk(job, start, params)
    finally:
        torch.set_num_threads(threads)


def _render_chunk(job: RenderJob, start: int, params: np.ndarray) -> dict[str, np.ndarray]:
    from flowsynth.features.descriptors import describe
    from flowsynth.features.logmel import log_mel
    from flowsynth.synth import RenderConfig

    config = RenderConfig(**job.render)
    with torch.no_grad():
        audio = _synth(job.synth).render_with(torch.from_numpy(params), config, seed=job.seed, on_error="nan")
        peak = audio.abs().amax(dim=1)
        finite = torch.isfinite(audio).all(dim=1) & (peak < BROKEN_PEAK)
        status = torch.where(finite, torch.where(peak < SILENCE_PEAK, Status.SILENT, Status.KEPT), Status.BROKEN)
        audio = torch.where(finite[:, None], audio, torch.zeros_like(audio))
        out = {"start": np.array(start), "status": status.to(torch.uint8).numpy()}
        out["features"] = log_mel(audio, config.sample_rate).numpy()
        for name, values in describe(audio, config.sample_rate).items():
            out[f"descriptors/{name}"] = values.float().numpy()
    if job.keep_audio:
        out["audio"] = audio.numpy()
    return out


def _init_worker(parent_pid: int) -> None:
    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """Ends this worker when the job that started it is gone (killed), so no work runs orphaned."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def render_dataset(
    out: Path,
    job: RenderJob,
    presets: list[Preset] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Renders (or finishes rendering) a dataset file.

    Arguments:
        out: Final HDF5 file.
        job: What to render.
        presets: Presets to sample around (their names become row names).
        workers: Local worker processes (1 renders in this process).
        scheduler: Address of a Dask distributed scheduler, instead of local workers.
        progress: Show a progress bar.

    Returns:
        Counts of kept, silent and broken rows.
    """
    out = Path(out)
    if out.exists():
        return _existing(out, job)
    parts = _parts_folder(out, job)
    sampled = sample_params(job.n, len(job.synth["learned"]), job.seed, presets, **job.sampling)
    params = sampled.params.numpy()
    todo = [s for s in range(0, job.n, job.chunk_size) if not _part(parts, s).exists()]
    bar = tqdm(total=job.n, initial=job.n - sum(min(job.chunk_size, job.n - s) for s in todo), disable=not progress)
    bar.set_description(f"rendering {out.name}")
    for chunk in _run(job, params, todo, workers, scheduler):
        _save_part(parts, chunk)
        bar.update(len(chunk["status"]))
    bar.close()
    names = {"preset_names": np.array(sampled.preset_names, dtype=object), "tags": np.array(sampled.tags, dtype=object)}
    attrs = {"synth": job.synth, "render": job.render, "sampling": {**job.sampling, "presets": len(presets or [])}}
    counts = write_dataset(out, _chunks(parts, job, params, names), job.n, attrs, job.seed)
    shutil.rmtree(parts)
    return counts


def _existing(out: Path, job: RenderJob) -> dict[str, int]:
    dataset = DatasetFile(out)
    if dataset.synth_description != job.synth or dataset.attrs.get("seed") != job.seed:
        raise DatasetError(f"{out} already exists with another synth or seed; remove it or choose another --out")
    return dataset.counts


def _parts_folder(out: Path, job: RenderJob) -> Path:
    parts = out.with_name(out.name + ".parts")
    manifest = parts / "job.json"
    wanted = json.dumps(asdict(job), sort_keys=True)
    if manifest.exists() and manifest.read_text() != wanted:
        raise DatasetError(f"{parts} holds an interrupted job with other settings; remove it to start over")
    parts.mkdir(parents=True, exist_ok=True)
    _atomic_write(manifest, wanted.encode())
    return parts


def _part(parts: Path, start: int) -> Path:
    return parts / f"chunk-{start:09d}.npz"


def _save_part(parts: Path, chunk: dict[str, np.ndarray]) -> None:
    tmp = parts / f"tmp-{int(chunk['start']):09d}.npz"
    with open(tmp, "wb") as file:
        np.savez(file, **{k.replace("/", "|"): v for k, v in chunk.items()})  # type: ignore[arg-type]
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(_part(parts, int(chunk["start"])))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _chunks(parts: Path, job: RenderJob, params: np.ndarray, names: dict) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, job.n, job.chunk_size):
        rows = slice(start, start + job.chunk_size)
        with np.load(_part(parts, start)) as saved:
            chunk = {k.replace("|", "/"): saved[k] for k in saved.files}
        yield {**chunk, "params": params[rows], **{k: v[rows] for k, v in names.items()}}


def _run(job: RenderJob, params: np.ndarray, todo: list[int], workers: int, scheduler: str | None):
    tasks = [(job, start, params[start : start + job.chunk_size]) for start in todo]
    if scheduler:
        yield from _run_dask(tasks, scheduler)
    elif workers <= 1:
        for task in tasks:
            yield render_chunk(*task)
    else:
        yield from _run_local(tasks, workers)


def _run_local(tasks: list, workers: int):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),))
    with pool:
        futures = [pool.submit(render_chunk, *task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _run_dask(tasks: list, scheduler: str):
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise DatasetError("--scheduler needs Dask distributed: pip install 'flowsynth[distributed]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as error:
        raise DatasetError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    with client:
        futures = [client.submit(render_chunk, *task, pure=False) for task in tasks]
        for future in dask_completed(futures):
            yield future.result()
