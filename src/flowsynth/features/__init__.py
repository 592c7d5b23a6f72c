"""Features: the log-mel model input and its normalization, evaluation metrics, and sound descriptors."""

from flowsynth.features.descriptors import DESCRIPTORS, describe
from flowsynth.features.logmel import LogMel, log_mel, mel_spectrogram
from flowsynth.features.metrics import AUDIO_METRICS, audio_metrics, mean_ci
from flowsynth.features.norm import FeatureNorm

__all__ = [
    "AUDIO_METRICS",
    "DESCRIPTORS",
    "FeatureNorm",
    "LogMel",
    "audio_metrics",
    "describe",
    "log_mel",
    "mean_ci",
    "mel_spectrogram",
]
