"""Real recorded impacts as a dataset: one-shots cut from Debian's drum kits, with descriptor curves and a split.

Each source file becomes one clip: mixed to mono, resampled, trimmed to its onset, cut or padded to a fixed
length (with a short fade-out where cut), peak-normalized. Clips whose 16-bit content is identical are kept
once. The split is drawn per instrument (all velocity layers of one drum go to the same split), so held-out
sounds are not near-copies of training sounds.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowsynth.errors import AudioError, DatasetError
from flowsynth.impact._io import atomic_path, load_mono, publish
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, DescriptorConfig, describe

__all__ = [
    "DEFAULT_KITS",
    "SPLITS",
    "DatasetSpec",
    "ImpactDataset",
    "Source",
    "build_dataset",
    "content_hash",
    "cut_one_shot",
    "find_sources",
    "load_dataset",
]

#: Where Debian's ``hydrogen-drumkits`` package installs its kits.
DEFAULT_KITS = Path("/usr/share/hydrogen/data/drumkits")
#: Split names, indexed by the values of the ``split`` array.
SPLITS = ("train", "valid", "test")
_AUDIO_SUFFIXES = {".wav", ".flac", ".aiff", ".aif", ".ogg"}
_FORMAT = "flowsynth-impacts-1"


@dataclass(frozen=True)
class Source:
    """One recorded file: its path, kit and instrument (the group kept together by the split)."""

    path: Path
    kit: str
    instrument: str


@dataclass(frozen=True)
class DatasetSpec:
    """How one-shots are cut and split.

    Arguments:
        sample_rate: Sample rate of the clips in Hz.
        duration_s: Length of every clip in seconds.
        onset_db: The onset is the first sample within this many dB of the peak.
        preroll_s: Audio kept before the onset.
        fade_s: Raised-cosine fade-out applied where a clip is cut.
        peak: Peak amplitude after normalization.
        fractions: Train, valid and test shares of the instruments.
        seed: Seed of the split.
    """

    sample_rate: int = 22050
    duration_s: float = 1.0
    onset_db: float = -30.0
    preroll_s: float = 0.002
    fade_s: float = 0.05
    peak: float = 0.9
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.1 <= self.duration_s <= 10.0:
            raise ValueError(f"duration_s must be in [0.1, 10] seconds, got {self.duration_s}")
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be three non-negative shares summing to 1, got {self.fractions}")
        if not 0 < self.peak <= 1.0:
            raise ValueError(f"peak must be in (0, 1], got {self.peak}")

    @property
    def num_samples(self) -> int:
        """Samples per clip."""
        return round(self.duration_s * self.sample_rate)


@dataclass
class ImpactDataset:
    """One-shots in memory: ``audio`` [N, samples], ``curves`` [N, 7, frames], ``split`` [N] (0/1/2)."""

    audio: np.ndarray
    curves: np.ndarray
    split: np.ndarray
    names: list[str]
    sample_rate: int
    descriptor_config: DescriptorConfig

    def subset(self, split: str) -> ImpactDataset:
        """The clips of one split (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        keep = np.flatnonzero(self.split == SPLITS.index(split))
        return ImpactDataset(
            self.audio[keep],
            self.curves[keep],
            self.split[keep],
            [self.names[i] for i in keep],
            self.sample_rate,
            self.descriptor_config,
        )

    def __len__(self) -> int:
        return len(self.audio)

    def index_of(self, name: str) -> int:
        """Index of the clip whose name (``kit/file``) is or ends with ``name``."""
        hits = [i for i, n in enumerate(self.names) if n == name or n.endswith(name)]
        if not hits:
            raise ValueError(f"no clip named {name!r} in the dataset; names look like {self.names[0]!r}")
        return hits[0]


def find_sources(roots: Iterable[Path] = (DEFAULT_KITS,)) -> list[Source]:
    """Every audio file under the kit folders, with the instrument each belongs to (from ``drumkit.xml``).

    Files a kit's ``drumkit.xml`` does not list form their own instrument. The list is sorted by path.
    """
    sources = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"no drum kit folder at {root}; install Debian's hydrogen-drumkits or pass --kits")
        for kit in sorted(p for p in root.iterdir() if p.is_dir()):
            instruments = _instruments_of(kit / "drumkit.xml")
            for path in sorted(p for p in kit.iterdir() if p.suffix.lower() in _AUDIO_SUFFIXES):
                sources.append(Source(path, kit.name, instruments.get(path.name, path.stem)))
    return sources


def _instruments_of(xml_path: Path) -> dict[str, str]:
    """File name -> instrument name, as listed by a Hydrogen ``drumkit.xml`` (empty when absent)."""
    if not xml_path.is_file():
        return {}
    try:
        tree = ElementTree.parse(xml_path)
    except ElementTree.ParseError:
        return {}
    mapping = {}
    for instrument in tree.iter():
        if not instrument.tag.endswith("instrument"):
            continue
        name = next((c.text for c in instrument if c.tag.endswith("name")), None) or "?"
        for element in instrument.iter():
            if element.tag.endswith("filename") and element.text:
                mapping[element.text] = name
    return mapping


