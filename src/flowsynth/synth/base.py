"""The one interface every synthesizer stands behind."""

from __future__ import annotations

import abc
import copy
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import Tensor

from flowsynth.errors import RenderError
from flowsynth.synth.params import Param, ParamSpace

__all__ = ["RenderConfig", "Synth", "OnError"]

OnError = Literal["raise", "nan"]


@dataclass(frozen=True)
class RenderConfig:
    """How a note is played and recorded (defaults from the evaluation protocol).

    Arguments:
        note: MIDI note number.
        velocity: MIDI velocity, 1 to 127.
        note_s: How long the note is held, in seconds.
        render_s: How long the recording is, in seconds.
        sample_rate: Output sample rate in Hz.
    """

    note: float = 60.0
    velocity: int = 100
    note_s: float = 3.0
    render_s: float = 4.0
    sample_rate: int = 22050

    def __post_init__(self) -> None:
        if not 0 <= self.note <= 127:
            raise ValueError(f"note must be a MIDI note number in [0, 127], got {self.note}")
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"velocity must be in [1, 127], got {self.velocity}")
        if not 0 < self.note_s <= self.render_s:
            raise ValueError(f"need 0 < note_s <= render_s, got note_s={self.note_s}, render_s={self.render_s}")
        if self.render_s > 60:
            raise ValueError(f"render_s is at most 60 seconds, got {self.render_s}")
        if not 8000 <= self.sample_rate <= 192000:
            raise ValueError(f"sample_rate must be in [8000, 192000] Hz, got {self.sample_rate}")

    @property
    def num_samples(self) -> int:
        """Number of output samples."""
        return round(self.render_s * self.sample_rate)

    @property
    def frequency_hz(self) -> float:
        """Frequency of the note in Hz (A4 = 440 Hz)."""
        return 440.0 * 2.0 ** ((self.note - 69.0) / 12.0)

    def describe(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)


class Synth(abc.ABC):
    """A synthesizer that renders batches of normalized parameter vectors to mono audio.

    Subclasses declare :attr:`params` (every parameter, in order) and implement
    :meth:`render_full`. Models only ever see the learned subset, chosen with
    :meth:`select`; the others stay at fixed values.
    """

    #: Identifier of the synth (``"builtin"``, ``"faust:organ"``, ...).
    name: str = "synth"
    #: Whether gradients flow from the audio to the parameters.
    differentiable: bool = False

    def __init__(self) -> None:
        self.space = ParamSpace(self.params, tuple(p.name for p in self.params))

    @property
    @abc.abstractmethod
    def params(self) -> tuple[Param, ...]:
        """Every parameter of the synth, in render order."""

    @abc.abstractmethod
    def render_full(self, params: Tensor, config: RenderConfig, seed: int, on_error: OnError) -> Tensor:
        """Renders full normalized parameter vectors ``[batch >= 1, len(params)]`` to ``[batch, samples]``."""

    @property
    def learned_params(self) -> tuple[Param, ...]:
        """The parameters a model sees, in vector order."""
        return self.space.learned_params

    @property
    def num_learned(self) -> int:
        """Length of the parameter vectors :meth:`render` takes."""
        return len(self.space.learned)

    def select(self, learned: tuple[str, ...] | list[str], fixed: dict[str, float] | None = None) -> Synth:
        """Returns a copy of this synth that learns only ``learned``.

        Arguments:
            learned: Names of the learned parameters, in vector order.
            fixed: Normalized values of other parameters (default: their defaults).
        """
        out = copy.copy(self)
        out.space = ParamSpace(self.params, tuple(learned), dict(fixed or {}))
        return out

    def render(
        self,
        params: Tensor,
        note: float = 60.0,
        velocity: int = 100,
        note_s: float = 3.0,
        render_s: float = 4.0,
        sample_rate: int = 22050,
        seed: int = 0,
        on_error: OnError = "raise",
    ) -> Tensor:
        """Renders normalized parameter vectors ``[batch, num_learned]`` to float32 mono audio.

        Arguments:
            params: Learned parameters in [0, 1], shape ``[batch, num_learned]``.
            note: MIDI note number.
            velocity: MIDI velocity.
            note_s: Time the note is held, in seconds.
            render_s: Length of the output, in seconds.
            sample_rate: Output sample rate, in Hz.
            seed: Seed of every random source of the synth (noise).
            on_error: ``"raise"`` a :class:`RenderError` when a sound fails, or
                return it as a row of NaN and go on.

        Returns:
            Audio of shape ``[batch, round(render_s * sample_rate)]``.
        """
        config = RenderConfig(note, velocity, note_s, render_s, sample_rate)
        return self.render_with(params, config, seed=seed, on_error=on_error)

    def render_with(self, params: Tensor, config: RenderConfig, seed: int = 0, on_error: OnError = "raise") -> Tensor:
        """Same as :meth:`render`, with a :class:`RenderConfig`."""
        params = torch.as_tensor(params, dtype=torch.float32)
        if params.dim() == 1:
            raise ValueError(f"expected a batch of parameter vectors [batch, {self.num_learned}], got one vector")
        if not torch.isfinite(params).all():
            raise ValueError("parameters contain NaN or infinity")
        if params.numel() and (params.min() < 0 or params.max() > 1):
            raise ValueError("parameters must be normalized to [0, 1]")
        full = self.space.expand(params)
        if not len(full):
            return torch.zeros(0, config.num_samples)
        audio = self.render_full(full, config, seed, on_error)
        broken = ~finite_rows(audio)
        if on_error == "raise" and broken.any():
            raise RenderError(
                f"{self.name} produced NaN or infinite audio for sound(s) {broken.nonzero()[:, 0].tolist()}"
            )
        return audio

    def factory_presets(self) -> list:
        """The synth's own named presets as :class:`flowsynth.synth.presets.Preset` (none by default)."""
        return []

    def describe(self) -> dict:
        """A JSON-ready description, enough for :func:`flowsynth.synth.from_description` to rebuild it."""
        return {
            "name": self.name,
            "params": [p.describe() for p in self.params],
            "learned": list(self.space.learned),
            "fixed": dict(self.space.fixed),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, learned={self.num_learned}/{len(self.params)})"


def finite_rows(audio: Tensor) -> Tensor:
    """Which rows of ``[batch, samples]`` audio hold no NaN or infinity, in one pass over the samples.

    A row's sum is finite exactly when all its samples are, unless they are so large
    (beyond 1e33) that the sum overflows: such a row is broken audio too.

    Example:
        >>> finite_rows(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [float("inf"), -float("inf")]]))
        tensor([ True, False, False])
    """
    return torch.isfinite(audio.sum(dim=-1))
