"""FlowSynth models: log-mel features -> distributions over synth parameters, and back.

Nine models behind one interface (:class:`ParamModel`), chosen by name with :func:`build_model`:
the baselines ``mlp``, ``cnn``, ``resnet``; the auto-encoders ``ae``, ``vae``, ``wae`` and ``vae_flow``;
the flow models ``flow_reg`` (regression flow) and ``flow_dis`` (plus a disentangling flow).
Checkpoints load with :func:`load_model` alone.
"""

from flowsynth.models.autoencoders import AE, VAE, WAE, VAEFlow
from flowsynth.models.base import LatentModel, LossWeights, ParamModel
from flowsynth.models.checkpoint import load_checkpoint, load_model, load_shipped_model, save_model, shipped_models
from flowsynth.models.flow_models import DisentanglingFlowModel, RegressionFlowModel
from flowsynth.models.registry import MODELS, available_models, build_model
from flowsynth.models.regressors import CNNRegressor, MLPRegressor, ResNetRegressor

__all__ = [
    "AE",
    "MODELS",
    "VAE",
    "WAE",
    "CNNRegressor",
    "DisentanglingFlowModel",
    "LatentModel",
    "LossWeights",
    "MLPRegressor",
    "ParamModel",
    "RegressionFlowModel",
    "ResNetRegressor",
    "VAEFlow",
    "available_models",
    "build_model",
    "load_checkpoint",
    "load_model",
    "load_shipped_model",
    "save_model",
    "shipped_models",
]