def cut_one_shot(audio: np.ndarray, spec: DatasetSpec) -> np.ndarray | None:
    """Onset-trimmed, fixed-length, peak-normalized clip; ``None`` for a silent input.

    >>> spec = DatasetSpec(duration_s=0.1, sample_rate=1000)
    >>> clip = cut_one_shot(np.r_[np.zeros(50), np.ones(20), np.zeros(10)], spec)
    >>> clip.shape, round(float(clip.max()), 4), int(np.argmax(clip > 0))
    ((100,), 0.9, 2)
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-4:
        return None
    onset = int(np.argmax(np.abs(audio) >= peak * 10.0 ** (spec.onset_db / 20.0)))
    start = max(0, onset - round(spec.preroll_s * spec.sample_rate))
    clip = np.asarray(audio[start : start + spec.num_samples], dtype=np.float64)
    if len(audio) - start > spec.num_samples:
        fade = min(round(spec.fade_s * spec.sample_rate), len(clip))
        clip[-fade:] *= 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, fade)))
    clip = np.pad(clip, (0, spec.num_samples - len(clip)))
    return (clip * spec.peak / np.max(np.abs(clip))).astype(np.float32)


def content_hash(clip: np.ndarray) -> str:
    """SHA-1 of the clip quantized to 16 bits (identical-sounding files hash alike)."""
    return hashlib.sha1(np.round(clip * 32767.0).astype("<i2").tobytes()).hexdigest()


def _assign_splits(groups: Sequence[str], spec: DatasetSpec) -> np.ndarray:
    """Split index per clip, drawn per group with ``spec.seed``."""
    unique = sorted(set(groups))
    order = np.random.default_rng(spec.seed).permutation(len(unique))
    bounds = np.cumsum(spec.fractions)[:2] * len(unique)
    group_split = {unique[i]: int(np.searchsorted(bounds, rank, side="right")) for rank, i in enumerate(order)}
    return np.array([group_split[g] for g in groups], dtype=np.uint8)


def build_dataset(
    out: str | Path,
    sources: Sequence[Source],
    spec: DatasetSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Cuts, deduplicates, describes and splits ``sources`` into an HDF5 file written atomically.

    Returns:
        A summary: clip counts per split, skipped files (unreadable or silent) and duplicates.
    """
    spec = spec or DatasetSpec()
    if not sources:
        raise DatasetError("no audio files to build a dataset from; check the kit folders")
    config = DescriptorConfig(sample_rate=spec.sample_rate)
    clips, curves, names, groups, hashes, skipped, seen = [], [], [], [], [], [], set()
    for i, source in enumerate(sources):
        if progress:
            progress(i, len(sources))
        clip = _read_clip(source.path, spec)
        if clip is None:
            skipped.append(str(source.path))
            continue
        digest = content_hash(clip)
        if digest in seen:
            continue
        seen.add(digest)
        clips.append(clip)
        curves.append(describe(clip, config))
        names.append(f"{source.kit}/{source.path.name}")
        groups.append(f"{source.kit}/{source.instrument}")
        hashes.append(digest)
    if not clips:
        raise DatasetError("every source file was silent or unreadable")
    split = _assign_splits(groups, spec)
    _write(Path(out), np.stack(clips), np.stack(curves), split, names, groups, hashes, spec, config)
    return {
        "clips": len(clips),
        "per_split": {s: int((split == k).sum()) for k, s in enumerate(SPLITS)},
        "instruments": len(set(groups)),
        "duplicates": len(sources) - len(skipped) - len(clips),
        "skipped": skipped,
    }


def _read_clip(path: Path, spec: DatasetSpec) -> np.ndarray | None:
    try:
        return cut_one_shot(load_mono(path, spec.sample_rate), spec)
    except AudioError:
        return None


def _write(path: Path, audio, curves, split, names, groups, hashes, spec: DatasetSpec, config) -> None:
    import h5py

    temporary, final = atomic_path(path)
    try:
        with h5py.File(temporary, "w") as f:
            f.create_dataset("audio", data=audio, compression="gzip", compression_opts=4)
            f.create_dataset("curves", data=curves)
            f.create_dataset("split", data=split)
            strings = h5py.string_dtype()
            for key, values in (("name", names), ("instrument", groups), ("sha1", hashes)):
                f.create_dataset(key, data=np.array(values, dtype=object), dtype=strings)
            f.attrs.update(
                format=_FORMAT,
                sample_rate=spec.sample_rate,
                descriptor_names=json.dumps(DESCRIPTOR_NAMES),
                descriptor_config=json.dumps(config.to_dict()),
                spec=json.dumps(spec.__dict__),
            )
        publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def load_dataset(path: str | Path) -> ImpactDataset:
    """Reads a dataset written by :func:`build_dataset`.

    Raises:
        DatasetError: when the file is missing, not HDF5, or of another format.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no impact dataset at {path}; build one with 'flowsynth impact dataset --out {path}'")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != _FORMAT:
                raise DatasetError(f"{path} is not an impact dataset (format {f.attrs.get('format')!r})")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["name"][()]]
            config = DescriptorConfig(**json.loads(f.attrs["descriptor_config"]))
            return ImpactDataset(
                f["audio"][()], f["curves"][()], f["split"][()], names, int(f.attrs["sample_rate"]), config
            )
    except OSError as error:
        raise DatasetError(
            f"cannot read {path} as HDF5 ({error}); rebuild it with 'flowsynth impact dataset'"
        ) from error
