"""Presets: named parameter settings, from a synth's factory banks or from JSON files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.synth.base import Synth

__all__ = ["Preset", "load_presets", "preset_to_json", "read_preset_file"]


@dataclass(frozen=True)
class Preset:
    """A named point of a synth's learned parameter space.

    Arguments:
        name: The preset's name.
        vector: Normalized learned parameters ``[num_learned]``.
        tags: Free-form tags (bank, category, ...).
    """

    name: str
    vector: Tensor
    tags: tuple[str, ...] = ()


def load_presets(synth: Synth, source: str) -> list[Preset]:
    """Presets of ``synth`` from ``source``: ``"factory"`` (the synth's own banks) or a JSON file.

    A JSON file holds ``{"NAME": {"PARAM": value in units, ...}, ...}``, or a list of
    preset files as :func:`preset_to_json` writes them; parameters not given take their default.
    """
    if source == "factory":
        presets = synth.factory_presets()
        if not presets:
            raise ValueError(f"synth {synth.name!r} has no factory presets; give a JSON file of presets instead")
        return presets
    return read_preset_file(synth, Path(source))


def read_preset_file(synth: Synth, path: Path) -> list[Preset]:
    """Reads presets for ``synth`` from a JSON file (see :func:`load_presets`)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if isinstance(data, dict) and "params" in data:
        data = [data]
    entries = data.items() if isinstance(data, dict) else ((d.get("name", ""), d["params"]) for d in data)
    presets = []
    for name, values in entries:
        if not isinstance(values, dict):
            raise ValueError(f"{path}: preset {name!r} must map parameter names to values")
        if not set(values) <= set(synth.space.names):
            _unknown(values, synth)
        known = {k: v for k, v in values.items() if k in synth.space.learned}
        presets.append(Preset(str(name), synth.space.from_units(known)))
    if not presets:
        raise ValueError(f"{path} holds no presets")
    return presets


def _unknown(values: dict, synth: Synth) -> None:
    unknown = sorted(set(values) - set(synth.space.names))
    raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for synth {synth.name!r}")


def preset_to_json(synth: Synth, vector: torch.Tensor, name: str = "") -> dict:
    """A JSON-ready preset: parameter values in units, and the normalized vector."""
    values = {k: v[0] for k, v in synth.space.to_units(vector.reshape(1, -1)).items()}
    return {"name": name, "synth": synth.name, "params": values, "normalized": vector.flatten().tolist()}
