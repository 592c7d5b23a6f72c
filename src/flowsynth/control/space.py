"""A trained latent model with its synth: latent <-> parameters <-> audio <-> descriptors.

Every control (macros, semantic knobs, interpolation, map) moves through this one object, so they
all render under the model's own conditions (the checkpoint's render config) and with one seed.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from flowsynth.features import describe, log_mel
from flowsynth.models import LatentModel, ParamModel, load_model
from flowsynth.synth import RenderConfig, Synth, from_description

__all__ = ["SoundSpace", "require_latent"]

#: Parameters are kept this far inside [0, 1] before the exact inverse of a regression flow.
PARAM_MARGIN = 1e-4
#: Largest decoded-parameter error of an exact inverse before the row is searched instead.
ROUND_TRIP_TOLERANCE = 1e-3
#: Latents beyond this (a prior of N(0, I)) count as an overflowed inverse.
LATENT_LIMIT = 50.0
_RENDER_CHUNK = 32


@contextlib.contextmanager
def _quiet_overflow() -> Iterator[None]:
    """No warnings from an inverse that overflows (such rows are detected and searched instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def require_latent(model: ParamModel) -> LatentModel:
    """Returns ``model`` if it has a latent space; otherwise raises a ``ValueError`` saying which do."""
    if not isinstance(model, LatentModel):
        raise ValueError(
            f"controls need a model with a latent space (flow_reg, flow_dis, ae, vae, wae, vae_flow); "
            f"{model.name!r} maps sounds straight to parameters"
        )
    return model


@dataclass
class SoundSpace:
    """A latent model, its synth and its render conditions.

    Arguments:
        model: A latent model (``flow_reg`` or ``flow_dis`` give the exact parameters -> latent map).
        synth: The synth the model was trained on (its learned parameters in the model's order).
        config: Render conditions (the checkpoint's, the protocol's by default).
        seed: Seed of the synth's noise sources for every render.
    """

    model: LatentModel
    synth: Synth
    config: RenderConfig
    seed: int = 0

    def __post_init__(self) -> None:
        self.model = require_latent(self.model)
        if self.synth.num_learned != self.model.num_params:
            raise ValueError(
                f"the synth learns {self.synth.num_learned} parameters but the model predicts {self.model.num_params}"
            )
        self.model.eval()
        #: Rows :meth:`to_latent` had to search because the exact inverse failed.
        self.projected = 0

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], seed: int = 0) -> SoundSpace:
        """Loads a model checkpoint and rebuilds its synth and render conditions from the metadata."""
        model = load_model(Path(path))
        meta = model.meta
        config = RenderConfig(**{k: v for k, v in meta["render"].items() if k in RenderConfig.__dataclass_fields__})
        return cls(require_latent(model), from_description(meta["synth"]), config, seed)

    @property
    def latent_size(self) -> int:
        """Size of the latent space."""
        return int(self.model.latent_size)

    @property
    def num_params(self) -> int:
        """Number of learned synth parameters."""
        return int(self.model.num_params)

    @property
    def sample_rate(self) -> int:
        """Sample rate of every render, in Hz."""
        return int(self.config.sample_rate)

    @property
    def exact_inverse(self) -> bool:
        """Whether parameters map back to the latent exactly (the regression flow models)."""
        return self.model.name in ("flow_reg", "flow_dis")

    def to_params(self, z: Tensor) -> Tensor:
        """Parameters ``[B, num_params]`` in [0, 1] of latents ``[B, latent_size]``."""
        z = self.check_latent(z)
        with torch.no_grad():
            return self.model.latent_to_params(z).clamp(0.0, 1.0)

    def to_latent(self, params: Tensor) -> Tensor:
        """Latents ``[B, latent_size]`` of parameters ``[B, num_params]``.

        The flow models invert their regression flow exactly; a row whose inverse is not finite or does
        not decode back to its parameters (within 1e-3: a point the flow's image does not reach, where
        the inverse of its autoregressive layers overflows) takes instead the latent whose parameters are
        nearest (a gradient search from the origin, :meth:`LatentModel.params_to_latent` of the base
        class). :attr:`projected` counts those rows.
        """
        params = torch.as_tensor(params, dtype=torch.float32)
        if params.dim() != 2 or params.shape[1] != self.num_params:
            raise ValueError(f"params must be [batch, {self.num_params}] in [0, 1], got {list(params.shape)}")
        if not torch.isfinite(params).all():
            raise ValueError("params contain NaN or infinity")
        params = params.clamp(PARAM_MARGIN, 1.0 - PARAM_MARGIN)
        with torch.no_grad(), _quiet_overflow():
            z = self.model.params_to_latent(params).detach()
            bad = ~torch.isfinite(z).all(-1) | (z.abs() > LATENT_LIMIT).any(-1)
            decoded = self.model.latent_to_params(torch.where(bad[:, None], torch.zeros_like(z), z))
            bad |= (decoded - params).abs().amax(-1) > ROUND_TRIP_TOLERANCE
        if bad.any():
            z[bad] = LatentModel.params_to_latent(self.model, params[bad]).detach()
            self.projected += int(bad.sum())
        return z

    def render(self, params: Tensor, note: float | None = None, config: RenderConfig | None = None) -> Tensor:
        """Audio ``[B, samples]`` of parameters ``[B, num_params]`` (a failed sound is a row of NaN)."""
        config = config or self.config
        if note is not None:
            config = replace(config, note=float(note))
        params = torch.as_tensor(params, dtype=torch.float32)
        chunks = [
            self.synth.render_with(params[i : i + _RENDER_CHUNK], config, seed=self.seed, on_error="nan")
            for i in range(0, len(params), _RENDER_CHUNK)
        ]
        return torch.cat(chunks) if chunks else torch.zeros(0, config.num_samples)

    def describe(self, params: Tensor, config: RenderConfig | None = None) -> dict[str, Tensor]:
        """Descriptors (``flowsynth.features.describe``) of the sounds of parameters ``[B, num_params]``."""
        return self.describe_audio(self.render(params, config=config), config)

    def describe_audio(self, audio: Tensor, config: RenderConfig | None = None) -> dict[str, Tensor]:
        """Descriptors of rendered sounds ``[B, samples]`` (NaN for a row of NaN: a failed render)."""
        values = describe(torch.nan_to_num(audio), (config or self.config).sample_rate)
        broken = ~torch.isfinite(audio).all(-1)
        return {name: torch.where(broken, torch.nan, value.double()) for name, value in values.items()}

    def encode_audio(self, audio: Tensor, sample_rate: int) -> Tensor:
        """The latent ``[1, latent_size]`` of a sound ``[N]`` at ``sample_rate`` (the posterior mean).

        The sound is resampled to the model's rate if needed; its log-mel is taken as the model's input.
        """
        audio = torch.as_tensor(audio, dtype=torch.float32).reshape(-1)
        if sample_rate != self.sample_rate:
            from flowsynth.audio.io import resample

            audio = torch.from_numpy(resample(audio.numpy()[None], int(sample_rate), self.sample_rate)[0].copy())
        return self.model.latent_mean(log_mel(audio, self.sample_rate)[None])

    def check_latent(self, z: Tensor) -> Tensor:
        """``z`` as float latents ``[B, latent_size]``; a clear error for another shape, NaN or infinity."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"latents must be [batch, {self.latent_size}], got {list(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("latents contain NaN or infinity")
        return z
