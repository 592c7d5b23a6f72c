"""The dataset file: one HDF5 file of parameters, features, tags and split, and its reader.

Layout (``format`` attribute ``flowsynth-dataset/1``):

* ``params`` ``[n, d]`` float32: normalized learned parameters.
* ``features`` ``[n, 64, 80]`` float32: log-mel model input (not normalized).
* ``audio`` ``[n, samples]`` float32, only when rendered with ``--audio``.
* ``status`` ``[n]`` uint8: 1 kept, 2 silent, 3 broken (NaN, crash, hang). Dropped rows stay,
  so the parameters that broke a synth can be looked at, but belong to no split.
* ``split`` ``[n]`` uint8: 0 train, 1 valid, 2 test, 255 dropped.
* ``preset_names``, ``tags`` ``[n]`` strings; ``descriptors/NAME`` ``[n]`` float32.
* attributes: ``synth`` and ``render`` (JSON), ``seed``, ``counts`` (JSON), ``complete``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from flowsynth.errors import DatasetError

__all__ = ["FORMAT", "SPLITS", "Status", "DatasetFile", "write_dataset"]

FORMAT = "flowsynth-dataset/1"
SPLITS = {"train": 0, "valid": 1, "test": 2}
DROPPED = 255


class Status:
    """Row status codes."""

    KEPT, SILENT, BROKEN = 1, 2, 3


def assign_split(status: np.ndarray, seed: int, fractions: tuple[float, float] = (0.8, 0.1)) -> np.ndarray:
    """Seeded train/valid/test split of the kept rows; dropped rows get 255."""
    split = np.full(len(status), DROPPED, dtype=np.uint8)
    kept = np.flatnonzero(status == Status.KEPT)
    order = np.random.default_rng(seed).permutation(kept)
    n_train = round(len(order) * fractions[0])
    n_valid = round(len(order) * fractions[1])
    split[order[:n_train]] = SPLITS["train"]
    split[order[n_train : n_train + n_valid]] = SPLITS["valid"]
    split[order[n_train + n_valid :]] = SPLITS["test"]
    return split


def write_dataset(path: Path, chunks, n: int, attrs: dict, seed: int) -> dict[str, int]:
    """Assembles rendered chunks into the final file at ``path``, atomically.

    Arguments:
        path: Final file; written as ``path.tmp`` and renamed once complete.
        chunks: Iterable of dicts of arrays (``start``, ``params``, ``features``,
            ``status``, ``preset_names``, ``tags``, ``descriptors/NAME``, maybe ``audio``).
        n: Number of rows.
        attrs: JSON-ready attributes to store.
        seed: Seed of the split.

    Returns:
        Counts of kept, silent and broken rows.
    """
    tmp = path.with_name(path.name + ".tmp")
    status = np.zeros(n, dtype=np.uint8)
    with h5py.File(tmp, "w") as file:
        for chunk in chunks:
            start = int(chunk["start"])
            rows = slice(start, start + len(chunk["status"]))
            for key, value in chunk.items():
                if key != "start":
                    _dataset(file, key, value, n)[rows] = value
            status[rows] = chunk["status"]
        if (status == 0).any():
            raise DatasetError(f"{int((status == 0).sum())} rows were never rendered")
        file["split"] = assign_split(status, seed)
        counts = {name: int((status == code).sum()) for name, code in _STATUS_NAMES.items()}
        for key, value in {**attrs, "counts": counts, "seed": seed}.items():
            file.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value
        file.attrs["format"] = FORMAT
        file.attrs["complete"] = True
    tmp.replace(path)
    return counts


_STATUS_NAMES = {"kept": Status.KEPT, "silent": Status.SILENT, "broken": Status.BROKEN}


def _dataset(file: h5py.File, key: str, value: np.ndarray, n: int) -> h5py.Dataset:
    if key in file:
        return file[key]
    if value.dtype.kind in "OU":
        return file.create_dataset(key, (n,), dtype=h5py.string_dtype())
    shape = (n, *value.shape[1:])
    chunk_rows = max(1, min(n, 64, (1 << 20) // max(1, value[0].nbytes)))
    return file.create_dataset(key, shape, dtype=value.dtype, chunks=(chunk_rows, *value.shape[1:]))


@dataclass
class DatasetFile:
    """A complete dataset file, opened for reading.

    Example:
        ``DatasetFile("data/b32.h5").load("train")`` gives ``(features, params)``.
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            partial = self.path.with_name(self.path.name + ".parts")
            hint = " (rendering was interrupted: rerun the same render-dataset command)" if partial.exists() else ""
            raise DatasetError(f"no dataset file at {self.path}{hint}")
        try:
            with h5py.File(self.path, "r") as file:
                self.attrs = {k: _attr(v) for k, v in file.attrs.items()}
                self.split = file["split"][:] if "split" in file else None
        except OSError as error:
            raise DatasetError(f"{self.path} is not a readable HDF5 file: {error}") from None
        if self.attrs.get("format") != FORMAT or not self.attrs.get("complete") or self.split is None:
            raise DatasetError(f"{self.path} is not a complete flowsynth dataset (format {FORMAT})")

    @property
    def synth_description(self) -> dict:
        """The description of the synth that rendered the dataset."""
        return self.attrs["synth"]

    @property
    def render_config(self) -> dict:
        """The render conditions (note, velocity, durations, sample rate)."""
        return self.attrs["render"]

    @property
    def counts(self) -> dict[str, int]:
        """Kept, silent and broken row counts."""
        return self.attrs["counts"]

    def indices(self, split: str) -> np.ndarray:
        """Row indices of a split (``train``, ``valid``, ``test`` or ``all`` kept rows)."""
        if split == "all":
            return np.flatnonzero(self.split != DROPPED)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}, all")
        return np.flatnonzero(self.split == SPLITS[split])

    def read(self, key: str, split: str = "all") -> np.ndarray:
        """Reads one array (``params``, ``features``, ``audio``, ``descriptors/centroid_hz``, ...) for a split."""
        with h5py.File(self.path, "r") as file:
            if key not in file:
                raise DatasetError(f"{self.path} has no {key!r}; it has: {', '.join(_keys(file))}")
            rows = self.indices(split)
            if len(rows) == 0:
                return file[key][:0]
            data = file[key][rows[0] : rows[-1] + 1]
            return data[rows - rows[0]]

    def load(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """Features ``[n, 64, 80]`` and parameters ``[n, d]`` of a split, as tensors."""
        return torch.from_numpy(self.read("features", split)), torch.from_numpy(self.read("params", split))

    def strings(self, key: str, split: str = "all") -> list[str]:
        """A string column (``preset_names``, ``tags``) of a split."""
        return [v.decode() if isinstance(v, bytes) else str(v) for v in self.read(key, split)]

    def descriptor_names(self) -> list[str]:
        """Names of the stored per-sound descriptors."""
        with h5py.File(self.path, "r") as file:
            return list(file["descriptors"]) if "descriptors" in file else []


def _attr(value):
    if isinstance(value, str) and value[:1] in "{[":
        return json.loads(value)
    return value.item() if isinstance(value, np.generic) else value


def _keys(file: h5py.File) -> list[str]:
    keys: list[str] = []
    file.visit(lambda name: keys.append(name) if isinstance(file[name], h5py.Dataset) else None)
    return keys
