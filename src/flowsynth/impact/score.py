"""Offline performances: a score of gates and CV curves over time, rendered by the engine deterministically.

A score is JSON::

    {"impact": "kick", "second": "crash", "duration_s": 4.0,
     "gates": [{"time_s": 0.0, "gate": 1}, {"time_s": 1.0, "gate": 2}],
     "cv": {"richness": [[0.0, 0.5], [2.0, 1.0]], "degree": [[0.0, 0.0], [4.0, 1.0]]},
     "seed": 0, "block_size": 256}

``control_interval_s`` (default 0.05) is how often CVs are read while impacts sound.
``impact`` and ``second`` name shipped references or audio files (relative paths are taken from the score's
folder). A CV curve is a list of ``[time_s, value]`` breakpoints joined linearly (held before the first and
after the last); a CV without a curve stays at 0.5 (richness, noisiness) or 0 (degree).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flowsynth.impact.engine import CV_NAMES, EngineConfig, ImpactEngine, RenderFunction

__all__ = ["Score", "load_score", "parse_score", "render_score"]

_CV_DEFAULTS = {"richness": 0.5, "noisiness": 0.5, "degree": 0.0}


@dataclass(frozen=True)
class Score:
    """A parsed score (see the module docstring)."""

    impact: str
    second: str
    duration_s: float
    gates: tuple[tuple[float, int], ...]
    cv: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    seed: int = 0
    block_size: int = 256
    control_interval_s: float = 0.05

    def cv_value(self, name: str, time_s: float) -> float:
        """Value of a CV at a time (breakpoints joined linearly)."""
        points = self.cv.get(name)
        if not points:
            return _CV_DEFAULTS[name]
        times, values = zip(*points, strict=True)
        return float(np.interp(time_s, times, values))


def _field(data: dict, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``data[key]`` checked to be of ``kind`` (booleans are not numbers)."""
    value = data.get(key)
    if value is None:
        raise ValueError(f"the score needs a {key!r} entry ({what})")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"the score's {key!r} must be {what}, got {value!r}")
    return value


def _gate(event: Any) -> tuple[float, int]:
    time_s = event.get("time_s") if isinstance(event, dict) else None
    if not isinstance(time_s, int | float) or event.get("gate") not in (1, 2) or time_s < 0:
        raise ValueError(f"each gate is {{'time_s': seconds >= 0, 'gate': 1 or 2}}, got {event!r}")
    return float(time_s), int(event["gate"])


def parse_score(data: Any, folder: Path | None = None) -> Score:
    """Checks and parses a score dict; relative audio paths are resolved against ``folder``."""
    if not isinstance(data, dict):
        raise ValueError("a score is a JSON object with 'impact', 'duration_s' and 'gates'")
    duration_s = float(_field(data, "duration_s", (int, float), "a number of seconds"))
    if not 0 < duration_s <= 3600:
        raise ValueError(f"duration_s must be in (0, 3600] seconds, got {duration_s}")
    gates = tuple(sorted(_gate(event) for event in _field(data, "gates", list, "a list of gates")))
    curves = data.get("cv", {})
    if not isinstance(curves, dict):
        raise ValueError("the score's 'cv' must map CV names to lists of [time_s, value] pairs")
    unknown = set(curves) - set(CV_NAMES)
    if unknown:
        raise ValueError(f"unknown CV {sorted(unknown)[0]!r} in the score; the CVs are {', '.join(CV_NAMES)}")
    impact = _field(data, "impact", str, "a reference name or an audio file")
    second = data.get("second", impact)
    return Score(
        _resolve(impact, folder),
        _resolve(str(second), folder),
        duration_s,
        gates,
        {name: _breakpoints(name, points) for name, points in curves.items()},
        int(data.get("seed", 0)),
        int(data.get("block_size", 256)),
        float(data.get("control_interval_s", 0.05)),
    )


def _breakpoints(name: str, points: Any) -> tuple[tuple[float, float], ...]:
    try:
        pairs = tuple(sorted((float(t), float(v)) for t, v in points))
    except (TypeError, ValueError) as error:
        raise ValueError(f"CV {name!r} must be a list of [time_s, value] pairs, got {points!r}") from error
    if any(not 0.0 <= v <= 1.0 for _, v in pairs):
        raise ValueError(f"CV {name!r} values must be in [0, 1]")
    return pairs


def _resolve(reference: str, folder: Path | None) -> str:
    path = Path(reference)
    if folder is not None and path.suffix and not path.is_absolute():
        return str(folder / path)
    return reference


def load_score(path: str | Path) -> Score:
    """Reads and checks a score JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no score at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error
    return parse_score(data, path.parent)


def render_score(
    score: Score,
    render: RenderFunction,
    sample_rate: int,
    impact_samples: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, ImpactEngine]:
    """Plays a score through the engine block by block, as the real-time engine would, but deterministically.

    CVs are read every ``control_interval_s`` (at the start of a block) and at every gate; renders happen
    synchronously between blocks and only when a voice sounds or a gate starts, so the output depends only
    on the score and the seed.

    Returns:
        ``(audio [N] float32, the engine)`` (the engine holds counters: triggers, renders).
    """
    config = EngineConfig(sample_rate=sample_rate, block_size=score.block_size, impact_samples=impact_samples)
    engine = ImpactEngine(render, config)
    block = config.block_size
    num_blocks = -(-round(score.duration_s * sample_rate) // block)
    out = np.zeros((num_blocks * block, 1), np.float32)
    starts = [(round(t * sample_rate), gate) for t, gate in score.gates]
    next_gate = 0
    control_blocks = max(1, round(score.control_interval_s * sample_rate / block))
    for b in range(num_blocks):
        t0 = b * block
        gate_now = next_gate < len(starts) and starts[next_gate][0] < t0 + block
        if gate_now or (b % control_blocks == 0 and engine.active_voices > 0):
            for name in CV_NAMES:
                engine.set_cv(name, score.cv_value(name, t0 / sample_rate))
            engine.render_pending()
        while next_gate < len(starts) and starts[next_gate][0] < t0 + block:
            engine.trigger(starts[next_gate][1], max(0, starts[next_gate][0] - t0))
            next_gate += 1
        engine.process(out[t0 : t0 + block])
        if progress:
            progress(b, num_blocks)
    return out[: round(score.duration_s * sample_rate), 0].copy(), engine
