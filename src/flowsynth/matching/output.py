"""A finished match on disk: the preset, both sounds, their spectrograms and the report.

Files written to the output folder (each atomically):

* ``preset.json``: the learned parameters' names and values in the synth's units, the normalized
  vector (in the order of ``learned``), every parameter of the synth in units (``all_params``, the
  fixed ones included), the note, velocity and hold time it was matched at, and the gain from the
  synth's output to ``match.wav`` (:func:`flowsynth.synth.presets.read_preset_file` reads it back);
* ``plugin_state.json`` (plugin synths only): the raw value of every plugin parameter;
* ``match.wav``: the matched preset rendered at the target's note, at the target's level;
* ``target.wav``: the target as analysed (trimmed, normalized, cropped or padded);
* ``spectrograms.png``: both spectrograms side by side;
* ``report.json``: the analysis, the time and score of each stage, and every protocol metric.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from flowsynth.audio import save_audio
from flowsynth.matching.match import MatchResult
from flowsynth.plots import save_spectrograms
from flowsynth.synth.presets import preset_to_json

__all__ = ["FILES", "preset_of", "write_json", "write_match"]

#: Names of the files :func:`write_match` writes (``plugin_state`` for plugin synths only).
FILES = {
    "preset": "preset.json",
    "plugin_state": "plugin_state.json",
    "match": "match.wav",
    "target": "target.wav",
    "spectrograms": "spectrograms.png",
    "report": "report.json",
}


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (not JSON) replaced by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, data: Any, indent: int | None = 2) -> Path:
    """Writes ``data`` as JSON (NaN as null; ``indent`` None for one compact line) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(_finite(data), file, indent=indent)
            file.write("\n")
        os.chmod(tmp, 0o644)  # a temporary file is private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def preset_of(result: MatchResult, name: str = "") -> dict[str, Any]:
    """The preset of a match as a JSON-ready dict."""
    synth = result.synth
    preset = preset_to_json(synth, result.params, name=name or f"match of {Path(result.target.source).stem}")
    preset["learned"] = list(synth.space.learned)
    full = synth.space.expand(result.params.reshape(1, -1))[0]
    preset["all_params"] = {p.name: float(p.to_units(full[i])) for i, p in enumerate(synth.space.params)}
    config = result.target.config
    preset["played"] = {"note": config.note, "velocity": config.velocity, "note_s": config.note_s}
    preset["gain_db"] = result.gain_db
    return preset


def write_match(result: MatchResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Writes every file of a match into the folder ``out`` (created if needed); returns their paths."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; give a folder for the match's files")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in FILES.items()}
    write_json(paths["preset"], preset_of(result))
    save_state = getattr(result.synth, "save_state", None)
    if callable(save_state):
        save_state(paths["plugin_state"], result.params)
    else:
        del paths["plugin_state"]
    rate = result.target.sample_rate
    save_audio(paths["match"], result.audio, rate)
    save_audio(paths["target"], result.target.audio, rate)
    title = f"{Path(result.target.source).name} -> {result.synth.name} (MIDI {result.target.config.note:g})"
    save_spectrograms(paths["spectrograms"], {"target": result.target.audio, "match": result.audio}, rate, title)
    result.report["files"] = {key: str(path) for key, path in paths.items()}
    write_json(paths["report"], result.report)
    return paths
