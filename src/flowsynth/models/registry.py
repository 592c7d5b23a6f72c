"""The nine models, chosen by name: the paper's baselines, auto-encoders and flow models."""

from __future__ import annotations

from typing import Any

from flowsynth.models.autoencoders import AE, VAE, WAE, VAEFlow
from flowsynth.models.base import ParamModel
from flowsynth.models.flow_models import DisentanglingFlowModel, RegressionFlowModel
from flowsynth.models.regressors import CNNRegressor, MLPRegressor, ResNetRegressor

__all__ = ["MODELS", "available_models", "build_model"]

#: Model classes by registry name, in the order of the FlowSynth paper's table.
MODELS: dict[str, type[ParamModel]] = {
    cls.name: cls
    for cls in (
        MLPRegressor,
        CNNRegressor,
        ResNetRegressor,
        AE,
        VAE,
        WAE,
        VAEFlow,
        RegressionFlowModel,
        DisentanglingFlowModel,
    )
}


def available_models() -> list[str]:
    """Names :func:`build_model` accepts.

    Example:
        >>> available_models()
        ['mlp', 'cnn', 'resnet', 'ae', 'vae', 'wae', 'vae_flow', 'flow_reg', 'flow_dis']
    """
    return list(MODELS)


def build_model(name: str, num_params: int, **kwargs: Any) -> ParamModel:
    """A new (untrained) model by name.

    Arguments:
        name: One of :func:`available_models`.
        num_params: Number of learned synth parameters.
        **kwargs: Constructor arguments of that model (architecture sizes, loss weights).

    Example:
        >>> build_model("cnn", 16, channels=(4, 4, 4, 4), hidden=8).num_params
        16
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    try:
        return MODELS[name](num_params, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for model {name!r}: {error}") from None
