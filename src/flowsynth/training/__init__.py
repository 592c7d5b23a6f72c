"""Training and evaluation of the models: ``flowsynth train`` and ``flowsynth evaluate`` in library form."""

from flowsynth.training.config import TrainConfig
from flowsynth.training.evaluate import METRICS, evaluate_model, per_param_errors
from flowsynth.training.trainer import train

__all__ = ["METRICS", "TrainConfig", "evaluate_model", "per_param_errors", "train"]
