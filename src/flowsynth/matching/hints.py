"""Parameter values read off the target itself: its level envelope and its vibrato.

For synths that name their parameters as the built-in synth does, the target's ADSR fit sets the
amplitude envelope (``amp_attack``, ``amp_decay``, ``amp_sustain``, ``amp_release``) and a detected
vibrato sets the LFO (``lfo_target`` to pitch, ``lfo_rate``, ``lfo_depth``: a depth of 1 is
2 semitones). Only learned parameters are set; others are left alone, so a synth without these
names gets no hint.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowsynth.matching.target import Target
from flowsynth.synth.base import Synth

__all__ = ["LFO_FULL_DEPTH_SEMITONES", "apply_hints", "hint_values", "hinted_names"]

#: Vibrato depth (semitones) of the built-in synth's ``lfo_depth = 1`` with the LFO on pitch.
LFO_FULL_DEPTH_SEMITONES = 2.0


def hint_values(target: Target) -> dict[str, float]:
    """Parameter values in units suggested by the target's envelope fit and vibrato."""
    fit = target.envelope
    values = {
        "amp_attack": fit.attack_s,
        "amp_decay": fit.decay_s,
        "amp_sustain": fit.sustain,
        "amp_release": fit.release_s,
    }
    if target.vibrato is not None:
        depth = min(1.0, target.vibrato.depth_semitones / LFO_FULL_DEPTH_SEMITONES)
        values |= {"lfo_target": 0.0, "lfo_rate": target.vibrato.rate_hz, "lfo_depth": depth}
    return values


def apply_hints(synth: Synth, params: Tensor, values: dict[str, float]) -> Tensor:
    """Copies of ``params [B, d]`` with the learned parameters named in ``values`` set to them (units).

    >>> from flowsynth.synth import get_synth
    >>> synth = get_synth("builtin-16")
    >>> out = apply_hints(synth, torch.zeros(1, 16), {"amp_sustain": 0.5, "not_a_param": 1.0})
    >>> float(out[0, synth.space.learned.index("amp_sustain")])
    0.5
    """
    out = params.detach().clone()
    for i, p in enumerate(synth.space.learned_params):
        if p.name in values:
            value = torch.tensor(float(values[p.name]), dtype=torch.float64).clamp(min(p.min, p.max), max(p.min, p.max))
            out[:, i] = float(p.from_units(value))
    return out


def hinted_names(synth: Synth, values: dict[str, float]) -> list[str]:
    """The learned parameters of ``synth`` that ``values`` would set."""
    return [n for n in synth.space.learned if n in values]
