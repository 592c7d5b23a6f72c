"""The render conditions a target is matched under: which note the synth plays and how long it holds it.

A pitched target can be played at its own note (the model's input is then moved to the model's
reference note, :func:`shifted_log_mel`) or at the reference note (the model's input as it is, the
synth's tuning parameters carrying the pitch); the note can be held as long as the target's envelope
says or as long as the model's training sounds were. Which is best depends on the sound and the
synth (a synth's own sounds were all played at the reference note and held for the same time), so
:func:`choose_condition` renders the model's estimate under each and keeps the closest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from flowsynth.features.logmel import LogMel, log_mel
from flowsynth.features.spectral import stft_power
from flowsynth.matching.distance import TargetDistance
from flowsynth.matching.search import score_candidates
from flowsynth.matching.target import Target
from flowsynth.synth.base import RenderConfig, Synth

__all__ = ["HOLDS", "Condition", "choose_condition", "conditions", "shifted_log_mel", "target_features"]

#: Hold settings: ``"both"`` tries the target's and the model's, ``"auto"`` the target's, ``"model"`` the model's.
HOLDS = ("both", "auto", "model")


@dataclass(frozen=True)
class Condition:
    """One way to play the synth for a target.

    Arguments:
        config: The render conditions (note, hold time; the rest is the model's).
        shift: Semitones the model's input is moved by (reference note minus played note).
        label: Words for the report.
    """

    config: RenderConfig
    shift: float
    label: str


def target_features(target: Target, reference_note: float, shift: bool = True) -> Tensor:
    """The model's raw log-mel input ``[64, 80]`` of a target, moved to ``reference_note`` when it is pitched."""
    steps = reference_note - target.config.note if shift and target.pitch.pitched else 0.0
    return shifted_log_mel(target.audio, target.sample_rate, steps)


def shifted_log_mel(audio: Tensor, sample_rate: int, semitones: float = 0.0) -> Tensor:
    """:func:`~flowsynth.features.log_mel` of ``audio [N]`` as if it were transposed by ``semitones``.

    The power spectrum of each frame is resampled along frequency (bin ``k`` takes the power at
    ``k / ratio``, divided by ``ratio`` so that each partial keeps its power), which moves every
    partial and the spectral envelope by ``ratio = 2 ** (semitones / 12)`` and keeps the timing.
    With 0 semitones it is exactly the log-mel.

    >>> audio = torch.randn(22050)
    >>> torch.allclose(shifted_log_mel(audio, 22050), log_mel(audio))
    True
    """
    if semitones == 0:
        return log_mel(audio, sample_rate)
    module = LogMel(sample_rate)
    power = stft_power(module.fit_length(audio.reshape(1, -1)), module.n_fft, module.hop_length)[0]
    power = power[:, : module.n_frames]
    ratio = 2.0 ** (semitones / 12.0)
    source = torch.arange(power.shape[0], dtype=power.dtype) / ratio
    low = source.floor().long().clamp_max(power.shape[0] - 1)
    high = (low + 1).clamp_max(power.shape[0] - 1)
    weight = (source - low)[:, None]
    moved = ((1.0 - weight) * power[low] + weight * power[high]) / ratio
    moved = torch.where((source <= power.shape[0] - 1)[:, None], moved, 0.0)
    return torch.log(module.mel_basis.to(moved) @ moved + module.eps)


def conditions(
    target: Target, reference: RenderConfig, hold: str | float = "both", reference_note: bool = True, shift: bool = True
) -> list[Condition]:
    """The conditions to try for a prepared target (its own config first).

    Arguments:
        target: The prepared target; ``target.config`` holds its note and its envelope's hold time.
        reference: The model's render conditions (reference note and hold time).
        hold: One of :data:`HOLDS`, or seconds (then only ``target.config``'s hold).
        reference_note: Also try the reference note for a pitched target played elsewhere.
        shift: Move the model's input to the reference note when the synth plays another note.
    """
    notes = [target.config.note]
    if reference_note and target.pitch.pitched and target.config.note != reference.note:
        notes.append(reference.note)
    holds = [target.config.note_s]
    if hold == "both" and abs(reference.note_s - target.config.note_s) > 1e-6:
        holds.append(reference.note_s)
    out = []
    for note in notes:
        steps = reference.note - note if shift and target.pitch.pitched else 0.0
        for note_s in holds:
            label = f"note {note:g}, held {note_s:.2f} s"
            out.append(Condition(replace(target.config, note=note, note_s=note_s), steps, label))
    return out


def choose_condition(
    synth: Synth,
    distance: TargetDistance,
    options: list[Condition],
    estimate: Callable[[Condition], Tensor],
    seed: int = 0,
) -> tuple[Condition, list[dict]]:
    """The condition under which ``estimate(condition)`` (parameters ``[1, d]``) renders closest to the target.

    Returns the condition and, for the report, each one's label and score. One option: no render.
    """
    if len(options) == 1:
        return options[0], [{"condition": options[0].label, "score": None}]
    scores = [score_candidates(synth, estimate(c), c.config, distance, seed).score for c in options]
    best = min(range(len(options)), key=lambda i: scores[i])
    return options[best], [{"condition": c.label, "score": s} for c, s in zip(options, scores, strict=True)]
