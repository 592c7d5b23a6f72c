"""Builds an :class:`~flowsynth.control.instrument.Instrument` from a checkpoint, with its measurements cached.

Measuring the macros renders ``anchors x latent_size x steps`` sounds (about half a minute for a
16-parameter model on one core), so the result is kept in a cache folder (``$FLOWSYNTH_CACHE``, else
``$XDG_CACHE_HOME/flowsynth``, else ``~/.cache/flowsynth``) under a key made of the checkpoint's
bytes, the preset source and the settings. Delete the folder to measure again.

The preset bank (for loading presets, the map and the knobs' reference set) comes from a dataset
(``data``), from presets (``"factory"`` or a JSON file), or else from ``random_presets`` seeded
uniform parameter vectors named ``random #i``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from flowsynth.control.descriptors import DescriptorScale
from flowsynth.control.instrument import Instrument
from flowsynth.control.macros import AnalysisConfig, MacroSet, analyze_macros
from flowsynth.control.map import PresetBank, preset_map
from flowsynth.control.semantic import SURROGATE_SOURCES, SemanticKnobs, fit_semantic_knobs, resolve_source
from flowsynth.control.space import SoundSpace
from flowsynth.control.surrogate import fit_dataset_surrogate

__all__ = ["CACHE_FORMAT", "ControlSetup", "build_instrument", "default_cache_dir"]

CACHE_FORMAT = "flowsynth-control/4"
#: Banks smaller than this are completed with random presets to measure the knobs.
_MIN_REFERENCE = 16


def default_cache_dir() -> Path:
    """Where measurements are cached (see the module docstring)."""
    if os.environ.get("FLOWSYNTH_CACHE"):
        return Path(os.environ["FLOWSYNTH_CACHE"]) / "control"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowsynth" / "control"


@dataclass(frozen=True)
class ControlSetup:
    """Where an instrument's presets come from and how its knobs are measured.

    Arguments:
        data: A dataset file: its sounds are the preset bank (a seeded subset of ``bank_limit``).
        presets: ``"factory"`` (the synth's banks) or a JSON preset file, when there is no dataset.
        bank_limit: Most presets kept in the bank (and on the map).
        random_presets: Size of the random bank used when there are neither data nor presets.
        rendered_reference: Presets rendered to fit the measured semantic knobs when the bank has no
            stored descriptors (a seeded subset).
        analysis: How the macros are measured.
        seed: Seed of the bank subset and the random bank.
        semantic: Where the semantic knobs come from: ``"auto"`` (a ``flow_dis`` model's own, else
            validated when there is a dataset, else measured), ``"measured"``, ``"steered"``,
            ``"guided"`` or ``"validated"`` (all but measured need a dataset: the descriptor surrogate
            learns from its training split); see
            :func:`~flowsynth.control.semantic.fit_semantic_knobs`.
        surrogate_steps: Training batches of the descriptor surrogate of steered and guided knobs.
    """

    data: str | None = None
    presets: str | None = None
    bank_limit: int = 2000
    random_presets: int = 256
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    rendered_reference: int = 128
    seed: int = 0
    semantic: str = "auto"
    surrogate_steps: int = 4000

    def bank(self, space: SoundSpace) -> PresetBank:
        """The preset bank."""
        if self.data:
            return PresetBank.from_dataset(self.data, "all", self.bank_limit, self.seed)
        if self.presets:
            return PresetBank.from_presets(space, self.presets)
        params = torch.rand(self.random_presets, space.num_params, generator=torch.Generator().manual_seed(self.seed))
        return PresetBank([f"random #{i}" for i in range(len(params))], params)

    def key(self, model_path: Path) -> str:
        """The cache key: checkpoint bytes, preset source (path, size, time) and settings."""
        digest = hashlib.sha256(model_path.read_bytes())
        for source in (self.data, self.presets):
            if source and Path(source).is_file():
                stat = Path(source).stat()
                digest.update(f"{Path(source).resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(json.dumps(asdict(self), sort_keys=True, default=str).encode() + CACHE_FORMAT.encode())
        return digest.hexdigest()[:24]


def build_instrument(
    model_path: str | os.PathLike[str],
    setup: ControlSetup | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    log: Callable[[str], None] | None = None,
) -> Instrument:
    """Loads a checkpoint and measures (or reads from the cache) its macro and semantic knobs.

    Arguments:
        model_path: The model checkpoint (a latent model).
        setup: Preset source and measuring settings.
        cache_dir: The cache folder (None: :func:`default_cache_dir`).
        use_cache: Read and write the cache.
        log: Called with progress lines (None: silent).
    """
    setup, path = setup or ControlSetup(), Path(model_path)
    space = SoundSpace.from_checkpoint(path, seed=setup.seed)
    bank = setup.bank(space)
    folder, key = cache_dir or default_cache_dir(), setup.key(path)
    cache, weights = folder / f"{key}.json", folder / f"{key}.pt"  # the knobs; a steered knob's surrogate
    if use_cache and cache.is_file():
        cached = _read_cache(space, bank, cache, weights)
        if cached is not None:
            return cached
    if log:
        log(f"placing {len(bank)} presets in the latent space...")
    placed = preset_map(space, bank)
    macros, semantic = _measure(space, bank, placed.latents, setup, log)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        if semantic.surrogate is not None:
            tmp_weights = weights.with_name(weights.name + ".tmp")
            torch.save(semantic.surrogate.state_dict(), tmp_weights)
            os.replace(tmp_weights, weights)
        payload = {
            "format": CACHE_FORMAT,
            "macros": macros.to_dict(),
            "semantic": semantic.to_dict(),
            "bank_latents": [[round(float(v), 6) for v in row] for row in placed.latents],
        }
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, cache)
    return Instrument(space, macros, semantic, placed)


def _read_cache(space: SoundSpace, bank: PresetBank, cache: Path, weights: Path) -> Instrument | None:
    """The cached instrument, or None when the cache is stale, incomplete or damaged (measured again)."""
    try:
        data = json.loads(cache.read_text())
        if data.get("format") != CACHE_FORMAT or len(data.get("bank_latents", [])) != len(bank):
            return None
        state = None
        if data["semantic"].get("surrogate") is not None:
            if not weights.is_file():
                return None
            state = torch.load(weights, weights_only=True)
        semantic = SemanticKnobs.from_dict(space, data["semantic"], state)
        placed = preset_map(space, bank, torch.tensor(data["bank_latents"]))
        return Instrument(space, MacroSet.from_dict(data["macros"]), semantic, placed)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None


def _measure(
    space: SoundSpace,
    bank: PresetBank,
    latents: torch.Tensor,
    setup: ControlSetup,
    log: Callable[[str], None] | None,
) -> tuple[MacroSet, SemanticKnobs]:
    """The macro and semantic knobs, measured around the bank's latents."""
    reference = latents
    if len(reference) < _MIN_REFERENCE:
        extra = ControlSetup(random_presets=setup.random_presets, seed=setup.seed).bank(space)
        reference = torch.cat([reference, space.to_latent(extra.params)])
    scale = DescriptorScale.fit(bank.descriptors) if bank.descriptors else None
    described = bool(bank.descriptors) and len(reference) == len(bank)
    needs_surrogate = resolve_source(space, setup.semantic, bool(setup.data) and described) in SURROGATE_SOURCES
    if needs_surrogate and (not setup.data or not described):
        raise ValueError("steered, guided and validated semantic knobs need a dataset with stored descriptors (--data)")
    if log:
        steps = setup.analysis
        log(f"measuring {space.latent_size} latent dimensions ({steps.anchors} anchors x {steps.steps} steps)...")
    macros = analyze_macros(space, reference, setup.analysis, scale)
    if log:
        log("fitting the semantic knobs...")
    if needs_surrogate:
        surrogate = fit_dataset_surrogate(setup.data, setup.surrogate_steps, setup.seed, log)  # type: ignore[arg-type]
        if log:
            log("choosing each pair's knob around validation presets...")
        semantic = fit_semantic_knobs(space, reference, bank.descriptors, setup.semantic, surrogate, seed=setup.seed)
    elif described:
        semantic = fit_semantic_knobs(space, reference, bank.descriptors, setup.semantic)
    else:
        order = torch.randperm(len(reference), generator=torch.Generator().manual_seed(setup.seed))
        semantic = fit_semantic_knobs(space, reference[order[: setup.rendered_reference]], source=setup.semantic)
    return macros, semantic
