"""Audio I/O: load any common sound file as a mono tensor, save atomically, check in-memory audio."""

from flowsynth.audio.checks import SILENCE_PEAK, SILENCE_PEAK_DB, check_audio, check_sample_rate
from flowsynth.audio.io import load_audio, resample, save_audio
from flowsynth.errors import AudioError

__all__ = [
    "SILENCE_PEAK",
    "SILENCE_PEAK_DB",
    "AudioError",
    "check_audio",
    "check_sample_rate",
    "load_audio",
    "resample",
    "save_audio",
]
