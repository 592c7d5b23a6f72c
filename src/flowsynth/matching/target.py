"""The target of a match: any sound file (or samples) made ready to compare with the synth's renders.

Preparation, in order: load (any format :func:`flowsynth.audio.load_audio` reads; mono mixdown;
resampled to the model's rate), refuse what cannot be matched (no sound, too short, too long, not
audio), trim the leading silence (the onset goes to time 0, as a synth note starts there), normalize
the peak level to :data:`TARGET_PEAK_DB`, crop or zero-pad to the model's render length, then analyse
pitch, vibrato and level envelope (:mod:`flowsynth.matching.analysis`) and choose the note and hold
time to render the synth at.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.audio import SILENCE_PEAK, SILENCE_PEAK_DB, AudioError, check_audio, load_audio, resample
from flowsynth.matching.analysis import (
    ONSET_DB,
    EnvelopeFit,
    Pitch,
    Vibrato,
    detect_onset,
    detect_pitch,
    detect_vibrato,
    fit_envelope,
)
from flowsynth.synth.base import RenderConfig

__all__ = [
    "MAX_SOURCE_S",
    "MIN_SOUND_S",
    "NOTE_RANGE",
    "TARGET_PEAK_DB",
    "Target",
    "choose_note",
    "prepare_target",
]

#: Peak level (dBFS) the target is normalized to: about the median peak of the built-in synth's sounds.
TARGET_PEAK_DB = -12.0
#: Longest sound file accepted, in seconds (the first render length after the onset is matched).
MAX_SOURCE_S = 60.0
#: Shortest sound accepted: time between the onset and the end of the sound, in seconds.
MIN_SOUND_S = 0.05
#: MIDI notes the synth is played at; a pitch outside is moved by octaves into this range.
NOTE_RANGE = (24, 96)


@dataclass(frozen=True)
class Target:
    """A sound prepared for matching.

    Arguments:
        audio: The sound as analysed ``[config.num_samples]``: trimmed, normalized, cropped or padded.
        config: How to render the synth for it (the detected note, the hold time, the model's length and rate).
        pitch: The detected pitch.
        vibrato: The detected vibrato, or None.
        envelope: The ADSR fit of its level envelope.
        onset_s: Where the sound starts in the source, in seconds.
        sound_s: Length of the sound from its onset to its end (before cropping), in seconds.
        gain_db: Gain applied to reach :data:`TARGET_PEAK_DB`.
        source: The file name, or ``"<samples>"``.
        remarks: What was done that a user would want to know (cropping, unpitched sound, octave moves).
    """

    audio: Tensor
    config: RenderConfig
    pitch: Pitch
    vibrato: Vibrato | None
    envelope: EnvelopeFit
    onset_s: float
    sound_s: float
    gain_db: float
    source: str = "<samples>"
    remarks: tuple[str, ...] = field(default=())

    @property
    def sample_rate(self) -> int:
        """Sample rate of :attr:`audio`, in Hz."""
        return self.config.sample_rate

    def describe(self) -> dict:
        """A JSON-ready description (no samples)."""
        pitch = self.pitch
        return {
            "source": self.source,
            "onset_s": self.onset_s,
            "sound_s": self.sound_s,
            "gain_db": self.gain_db,
            "pitched": pitch.pitched,
            "pitch_hz": pitch.frequency_hz,
            "pitch_midi": pitch.midi,
            "voiced_fraction": pitch.voiced_fraction,
            "note": self.config.note,
            "note_s": self.config.note_s,
            "vibrato": None if self.vibrato is None else vars(self.vibrato),
            "envelope": self.envelope.describe(),
            "remarks": list(self.remarks),
        }


def choose_note(
    pitch: Pitch, reference_note: float, note_range: tuple[int, int] = NOTE_RANGE, forced: float | None = None
) -> tuple[float, str | None]:
    """The MIDI note to render at and, when it is not simply the rounded pitch, why.

    >>> import numpy as np
    >>> choose_note(Pitch(True, 440.0, 1.0, np.array([])), 60.0)
    (69, None)
    >>> choose_note(Pitch(False, None, 0.1, np.array([])), 60.0)[0]
    60.0
    >>> choose_note(Pitch(True, 27.5, 1.0, np.array([])), 60.0)
    (33, 'pitch 27.5 Hz (MIDI 21.0) is below the synth range 24-96: played an octave higher, at 33')
    """
    low, high = note_range
    if forced is not None:
        return float(forced), f"note {forced:g} given by the user"
    if not pitch.pitched or pitch.midi is None:
        why = f"unpitched (voiced in {100 * pitch.voiced_fraction:.0f}% of the sound)"
        return reference_note, f"{why}: played at the model's reference note {reference_note:g}"
    note = round(pitch.midi)
    octaves = 0
    while note < low:
        note, octaves = note + 12, octaves + 1
    while note > high:
        note, octaves = note - 12, octaves - 1
    if octaves == 0:
        return note, None
    where = "below" if octaves > 0 else "above"
    shift = f"{abs(octaves)} octave{'s' if abs(octaves) > 1 else ''} {'higher' if octaves > 0 else 'lower'}"
    shift = shift.replace("1 octave ", "an octave ")
    return note, (
        f"pitch {pitch.frequency_hz:.1f} Hz (MIDI {pitch.midi:.1f}) is {where} the synth range {low}-{high}: "
        f"played {shift}, at {note}"
    )


def _load(source: str | os.PathLike[str] | Tensor, sample_rate: int, source_rate: int | None) -> tuple[Tensor, str]:
    """Mono samples at ``sample_rate`` and a name for messages; refuses files longer than :data:`MAX_SOURCE_S`."""
    if isinstance(source, Tensor):
        if source_rate is None:
            raise ValueError("give source_rate (Hz) with samples")
        audio = check_audio(source.detach().float().cpu(), allow_silent=True, name="target")
        audio = audio if audio.dim() == 1 else audio.mean(dim=0)
        _check_not_silent(audio, "target")
        _check_length(len(audio) / source_rate, "target")
        return torch.from_numpy(resample(audio.numpy(), source_rate, sample_rate).copy()), "<samples>"
    path = Path(source)
    _check_length(_file_duration(path), str(path))
    audio = load_audio(path, sample_rate, allow_silent=True)
    _check_not_silent(audio, str(path))
    return audio, str(path)


def _check_not_silent(audio: Tensor, name: str) -> None:
    peak = float(audio.abs().max())
    if peak < SILENCE_PEAK:
        level = f"{20 * math.log10(peak):.0f} dBFS" if peak > 0 else "digital silence"
        raise AudioError(f"{name} has no sound (peak {level}, under {SILENCE_PEAK_DB:g} dBFS): nothing to match")


def _file_duration(path: Path) -> float:
    import soundfile

    try:
        return float(soundfile.info(str(path)).duration)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError):
        return 0.0  # load_audio says what is wrong with the file


def _check_length(duration_s: float, name: str) -> None:
    if duration_s > MAX_SOURCE_S:
        raise AudioError(
            f"{name} is too long ({duration_s:.1f} s): matching takes one sound of at most {MAX_SOURCE_S:g} s; "
            "cut out the sound you want matched"
        )


def _trim(audio: Tensor, sample_rate: int, name: str) -> tuple[Tensor, float, float]:
    """The sound from its onset, its onset and its length (seconds); refuses sounds under :data:`MIN_SOUND_S`."""
    start_s, end_s = detect_onset(audio, sample_rate)
    sound_s = end_s - start_s
    if sound_s < MIN_SOUND_S:
        raise AudioError(
            f"{name} is too short: {1000 * sound_s:.0f} ms of sound within {-ONSET_DB:g} dB of its peak; "
            f"matching needs at least {1000 * MIN_SOUND_S:.0f} ms"
        )
    return audio[round(start_s * sample_rate) :], start_s, sound_s


def prepare_target(
    source: str | os.PathLike[str] | Tensor,
    config: RenderConfig,
    *,
    source_rate: int | None = None,
    note: float | None = None,
    hold: str | float = "auto",
    note_range: tuple[int, int] = NOTE_RANGE,
    peak_db: float = TARGET_PEAK_DB,
) -> Target:
    """Loads, checks, trims, normalizes, crops and analyses a target sound (see the module docstring).

    Arguments:
        source: A sound file, or mono samples ``[N]`` (or ``[channels, N]``) at ``source_rate``.
        config: The model's render conditions: sample rate, render length, reference note and hold time.
        source_rate: Sample rate of ``source`` when it is samples.
        note: Play the synth at this MIDI note instead of the detected pitch.
        hold: How long the synth note is held: ``"auto"`` (the note-off time of the target's envelope
            fit), ``"model"`` (the model's ``note_s``) or a number of seconds.
        note_range: Lowest and highest MIDI note to play at.
        peak_db: Peak level the target is normalized to, in dBFS.

    Raises:
        AudioError: The file is missing, not audio, silent, has NaN samples, is too short or too long.
    """
    raw, name = _load(source, config.sample_rate, source_rate)
    trimmed, onset_s, sound_s = _trim(raw, config.sample_rate, name)
    gain = 10.0 ** (peak_db / 20.0) / float(trimmed.abs().max())
    audio = _fit_length(trimmed * gain, config.num_samples)
    remarks = []
    if sound_s > config.render_s:
        remarks.append(f"the sound lasts {sound_s:.2f} s: its first {config.render_s:g} s are matched")
    pitch = detect_pitch(audio[: round(min(sound_s, config.render_s) * config.sample_rate)], config.sample_rate)
    chosen, why = choose_note(pitch, config.note, note_range, note)
    if why:
        remarks.append(why)
    fit = fit_envelope(audio, config.sample_rate)
    render = replace(config, note=float(chosen), note_s=_hold_s(hold, config, fit))
    return Target(
        audio=audio,
        config=render,
        pitch=pitch,
        vibrato=detect_vibrato(pitch, config.sample_rate) if pitch.pitched else None,
        envelope=fit,
        onset_s=onset_s,
        sound_s=sound_s,
        gain_db=20.0 * math.log10(gain),
        source=name,
        remarks=tuple(remarks),
    )


def _fit_length(audio: Tensor, num_samples: int) -> Tensor:
    missing = num_samples - len(audio)
    return torch.nn.functional.pad(audio, (0, missing)) if missing > 0 else audio[:num_samples].clone()


def _hold_s(hold: str | float, config: RenderConfig, fit: EnvelopeFit) -> float:
    if hold == "model":
        return config.note_s
    if hold == "auto":
        return min(config.render_s, max(0.02, fit.note_s))
    if isinstance(hold, str):
        raise ValueError(f"hold must be 'model', 'auto' or a number of seconds, got {hold!r}")
    if not 0 < float(hold) <= config.render_s:
        raise ValueError(f"hold must be in (0, {config.render_s:g}] seconds (the render length), got {hold}")
    return float(hold)
